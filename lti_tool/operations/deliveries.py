"""Delivery and completion fact actions: list, retry and discard pushes; list facts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.facts import FactSource
from badge_engine.dead_letter import DISCARDED, DeadLetterError, discard_dead_letter
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.hpass.deliveries import (
    delivery_key,
    nothing_left_to_send,
    provider_deliveries,
    requeue,
)
from connectors.hpass.models import Delivery, DeliveryStatus
from lti_tool.operations import ActionError, InvalidInput, NotFound, audit, iso
from lti_tool.row_ids import ROW_ID_MAX

DELIVERY_STATUSES = tuple(status.value for status in DeliveryStatus)
LIST_LIMIT_MAX = 1000


def list_deliveries(
    session: Session, provider_id: int, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(
            f"status {status!r} is unknown; use one of {', '.join(DELIVERY_STATUSES)}",
            code="invalid_status",
        )
    _check_limit(limit)
    views = provider_deliveries(session, provider_id, status)[:limit]

    return [
        {
            "id": view.delivery_id,
            "award": view.credential_public_id,
            "achievement_name": view.achievement_name,
            "route": view.route,
            "status": view.status,
            "reason": view.reason,
            "attempts": view.attempts,
            "updated_at": iso(view.updated_at),
            "delivered_at": iso(view.delivered_at),
            "revocation_sent_at": iso(view.revocation_sent_at),
            "remote_url": view.remote_url,
        }
        for view in views
    ]


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput(
            f"limit must be from 1 to {LIST_LIMIT_MAX}, got {limit}",
            code="invalid_limit",
        )


def find_delivery(session: Session, delivery_id: int, provider_id: int) -> Delivery:
    delivery = None
    if 0 <= delivery_id <= ROW_ID_MAX:
        delivery = session.scalar(
            select(Delivery).where(
                Delivery.id == delivery_id, Delivery.provider_id == provider_id
            )
        )
    if delivery is None:
        problem = f"no delivery {delivery_id} for this provider"
        raise NotFound(
            f"{problem}; see `hpass-bridge deliveries list`",
            code="delivery_not_found",
            api_message=f"{problem}; see GET /api/v1/deliveries",
        )

    return delivery


def retry_delivery(session: Session, actor: str, delivery: Delivery) -> int:
    """Queue a delivery again and return its outbox message id to send."""
    if nothing_left_to_send(session, delivery):
        raise ActionError(
            f"delivery {delivery.id} was already delivered to the portfolio, so there "
            "is nothing to retry",
            code="already_delivered",
        )
    try:
        message_id = requeue(session, delivery)
    except LookupError as error:
        raise ActionError(str(error), code="no_outbox_message") from None
    audit(
        session,
        actor,
        "delivery.retried",
        provider_id=delivery.provider_id,
        target=f"delivery:{delivery.id}",
    )

    return message_id


def discard_delivery(
    session: Session, actor: str, delivery: Delivery, reason: str | None
) -> None:
    """Give up a delivery whose outbox message is dead, recording the reason."""
    message = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.provider_id == delivery.provider_id,
            OutboxMessage.idempotency_key == delivery_key(delivery.id),
        )
    )
    if message is None:
        raise ActionError(
            f"delivery {delivery.id} has no outbox message to discard",
            code="no_outbox_message",
        )
    if not (reason or "").strip():
        raise InvalidInput(
            "discarding needs --reason; say why the delivery is no longer needed",
            code="reason_required",
        )
    _check_discardable(delivery, message)
    try:
        discard_dead_letter(
            session,
            provider_id=delivery.provider_id,
            message_id=message.id,
            actor=actor,
            reason=reason,
        )
    except DeadLetterError as error:
        raise ActionError(
            f"delivery {delivery.id} was not discarded: {error}", code="not_dead"
        ) from None
    delivery.status = DeliveryStatus.FAILED.value
    audit(
        session,
        actor,
        "delivery.discarded",
        provider_id=delivery.provider_id,
        target=f"delivery:{delivery.id}",
        detail={"reason": reason.strip()},
    )


def _check_discardable(delivery: Delivery, message: OutboxMessage) -> None:
    """Raise ActionError naming the delivery unless its outbox message is dead."""
    if message.status == DISCARDED:
        raise ActionError(
            f"delivery {delivery.id} was already discarded, so there is nothing to "
            "do; see `hpass-bridge deliveries list --status failed`",
            code="already_discarded",
        )
    if message.status == OutboxStatus.DONE.value:
        raise ActionError(
            f"delivery {delivery.id} is finished (status {delivery.status}), so "
            "there is nothing to discard",
            code="not_dead",
        )
    if message.status != OutboxStatus.DEAD.value:
        raise ActionError(
            f"delivery {delivery.id} is still being sent (status {delivery.status}); "
            "only a delivery that failed for good can be discarded. Wait until it "
            "fails, then discard it",
            code="not_dead",
        )


def list_facts(
    session: Session,
    provider_id: int,
    *,
    course_id: str | None = None,
    learner: str | None = None,
    source: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Return the provider's completion facts, newest first, without raw payloads."""
    _check_limit(limit)
    sources = tuple(item.value for item in FactSource)
    if source is not None and source not in sources:
        raise InvalidInput(
            f"source {source!r} is unknown; use one of {', '.join(sources)}",
            code="invalid_source",
        )
    query = select(CompletionFactRecord).where(
        CompletionFactRecord.provider_id == provider_id
    )
    if course_id is not None:
        query = query.where(CompletionFactRecord.lms_course_id == course_id)
    if learner is not None:
        query = query.where(CompletionFactRecord.lms_user_id == learner)
    if source is not None:
        query = query.where(CompletionFactRecord.source == source)
    facts = session.scalars(query.order_by(CompletionFactRecord.id.desc()).limit(limit))

    return [
        {
            "id": fact.id,
            "course_id": fact.lms_course_id,
            "learner": fact.lms_user_id,
            "activity_id": fact.activity_id,
            "state": fact.state,
            "occurred_at": iso(fact.occurred_at),
            "source": fact.source,
            "source_event_id": fact.source_event_id,
            "outcome": fact.outcome,
            "outcome_detail": fact.outcome_detail,
            "received_at": iso(fact.received_at),
        }
        for fact in facts
    ]
