"""Store completion facts with their evaluation message, deduplicated.

Events, polls and re-reads from every connector store facts here, so a repeat is a
no-op whichever source reported it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
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
    values = _fact_row(fact, utcnow())
    insert = _dialect_insert(session)(CompletionFactRecord).values(**values)
    insert = insert.on_conflict_do_nothing(
        index_elements=["provider_id", "dedupe_key"]
    ).returning(CompletionFactRecord.id)
    fact_id = session.execute(insert).scalar()
    if fact_id is None:
        return _fact_by_dedupe_key(session, fact), None

    message_id = session.execute(
        _dialect_insert(session)(OutboxMessage)
        .values(**_evaluation_message_row(fact.provider_id, fact_id, utcnow()))
        .returning(OutboxMessage.id)
    ).scalar_one()
    return (
        session.get(CompletionFactRecord, fact_id),
        session.get(OutboxMessage, message_id),
    )


@dataclass(frozen=True)
class RecordedFact:
    """The outcome of `record_facts` for one fact: its id, and whether it is new."""

    fact_id: int
    created: bool
    # The new fact's evaluation message; None for a repeat.
    message_id: int | None


class FactNotRecorded(RuntimeError):
    """A fact was neither inserted nor found under its dedupe key afterwards."""


def record_facts(
    connection: Connection,
    facts: Sequence[CompletionFact],
    *,
    dispatched_at: datetime | None = None,
) -> list[RecordedFact]:
    """Insert facts and one evaluation message per new fact in the caller's transaction.

    The result lines up with `facts`. A fact whose dedupe key is stored already, or
    repeats an earlier fact in `facts`, is not inserted again: its result names the
    stored fact, with `created` False and no message. Whatever the number of facts,
    this runs two multi-row INSERT statements, and one SELECT more when there are
    repeats, so a batch costs little more than one fact. The caller commits, then
    dispatches the messages. A caller that sends the messages to the broker right
    after the commit passes `dispatched_at`, which spares it a second transaction to
    mark them sent; the sweep resends them only once that time is long past.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database rejected a row; nothing of the
            batch may be committed, so the caller rolls back.
        FactNotRecorded: a conflicting fact vanished between the INSERT and the
            SELECT (deleted by someone else); the caller rolls back.
    """
    if not facts:
        return []

    now = utcnow()
    keys = [(fact.provider_id, fact.dedupe_key) for fact in facts]
    rows: dict[tuple[int, str], dict] = {}
    # Sorted by key, so two concurrent batches that share facts wait on the unique
    # index's entries in the same order instead of each holding what the other needs.
    for key, fact in sorted(zip(keys, facts), key=lambda pair: pair[0]):
        if key not in rows:
            rows[key] = _fact_row(fact, now, dedupe_key=key[1])

    table = CompletionFactRecord.__table__
    fact_insert, message_insert = _batch_statements(connection.dialect.name)
    inserted = {
        (provider_id, dedupe_key): fact_id
        for fact_id, provider_id, dedupe_key in connection.execute(
            fact_insert, list(rows.values())
        )
    }
    stored = dict(inserted)
    repeats = [key for key in rows if key not in inserted]
    if repeats:
        found = connection.execute(
            select(table.c.id, table.c.provider_id, table.c.dedupe_key).where(
                tuple_(table.c.provider_id, table.c.dedupe_key).in_(repeats)
            )
        )
        stored.update(((row[1], row[2]), row[0]) for row in found)

    message_ids = _insert_evaluation_messages(
        connection, message_insert, inserted, now, dispatched_at
    )
    results = []
    first_seen: set[tuple[int, str]] = set()
    for key in keys:
        if key not in stored:
            raise FactNotRecorded(
                f"fact {key[1]} of provider {key[0]} was neither inserted nor found; "
                "it was deleted while being stored, so store it again"
            )
        created = key in inserted and key not in first_seen
        first_seen.add(key)
        message_id = message_ids[stored[key]] if created else None
        results.append(RecordedFact(stored[key], created, message_id))
    return results


def _insert_evaluation_messages(
    connection: Connection,
    insert,
    inserted: dict[tuple[int, str], int],
    now: datetime,
    dispatched_at: datetime | None,
) -> dict[int, int]:
    """Insert one evaluation message per new fact; return message ids by fact id."""
    if not inserted:
        return {}

    rows = []
    for (provider_id, _), fact_id in inserted.items():
        row = _evaluation_message_row(provider_id, fact_id, now)
        row["dispatched_at"] = dispatched_at
        rows.append(row)
    by_key = dict(
        (key, message_id) for message_id, key in connection.execute(insert, rows)
    )
    return {fact_id: by_key[f"fact:{fact_id}"] for fact_id in inserted.values()}


_BATCH_STATEMENTS: dict[str, tuple] = {}


def _batch_statements(dialect_name: str) -> tuple:
    """Return the fact and message INSERTs of `record_facts`, built once per dialect.

    Building a statement and its cache key costs more than running it for a few rows.
    """
    statements = _BATCH_STATEMENTS.get(dialect_name)
    if statements is None:
        facts = CompletionFactRecord.__table__
        messages = OutboxMessage.__table__
        insert = _insert_for(dialect_name)
        statements = (
            insert(facts)
            .on_conflict_do_nothing(index_elements=["provider_id", "dedupe_key"])
            .returning(facts.c.id, facts.c.provider_id, facts.c.dedupe_key),
            insert(messages).returning(messages.c.id, messages.c.idempotency_key),
        )
        _BATCH_STATEMENTS[dialect_name] = statements
    return statements


def _fact_row(
    fact: CompletionFact, now: datetime, dedupe_key: str | None = None
) -> dict:
    # The dedupe key is a hash; a caller that has it already passes it in.
    return dict(
        provider_id=fact.provider_id,
        lms_connection_id=fact.lms_connection_id,
        lms_course_id=fact.lms_course_id,
        lms_user_id=fact.lms_user_id,
        activity_id=fact.activity_id,
        state=fact.state.value,
        grade_percent=fact.grade_percent,
        occurred_at=fact.occurred_at,
        source=fact.source.value,
        source_event_id=fact.source_event_id,
        dedupe_key=dedupe_key or fact.dedupe_key,
        raw_payload=fact.raw_payload,
        outcome=FactOutcome.PENDING.value,
        outcome_detail=None,
        received_at=now,
        processed_at=None,
    )


def _evaluation_message_row(provider_id: int, fact_id: int, now: datetime) -> dict:
    # The key names a fact id that did not exist before, so it cannot collide.
    return dict(
        provider_id=provider_id,
        kind=EVALUATE_FACT,
        payload={"fact_id": fact_id},
        idempotency_key=f"fact:{fact_id}",
        status=OutboxStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        locked_until=None,
        dispatched_at=None,
        last_error=None,
        completed_at=None,
    )


def _insert_for(dialect_name: str):
    if dialect_name == "postgresql":
        return postgresql_insert
    return sqlite_insert


def _dialect_insert(session: Session):
    return _insert_for(session.get_bind().dialect.name)


def _fact_by_dedupe_key(
    session: Session, fact: CompletionFact
) -> CompletionFactRecord | None:
    return session.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.dedupe_key == fact.dedupe_key,
        )
    )
