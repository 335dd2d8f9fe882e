"""The dead-letter list: outbox messages that kept failing, for an admin to decide on.

A message is dead after `max_attempts` failures or when its handler raised that retrying
cannot help; its `last_error` is the reason. An admin either retries it (it becomes
due again with a fresh attempt count) or discards it with a reason of their own.
Every decision is kept in `dead_letter_actions`, so the list shows who did what, why
and when. Every function takes the provider: an admin acts on their own provider's
messages only (an HPass operator passes each provider in turn).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, utcnow
from badge_engine.outbox import OutboxMessage, OutboxStatus

# A discarded message is finished without success; the sweep never picks it up.
DISCARDED = "discarded"
MAX_REASON_LENGTH = 2000


class DeadLetterActionKind(str, enum.Enum):
    RETRY = "retry"
    DISCARD = "discard"


class DeadLetterAction(Base):
    """An admin's decision on a dead outbox message."""

    __tablename__ = "dead_letter_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    outbox_message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    action: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    # The error that made the message dead, kept because a retry clears it.
    error_at_action: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetterError(ValueError):
    """A dead-letter action was asked for a message that does not allow it."""

    def __init__(self, message: str, *, outbox_message_id: int, provider_id: int):
        super().__init__(message)
        self.outbox_message_id = outbox_message_id
        self.provider_id = provider_id


@dataclass(frozen=True)
class DeadLetter:
    id: int
    kind: str
    payload: dict
    attempts: int
    last_error: str | None
    created_at: datetime


def list_dead_letters(
    session: Session,
    *,
    provider_id: int,
    kind: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[DeadLetter]:
    """Return the provider's dead messages, newest first, `limit` per page.

    Pass the smallest id of a page as `before_id` to read the next page.
    """
    query = select(OutboxMessage).where(
        OutboxMessage.provider_id == provider_id,
        OutboxMessage.status == OutboxStatus.DEAD.value,
    )
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    if before_id is not None:
        query = query.where(OutboxMessage.id < before_id)
    query = query.order_by(OutboxMessage.id.desc()).limit(limit)
    return [
        DeadLetter(
            id=message.id,
            kind=message.kind,
            payload=message.payload,
            attempts=message.attempts,
            last_error=message.last_error,
            created_at=message.created_at,
        )
        for message in session.scalars(query)
    ]


def count_dead_letters(session: Session, *, provider_id: int) -> int:
    return session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.provider_id == provider_id,
            OutboxMessage.status == OutboxStatus.DEAD.value,
        )
    )


def _dead_message(session: Session, provider_id: int, message_id: int) -> OutboxMessage:
    message = session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.provider_id == provider_id)
        .with_for_update()
    )
    if message is None:
        raise DeadLetterError(
            f"outbox message {message_id} not found for provider {provider_id}; "
            "reload the dead-letter list",
            outbox_message_id=message_id,
            provider_id=provider_id,
        )
    if message.status != OutboxStatus.DEAD.value:
        raise DeadLetterError(
            f"outbox message {message_id} is {message.status}, not dead; only dead "
            "messages can be retried or discarded",
            outbox_message_id=message_id,
            provider_id=provider_id,
        )
    return message


def retry_dead_letter(
    session: Session, *, provider_id: int, message_id: int, actor: str
) -> OutboxMessage:
    """Make a dead message due now with a fresh attempt count.

    The caller commits, then hands the id to `lti_tool.tasks.dispatch` (or leaves it
    to the sweep).
    """
    message = _dead_message(session, provider_id, message_id)
    session.add(
        DeadLetterAction(
            provider_id=provider_id,
            outbox_message_id=message.id,
            action=DeadLetterActionKind.RETRY.value,
            error_at_action=message.last_error,
            actor=actor,
        )
    )
    message.status = OutboxStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.dispatched_at = None
    message.locked_until = None
    return message


def discard_dead_letter(
    session: Session, *, provider_id: int, message_id: int, actor: str, reason: str
) -> OutboxMessage:
    """Finish a dead message without running it again, recording the admin's reason."""
    reason = (reason or "").strip()
    if not reason:
        raise DeadLetterError(
            f"a reason is required to discard outbox message {message_id}; say why "
            "the work is no longer needed",
            outbox_message_id=message_id,
            provider_id=provider_id,
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise DeadLetterError(
            f"the reason is {len(reason)} characters long; keep it under "
            f"{MAX_REASON_LENGTH}",
            outbox_message_id=message_id,
            provider_id=provider_id,
        )

    message = _dead_message(session, provider_id, message_id)
    session.add(
        DeadLetterAction(
            provider_id=provider_id,
            outbox_message_id=message.id,
            action=DeadLetterActionKind.DISCARD.value,
            reason=reason,
            error_at_action=message.last_error,
            actor=actor,
        )
    )
    message.status = DISCARDED
    message.completed_at = utcnow()
    return message


def dead_letter_history(
    session: Session, *, provider_id: int, message_id: int
) -> list[DeadLetterAction]:
    return list(
        session.scalars(
            select(DeadLetterAction)
            .where(
                DeadLetterAction.provider_id == provider_id,
                DeadLetterAction.outbox_message_id == message_id,
            )
            .order_by(DeadLetterAction.id)
        )
    )
