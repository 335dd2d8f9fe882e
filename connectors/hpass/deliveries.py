"""Delivery bookkeeping: the routes of each credential, their status, and retries.

The pipeline calls `plan_deliveries` when a credential is issued and `run_delivery`
for each outbox message; pages call the query functions. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from badge_engine.bulk_issuing import IssuedCredential
from badge_engine.db import utcnow
from badge_engine.models import Achievement, Credential, CredentialStatus
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.hpass.errors import (
    DeliveryNeedsConsent,
    DeliveryRejected,
    DeliveryRetryable,
)
from connectors.hpass.models import (
    AccountState,
    Delivery,
    DeliveryStatus,
    ObfConnection,
    PortfolioAccount,
    RouteName,
)
from connectors.hpass.routes import DeliveryJob, route_for

# Waits before each retry of a transient failure, by the number of attempts made:
# seconds, then minutes, then hours, then a day at a time. The twelve attempts the
# outbox allows by default span about four days. A longer Retry-After wins.
RETRY_SCHEDULE = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)

ACTIVE_STATUSES = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)


def retry_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta:
    """Return the wait before the next attempt after `attempts` failed ones."""
    index = min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1
    delay = RETRY_SCHEDULE[index]
    if retry_after is not None:
        delay = max(delay, retry_after)

    return delay


def delivery_key(delivery_id: int) -> str:
    """Build the outbox idempotency key of a delivery's message."""
    return f"deliver:{delivery_id}"


def plan_deliveries(session: Session, credential: Credential) -> list[Delivery]:
    """Add a queued delivery per route the credential goes by; return the new ones.

    Routes: every portfolio the learner linked (OB 3.0 API, Badge Connect), and
    the provider's Open Badge Factory account when it has one. A route that
    already has a delivery for this credential is skipped.
    """
    targets: list[tuple[str, int | None]] = []
    accounts = session.scalars(
        select(PortfolioAccount).where(
            PortfolioAccount.provider_id == credential.provider_id,
            PortfolioAccount.learner_id == credential.learner_id,
            PortfolioAccount.state == AccountState.LINKED.value,
        )
    ).all()
    targets += [(account.route, account.id) for account in accounts]
    has_obf = session.scalar(
        select(ObfConnection.id).where(
            ObfConnection.provider_id == credential.provider_id
        )
    )
    if has_obf is not None:
        targets.append((RouteName.OBF.value, None))

    existing = {
        (delivery.route, delivery.portfolio_account_id)
        for delivery in session.scalars(
            select(Delivery).where(
                Delivery.provider_id == credential.provider_id,
                Delivery.credential_id == credential.id,
            )
        )
    }
    added = []
    for route, account_id in targets:
        if (route, account_id) in existing:
            continue
        delivery = Delivery(
            provider_id=credential.provider_id,
            credential_id=credential.id,
            route=route,
            portfolio_account_id=account_id,
            status=DeliveryStatus.QUEUED.value,
        )
        session.add(delivery)
        added.append(delivery)
    session.flush()

    return added


