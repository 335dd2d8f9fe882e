"""Store Canvas completion facts with their evaluation message, deduplicated."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine.facts import CompletionFact
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import enqueue

# The outbox message kind the award pipeline evaluates a fact under. It is defined
# by lti_tool.pipeline, which connectors may not import.
EVALUATE_FACT = "fact.evaluate"


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
    existing = _fact_by_dedupe_key(session, fact)
    if existing is not None:
        return StoredFact(existing, False, None)

    record = CompletionFactRecord(
        provider_id=fact.provider_id,
        lms_connection_id=fact.lms_connection_id,
        lms_course_id=fact.lms_course_id,
        lms_user_id=fact.lms_user_id,
        activity_id=fact.activity_id,
        state=fact.state.value,
        occurred_at=fact.occurred_at,
        source=fact.source.value,
        source_event_id=fact.source_event_id,
        dedupe_key=fact.dedupe_key,
        raw_payload=fact.raw_payload,
    )
    # A savepoint, because a poll and an event may store the same fact at the same
    # moment. Where the dedupe key is unique, the loser finds the winner's row.
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return StoredFact(_fact_by_dedupe_key(session, fact), False, None)

    message = enqueue(
        session,
        provider_id=fact.provider_id,
        kind=EVALUATE_FACT,
        payload={"fact_id": record.id},
        idempotency_key=f"fact:{record.id}",
    )
    return StoredFact(record, True, message.id)


def _fact_by_dedupe_key(
    session: Session, fact: CompletionFact
) -> CompletionFactRecord | None:
    return session.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.dedupe_key == fact.dedupe_key,
        )
    )
