"""One learner at a time per achievement: a lock held until the transaction ends.

Issuing reads "is there a live credential?", signs, and inserts. Two workers that
evaluate the same learner at once (the same event delivered twice, an event racing a
backfill) would both sign before one of them loses on the unique `live_key`. The lock
makes the second wait until the first commits, so it finds the credential instead.
The unique constraint stays the guarantee; the lock saves the wasted work and keeps
the loser's transaction clean.

- PostgreSQL: `pg_advisory_xact_lock(achievement id, learner id)`. It is released at
  commit or rollback, and when the server drops the connection, so a killed worker
  never leaves it behind.
- SQLite: an upsert into `award_locks`. SQLite has one writer at a time, so the first
  write takes the database's write lock until the transaction ends, as
  `BEGIN IMMEDIATE` would. Other writers wait for it (the busy timeout).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, utcnow


class AwardLock(Base):
    """One row per (achievement, learner) pair that was ever locked on SQLite."""

    __tablename__ = "award_locks"

    lock_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)


# Advisory lock keys are two int4 values. Ids beyond that range wrap, so two pairs
# may share a lock, which costs a wait but never gives a wrong result.
_INT4 = 2**31


def _int4(value: int) -> int:
    return (value + _INT4) % (2 * _INT4) - _INT4


def lock_award(
    session: Session, *, provider_id: int, achievement_id: int, learner_id: int
) -> None:
    """Block until this transaction holds the award lock of the pair."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:achievement, :learner)"),
            {"achievement": _int4(achievement_id), "learner": _int4(learner_id)},
        )
        return

    now = utcnow()
    statement = (
        sqlite_insert(AwardLock)
        .values(
            lock_key=f"{achievement_id}:{learner_id}",
            provider_id=provider_id,
            locked_at=now,
        )
        .on_conflict_do_update(index_elements=["lock_key"], set_={"locked_at": now})
    )
    session.execute(statement)