def plan_deliveries_in_bulk(
    session: Session, provider_id: int, credentials: Sequence[IssuedCredential]
) -> list[int]:
    """Add a queued delivery per route of each new credential; return their ids.

    The routes are those of `plan_deliveries`, read with two queries for the whole
    list. Only for credentials inserted in the caller's transaction, which cannot
    have deliveries yet, so no existing ones are looked up.
    """
    if not credentials:
        return []

    learner_ids = sorted({credential.learner_id for credential in credentials})
    routes_by_learner: dict[int, list[tuple[str, int]]] = {}
    for account_id, learner_id, route in session.execute(
        select(PortfolioAccount.id, PortfolioAccount.learner_id, PortfolioAccount.route)
        .where(
            PortfolioAccount.provider_id == provider_id,
            PortfolioAccount.learner_id.in_(learner_ids),
            PortfolioAccount.state == AccountState.LINKED.value,
        )
        .order_by(PortfolioAccount.id)
    ):
        routes_by_learner.setdefault(learner_id, []).append((route, account_id))
    has_obf = session.scalar(
        select(ObfConnection.id).where(ObfConnection.provider_id == provider_id)
    )

    now = utcnow()
    rows = []
    for credential in credentials:
        targets = list(routes_by_learner.get(credential.learner_id, []))
        if has_obf is not None:
            targets.append((RouteName.OBF.value, None))
        rows += [
            {
                "provider_id": provider_id,
                "credential_id": credential.id,
                "route": route,
                "portfolio_account_id": account_id,
                "status": DeliveryStatus.QUEUED.value,
                "attempts": 0,
                "updated_at": now,
            }
            for route, account_id in targets
        ]
    if not rows:
        return []

    # Without RETURNING the driver's executemany sends the rows as one batch, and
    # the new credentials have no deliveries but these to read back.
    session.execute(insert(Delivery.__table__), rows)
    credential_ids = [credential.id for credential in credentials]
    delivery_ids = []
    for start in range(0, len(credential_ids), 1000):
        delivery_ids += session.scalars(
            select(Delivery.id)
            .where(
                Delivery.provider_id == provider_id,
                Delivery.credential_id.in_(credential_ids[start : start + 1000]),
            )
            .order_by(Delivery.id)
        )
    return delivery_ids


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one attempt, which tells the pipeline to finish, retry or give up."""

    status: DeliveryStatus
    message: str = ""
    retry_after: timedelta | None = None


def run_delivery(job: DeliveryJob) -> AttemptResult:
    """Run one attempt of `job.delivery` by its route and record the outcome on it."""
    delivery = job.delivery
    delivery.attempts += 1
    try:
        route = route_for(delivery.route)
    except LookupError as error:
        return _fail(delivery, DeliveryStatus.FAILED, error)

    revoking = job.credential.status == CredentialStatus.REVOKED.value
    try:
        if revoking:
            outcome = route.revoke(job)
        else:
            outcome = route.deliver(job)
    except DeliveryNeedsConsent as error:
        return _fail(delivery, DeliveryStatus.NEEDS_CONSENT, error)
    except DeliveryRetryable as error:
        delay = retry_delay(delivery.attempts, error.retry_after)
        return _fail(delivery, DeliveryStatus.RETRYING, error, retry_after=delay)
    except DeliveryRejected as error:
        return _fail(delivery, DeliveryStatus.FAILED, error)

    delivery.last_error = None
    delivery.first_failed_at = None
    if revoking:
        # `revocation_sent_at` stays empty when the route sent nothing, because
        # the destination never held the credential.
        delivery.status = DeliveryStatus.REVOKED.value
        if outcome is not None:
            delivery.revocation_sent_at = utcnow()
            delivery.last_http_status = outcome.http_status
        return AttemptResult(DeliveryStatus.REVOKED)

    delivery.status = DeliveryStatus.DELIVERED.value
    delivery.delivered_at = utcnow()
    delivery.last_http_status = outcome.http_status
    delivery.remote_id = outcome.remote_id or delivery.remote_id
    delivery.remote_url = outcome.remote_url or delivery.remote_url

    return AttemptResult(DeliveryStatus.DELIVERED)


def _fail(delivery: Delivery, status: DeliveryStatus, error, retry_after=None):
    delivery.status = status.value
    delivery.last_error = str(error)[:2000]
    delivery.last_http_status = getattr(error, "http_status", None)
    delivery.first_failed_at = delivery.first_failed_at or utcnow()

    return AttemptResult(status, str(error), retry_after)


def requeue(session: Session, delivery: Delivery, now: datetime | None = None) -> int:
    """Put a delivery back in the queue and return its outbox message id to send.

    The delivery's own outbox message is revived (dead, done or waiting), so the
    delivery keeps one message and its idempotency key, and the route decides
    again whether anything is left to send.
    """
    now = now or utcnow()
    message = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.provider_id == delivery.provider_id,
            OutboxMessage.idempotency_key == delivery_key(delivery.id),
        )
    )
    if message is None:
        raise LookupError(f"delivery {delivery.id} has no outbox message to retry")
    if message.status != OutboxStatus.IN_PROGRESS.value:
        message.status = OutboxStatus.PENDING.value
        message.attempts = 0
        message.next_attempt_at = now
        message.dispatched_at = None
        message.completed_at = None
    if delivery.status != DeliveryStatus.DELIVERED.value:
        delivery.status = DeliveryStatus.QUEUED.value

    return message.id


def nothing_left_to_send(session: Session, delivery: Delivery) -> bool:
    """Tell whether a delivery landed and its credential is still live.

    A landed delivery of a revoked credential still has the revocation to send,
    so a retry of it is allowed.
    """
    if delivery.status != DeliveryStatus.DELIVERED.value:
        return False
    credential_status = session.scalar(
        select(Credential.status).where(
            Credential.id == delivery.credential_id,
            Credential.provider_id == delivery.provider_id,
        )
    )

    return credential_status != CredentialStatus.REVOKED.value


def requeue_waiting_for_consent(
    session: Session, account: PortfolioAccount
) -> list[int]:
    """Requeue the account's deliveries that waited for the learner to link again."""
    waiting = session.scalars(
        select(Delivery).where(
            Delivery.provider_id == account.provider_id,
            Delivery.portfolio_account_id == account.id,
            Delivery.status == DeliveryStatus.NEEDS_CONSENT.value,
        )
    ).all()

    return [requeue(session, delivery) for delivery in waiting]


