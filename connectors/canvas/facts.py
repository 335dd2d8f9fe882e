"""Store Canvas completion facts with their evaluation message, deduplicated."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from badge_engine.fact_store import record_fact
from badge_engine.facts import CompletionFact
from badge_engine.models import CompletionFactRecord


@dataclass(frozen=True)
class StoredFact:
    record: CompletionFactRecord
    created: bool
    message_id: int | None


def store_completion_fact(session: Session, fact: CompletionFact) -> StoredFact:
    """Add the fact and its evaluation message to `session`; repeats are no-ops.

    A repeat is a fact with the same dedupe key (connection, course, learner,
    activity, state and LMS time), whether it came from an event or a poll. The
    caller commits, then dispatches `message_id`.
    """
    record, message = record_fact(session, fact)
    if message is None:
        return StoredFact(record, False, None)
    return StoredFact(record, True, message.id)
