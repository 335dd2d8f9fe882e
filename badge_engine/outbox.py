"""The outbox: the source of truth for work that leaves the bridge or waits on it.

A message is written in the same transaction as the change that causes it, so work is
never recorded without its cause nor the cause without its work. Celery only carries
message ids; a lost broker message or a killed worker delays a message until the sweep
finds it again, but never loses it. Backoff lives here in `next_attempt_at`, not in
Celery countdowns, so a restart keeps every schedule.

Lifecycle: pending -> in_progress (claimed under a lease) -> done, or back to pending
with a later `next_attempt_at`, or dead after `max_attempts` (an admin retries or
discards it). An in_progress row whose lease ran out belongs to a dead worker and may
be claimed again.
"""

from __future__ import annotations

import enum
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, dialect_insert, utcnow

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 6 * 3600


class OutboxStatus(str, enum.Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DEAD = "dead"


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


def enqueue(
    session: Session,
    *,
    provider_id: int,
    kind: str,
    payload: dict[str, Any],
    idempotency_key: str,
) -> OutboxMessage:
    """Add a message in the caller's transaction, or return the one with the same key.

    The caller commits; nothing is sent before that commit.
    """
    existing = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing

    message = OutboxMessage(
        provider_id=provider_id,
        kind=kind,
        payload=payload,
        idempotency_key=idempotency_key,
        next_attempt_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        # A concurrent transaction inserted the same key first; theirs is the message.
        return session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.idempotency_key == idempotency_key
            )
        ).one()

    return message


def enqueue_many(session: Session, messages: list[dict[str, Any]]) -> list[int]:
    """Add many messages in one batched INSERT; return the ids of all of them.

    Each item has the keyword arguments of `enqueue`. A message whose idempotency
    key exists already is not added again, and its existing id is returned in its
    place, so the result lines up with `messages`. The caller commits.
    """
    if not messages:
        return []

    now = utcnow()
    rows = [
        {
            "provider_id": message["provider_id"],
            "kind": message["kind"],
            "payload": message["payload"],
            "idempotency_key": message["idempotency_key"],
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for message in messages
    ]
    statement = dialect_insert(
        session.get_bind().dialect.name, OutboxMessage.__table__
    ).on_conflict_do_nothing(index_elements=["idempotency_key"])
    session.execute(statement, rows)

    # Without RETURNING the driver's executemany sends the rows as one batch; a
    # lookup by key then finds the new messages and those that existed before.
    keys = [row["idempotency_key"] for row in rows]
    ids: dict[str, int] = {}
    for start in range(0, len(keys), 1000):
        ids.update(
            (key, message_id)
            for message_id, key in session.execute(
                select(OutboxMessage.id, OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.in_(keys[start : start + 1000])
                )
            )
        )
    return [ids[row["idempotency_key"]] for row in rows]


def claim(
    session: Session,
    message_id: int,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """Take a due message under a lease in one atomic UPDATE, or return None.

    Two workers handed the same id race on this statement and exactly one wins. The
    caller must commit right after, so others see the lease.
    """
    now = now or utcnow()
    claimable = or_(
        (OutboxMessage.status == OutboxStatus.PENDING.value)
        & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == OutboxStatus.IN_PROGRESS.value)
        & (OutboxMessage.locked_until < now),
    )
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, claimable)
        .values(
            status=OutboxStatus.IN_PROGRESS.value,
            locked_until=now + timedelta(seconds=lease_seconds),
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None

    return session.get(OutboxMessage, message_id, populate_existing=True)


def mark_done(message: OutboxMessage, now: datetime | None = None) -> None:
    message.status = OutboxStatus.DONE.value
    message.completed_at = now or utcnow()
    message.locked_until = None
    message.last_error = None


def backoff_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter in its upper half, capped at six hours."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    # The jitter only spreads retries, so it needs no cryptographic randomness.
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311


def mark_failed(
    message: OutboxMessage,
    error: str,
    *,
    max_attempts: int,
    retry_after: timedelta | None = None,
    now: datetime | None = None,
) -> None:
    """Schedule another attempt, or move the message to dead after `max_attempts`."""
    now = now or utcnow()
    message.last_error = error[:2000]
    message.locked_until = None
    if message.attempts >= max_attempts:
        message.status = OutboxStatus.DEAD.value
        return

    delay = backoff_delay(message.attempts)
    if retry_after is not None:
        delay = max(delay, retry_after)
    message.status = OutboxStatus.PENDING.value
    message.next_attempt_at = now + delay
    message.dispatched_at = None


def due_message_ids(
    session: Session,
    *,
    redispatch_after_seconds: float,
    limit: int = 500,
    now: datetime | None = None,
) -> list[int]:
    """Return ids of messages a worker should run now.

    A pending message already handed to the broker within `redispatch_after_seconds`
    is left alone so a backlog is not sent twice; an expired lease is always due.
    """
    now = now or utcnow()
    resend_before = now - timedelta(seconds=redispatch_after_seconds)
    pending_due = (
        (OutboxMessage.status == OutboxStatus.PENDING.value)
        & (OutboxMessage.next_attempt_at <= now)
        & or_(
            OutboxMessage.dispatched_at.is_(None),
            OutboxMessage.dispatched_at < resend_before,
        )
    )
    lease_expired = (OutboxMessage.status == OutboxStatus.IN_PROGRESS.value) & (
        OutboxMessage.locked_until < now
    )
    query = (
        select(OutboxMessage.id)
        .where(or_(pending_due, lease_expired))
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_dispatched(
    session: Session, message_ids: list[int], now: datetime | None = None
) -> None:
    if not message_ids:
        return
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids))
        .values(dispatched_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def clear_dispatched(session: Session, message_ids: list[int]) -> None:
    """Mark messages as never sent, after a send failed, so the next sweep sends them."""
    if not message_ids:
        return
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids))
        .values(dispatched_at=None)
        .execution_options(synchronize_session=False)
    )