def requeue_for_revocation(session: Session, credential: Credential) -> list[int]:
    """Requeue the credential's landed deliveries so each route passes the revocation on.

    Call it in the transaction that revokes the credential, and send the returned
    outbox messages after the commit. Each route reads the revoked status: OBF
    revokes its event, the OB 3.0 API route sends the credential again so the
    portfolio reads its status list, and Badge Connect sends nothing because
    backpacks re-read the hosted assertion. Deliveries still queued or retrying
    keep their waiting message, whose next attempt takes the same path. A
    delivery being sent while the revocation commits reads the status again
    before it records the landing, and retries to pass the revocation on
    (`lti_tool.pipeline.deliver_credential`).
    """
    landed = session.scalars(
        select(Delivery).where(
            Delivery.provider_id == credential.provider_id,
            Delivery.credential_id == credential.id,
            Delivery.status == DeliveryStatus.DELIVERED.value,
        )
    ).all()
    ids = []
    for delivery in landed:
        ids.append(requeue(session, delivery))
        delivery.status = DeliveryStatus.QUEUED.value

    return ids


@dataclass(frozen=True)
class DeliveryView:
    """One row of the delivery status that learners and admins see."""

    delivery_id: int
    credential_public_id: str
    achievement_name: str
    learner_id: int
    route: str
    status: str
    reason: str | None
    attempts: int
    updated_at: datetime
    delivered_at: datetime | None
    remote_url: str | None
    revocation_sent_at: datetime | None


def _views(session: Session, query) -> list[DeliveryView]:
    rows = session.execute(
        query.join(Credential, Credential.id == Delivery.credential_id)
        .join(Achievement, Achievement.id == Credential.achievement_id)
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
    ).all()

    return [
        DeliveryView(
            delivery_id=delivery.id,
            credential_public_id=public_id,
            achievement_name=name,
            learner_id=learner_id,
            route=delivery.route,
            status=delivery.status,
            reason=delivery.last_error if delivery.status != "delivered" else None,
            attempts=delivery.attempts,
            updated_at=delivery.updated_at,
            delivered_at=delivery.delivered_at,
            remote_url=delivery.remote_url,
            revocation_sent_at=delivery.revocation_sent_at,
        )
        for delivery, public_id, name, learner_id in rows
    ]


def _base_query(provider_id: int):
    return select(
        Delivery, Credential.public_id, Achievement.name, Credential.learner_id
    ).where(Delivery.provider_id == provider_id, Credential.provider_id == provider_id)


def learner_deliveries(
    session: Session, provider_id: int, learner_id: int
) -> list[DeliveryView]:
    """Return the delivery status of every credential of one learner."""
    return _views(
        session, _base_query(provider_id).where(Credential.learner_id == learner_id)
    )


def provider_deliveries(
    session: Session,
    provider_id: int,
    status: str | None = None,
    achievement_ids: Collection[int] | None = None,
) -> list[DeliveryView]:
    """Return the provider's deliveries, optionally only one status.

    With `achievement_ids`, only the deliveries of credentials of those
    achievements are returned, such as the badges of one course.
    """
    query = _base_query(provider_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if achievement_ids is not None:
        query = query.where(Credential.achievement_id.in_(list(achievement_ids)))

    return _views(session, query)
