"""Store completion facts with their evaluation message, deduplicated.

Events, polls and re-reads from every connector store facts here, so a repeat is a
no-op whichever source reported it first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.facts import CompletionFact
from badge_engine.models import CompletionFactRecord, FactOutcome
from badge_engine.outbox import OutboxMessage, OutboxStatus

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
    # One INSERT ... ON CONFLICT DO NOTHING instead of a lookup and a savepoint:
    # another worker or request may store the same fact at the same moment, and the
    # unique dedupe key then makes this insert a no-op that returns no id.
    values = dict(
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
        outcome=FactOutcome.PENDING.value,
        received_at=utcnow(),
    )
    insert = _dialect_insert(session)(CompletionFactRecord).values(**values)
    insert = insert.on_conflict_do_nothing(
        index_elements=["provider_id", "dedupe_key"]
    ).returning(CompletionFactRecord.id)
    fact_id = session.execute(insert).scalar()
    if fact_id is None:
        return _fact_by_dedupe_key(session, fact), None

    # The key names a row id that did not exist before, so no lookup is needed.
    message_id = session.execute(
        _dialect_insert(session)(OutboxMessage)
        .values(
            provider_id=fact.provider_id,
            kind=EVALUATE_FACT,
            payload={"fact_id": fact_id},
            idempotency_key=f"fact:{fact_id}",
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
        .returning(OutboxMessage.id)
    ).scalar_one()
    return (
        session.get(CompletionFactRecord, fact_id),
        session.get(OutboxMessage, message_id),
    )


def _dialect_insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert


def _fact_by_dedupe_key(
    session: Session, fact: CompletionFact
) -> CompletionFactRecord | None:
    return session.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.dedupe_key == fact.dedupe_key,
        )
    )
