"""Store completion facts with their evaluation message, deduplicated.

Events, polls and re-reads from every connector store facts here, so a repeat is a
no-op whichever source reported it first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine.facts import CompletionFact
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage, enqueue

# The outbox message kind under which the award pipeline evaluates a stored fact.
EVALUATE_FACT = "fact.evaluate"


def record_fact(
    session: Session, fact: CompletionFact
) -> tuple[CompletionFactRecord, OutboxMessage | None]:
    """Add a fact and its evaluation message to the session; a repeat is a no-op.

    Returns the stored record and the new outbox message, or the earlier record and
    None when a fact with the same dedupe key exists. The caller commits, then
    dispatches the message.
    """
    existing = _fact_by_dedupe_key(session, fact)
    if existing is not None:
        return existing, None

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
    # A savepoint, because another worker or request may store the same fact at the
    # same moment. The unique dedupe key makes the loser find the winner's row.
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return _fact_by_dedupe_key(session, fact), None

    message = enqueue(
        session,
        provider_id=fact.provider_id,
        kind=EVALUATE_FACT,
        payload={"fact_id": record.id},
        idempotency_key=f"fact:{record.id}",
    )
    return record, message


def _fact_by_dedupe_key(
    session: Session, fact: CompletionFact
) -> CompletionFactRecord | None:
    return session.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.dedupe_key == fact.dedupe_key,
        )
    )
