"""Store completion facts with their evaluation message, deduplicated.

Events, polls and re-reads from every connector store facts here, so a repeat is a
no-op whichever source reported it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
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
    cursor,
    statements: FactBatchStatements,
    facts: Sequence[CompletionFact],
    *,
    dispatched_at: datetime | None = None,
) -> list[RecordedFact]:
    """Insert facts and one evaluation message per new fact in the caller's transaction.

    `cursor` is a DB-API cursor of the database `statements` was built for. The rows
    are exactly those SQLAlchemy writes for the same values, because every value goes
    through the bind processor of its column type. The caller commits, then
    dispatches the messages.

    The result lines up with `facts`. A fact whose dedupe key is stored already, or
    repeats an earlier fact in `facts`, is not inserted again: its result names the
    stored fact, with `created` False and no message. Whatever the number of facts,
    this runs two multi-row INSERTs and a check of their rowids (one statement on
    PostgreSQL), and one SELECT more when there are repeats, so a batch costs
    little more than one fact. A caller that sends the messages to the broker
    right after the commit passes `dispatched_at`, which spares it a second
    transaction to mark them sent. The sweep resends them only once that time is
    long past.

    Raises:
        Exception: the DB-API driver's error when the database rejected a row.
            Nothing of the batch may be committed, so the caller rolls back.
        FactNotRecorded: a conflicting fact vanished between the INSERT and the
            SELECT (deleted by someone else), or on SQLite the new rows did not
            get consecutive rowids; the caller rolls back.
    """
    if not facts:
        return []

    now = utcnow()
    keys = [(fact.provider_id, fact.dedupe_key) for fact in facts]
    rows: dict[tuple[int, str], tuple] = {}
    shared = statements.fact_batch_values(now)
    # Sorted by key, so two concurrent batches that share facts wait on the unique
    # index's entries in the same order instead of each holding what the other needs.
    for key, fact in sorted(zip(keys, facts), key=lambda pair: pair[0]):
        if key not in rows:
            rows[key] = statements.fact_values(fact, key[1], shared)

    if statements.combined:
        # One statement inserts the facts and the messages of the new ones.
        cursor.execute(
            *statements.combined_insert(list(rows.values()), now, dispatched_at)
        )
        returned = cursor.fetchall()
        inserted = {(row[1], row[2]): row[0] for row in returned}
        message_ids = {row[0]: row[3] for row in returned}
    else:
        inserted, message_ids = _insert_sqlite(
            cursor, statements, rows, now, dispatched_at
        )

    stored = dict(inserted)
    repeats = [key for key in rows if key not in inserted]
    if repeats:
        stored.update(_stored_ids(cursor, statements, repeats))

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


def _insert_sqlite(
    cursor,
    statements: FactBatchStatements,
    rows: dict[tuple[int, str], tuple],
    now: datetime,
    dispatched_at: datetime | None,
) -> tuple[dict[tuple[int, str], int], dict[int, int]]:
    """Insert the new facts and their messages on SQLite without RETURNING.

    Returns the new facts' ids by key and their message ids by fact id. The ids
    are read from the cursor's last rowid, because the rows of one INSERT get
    consecutive rowids in the order of its VALUES. SQLite gives a new row one
    more than the table's largest rowid (https://sqlite.org/autoinc.html). This
    connection holds the write lock, and a row skipped by ON CONFLICT takes no
    rowid. RETURNING would cost a step per row, and sqlite3 releases and takes
    back the GIL at each step, so the writer thread waited behind the request
    threads once per row. One query checks the exception to the rule: once a
    table contains the largest possible rowid, SQLite picks new ones at random.

    Raises:
        FactNotRecorded: the rowids are not consecutive; the caller rolls back.
    """
    keys = list(rows)
    cursor.execute(*statements.fact_insert(list(rows.values())))
    count = cursor.rowcount
    if count == 0:
        return {}, {}
    fact_last = cursor.lastrowid
    new_ids = range(fact_last - count + 1, fact_last + 1)
    if count == len(keys):
        inserted = dict(zip(keys, new_ids))
    else:
        # Some keys were stored before. The new rows are those with the `count`
        # largest ids, because the stored ones were inserted before them.
        inserted = {
            key: fact_id
            for key, fact_id in _stored_ids(cursor, statements, keys).items()
            if fact_id in new_ids
        }

    shared = statements.message_batch_values(now, dispatched_at)
    message_rows = [
        statements.message_values(provider_id, fact_id, shared)
        for (provider_id, _), fact_id in inserted.items()
    ]
    # A plain INSERT adds every row or fails.
    cursor.execute(*statements.message_insert(message_rows))
    message_last = cursor.lastrowid
    message_ids = range(message_last - len(message_rows) + 1, message_last + 1)

    cursor.execute(statements.largest_rowids_sql)
    if cursor.fetchone() != (fact_last, message_last):
        raise FactNotRecorded(
            "SQLite gave the new rows random rowids, because a table contains the "
            "largest possible rowid; move the database to PostgreSQL"
        )
    return inserted, dict(zip(inserted.values(), message_ids))


def _stored_ids(
    cursor, statements: FactBatchStatements, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """Return the ids of the stored facts among `keys`, by key."""
    requested = set(keys)
    cursor.execute(*statements.fact_select(keys))
    found = {}
    for fact_id, provider_id, dedupe_key in cursor.fetchall():
        # The query matches every provider with every key, so it can return a
        # pair that is not in `keys`.
        if (provider_id, dedupe_key) in requested:
            found[provider_id, dedupe_key] = fact_id
    return found


class FactBatchStatements:
    """The SQL text and parameter conversion of `record_facts` for one dialect.

    Built once per engine: SQLAlchemy's statement compilation, cache lookup and
    result handling cost more per batch than the inserts themselves, so the batch
    runs as plain SQL on the DB-API cursor. SQL text is cached per row count.
    """

    def __init__(self, dialect: Dialect) -> None:
        if dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(
                f"database {dialect.name!r} is not supported; use PostgreSQL or SQLite"
            )
        self._marker = "?" if dialect.paramstyle == "qmark" else "%s"
        facts = CompletionFactRecord.__table__
        messages = OutboxMessage.__table__
        self._fact_columns = list(_FACT_COLUMNS)
        self._message_columns = list(_MESSAGE_COLUMNS)
        own = _bind_processors(facts, _FACT_OWN_COLUMNS, dialect)
        self._fact_own_processors = [
            (index, processor)
            for index, processor in enumerate(own)
            if processor is not None
        ]
        self._fact_batch_processors = _bind_processors(
            facts, _FACT_BATCH_COLUMNS, dialect
        )
        self._message_batch_processors = _bind_processors(
            messages, _MESSAGE_BATCH_COLUMNS, dialect
        )
        # Table and column names come from the models above, never from input, and
        # every value is a bound parameter.
        self._fact_sql = _SqlByRowCount(
            f"INSERT INTO {facts.name} ({', '.join(self._fact_columns)}) VALUES ",  # noqa: S608
            self._row_marker(len(self._fact_columns)),
            " ON CONFLICT (provider_id, dedupe_key) DO NOTHING",
        )
        self._message_sql = _SqlByRowCount(
            f"INSERT INTO {messages.name} ({', '.join(self._message_columns)})"  # noqa: S608
            " VALUES ",
            self._row_marker(len(self._message_columns)),
            "",
        )
        # PostgreSQL runs both INSERTs in one statement, a round trip less, with
        # the same message columns as `_evaluation_message_row`. The payload text
        # is built as json.dumps writes {"fact_id": id}.
        self.combined = dialect.name == "postgresql"
        self._message_constants = _bind_processors(
            messages, list(_MESSAGE_CONSTANTS), dialect
        )
        self._combined_sql = _SqlByRowCount(
            "WITH new_facts AS ("  # noqa: S608
            f"INSERT INTO {facts.name} ({', '.join(self._fact_columns)}) VALUES ",  # noqa: S608
            self._row_marker(len(self._fact_columns)),
            " ON CONFLICT (provider_id, dedupe_key) DO NOTHING"  # noqa: S608
            " RETURNING id, provider_id, dedupe_key"
            f"), new_messages AS (INSERT INTO {messages.name}"
            f" ({', '.join(self._message_columns)})"
            " SELECT provider_id, %s::varchar,"
            " ('{\"fact_id\": ' || id || '}')::json, 'fact:' || id,"
            " %s::varchar, %s::integer, %s::timestamptz, %s::timestamptz,"
            " NULL, %s::timestamptz, NULL, NULL FROM new_facts"
            " RETURNING id, idempotency_key)"
            " SELECT new_facts.id, new_facts.provider_id, new_facts.dedupe_key,"
            " new_messages.id FROM new_facts JOIN new_messages"
            " ON new_messages.idempotency_key = 'fact:' || new_facts.id",
        )
        self.largest_rowids_sql = (
            f"SELECT (SELECT max(rowid) FROM {facts.name}),"  # noqa: S608
            f" (SELECT max(rowid) FROM {messages.name})"
        )
        # Two IN lists rather than `(provider_id, dedupe_key) IN (VALUES ...)`:
        # SQLite runs the pair form as a scan of the whole unique index, which
        # grows with the table, and the lists as one index search per pair.
        self._select_head = (
            f"SELECT id, provider_id, dedupe_key FROM {facts.name}"  # noqa: S608
            " WHERE provider_id IN "
        )
        self._select_texts: dict[tuple[int, int], str] = {}

    def _row_marker(self, width: int) -> str:
        return "(" + ", ".join([self._marker] * width) + ")"

    def fact_batch_values(self, now: datetime) -> tuple:
        """Return the converted values of the fact columns a whole batch shares."""
        row = dict(
            outcome=FactOutcome.PENDING.value,
            outcome_detail=None,
            received_at=now,
            processed_at=None,
        )
        return _converted(row, _FACT_BATCH_COLUMNS, self._fact_batch_processors)

    def fact_values(
        self, fact: CompletionFact, dedupe_key: str, shared: tuple
    ) -> tuple:
        """Return a fact's INSERT values; `shared` is from `fact_batch_values`.

        Only the columns that differ between facts are converted here, in the
        order of `_FACT_OWN_COLUMNS`.
        """
        values = [
            fact.provider_id,
            fact.lms_connection_id,
            fact.lms_course_id,
            fact.lms_user_id,
            fact.activity_id,
            fact.state.value,
            fact.grade_percent,
            fact.occurred_at,
            fact.source.value,
            fact.source_event_id,
            dedupe_key,
            fact.raw_payload,
        ]
        for index, processor in self._fact_own_processors:
            values[index] = processor(values[index])
        values.extend(shared)
        return tuple(values)

    def message_batch_values(
        self, now: datetime, dispatched_at: datetime | None
    ) -> tuple:
        """Return the converted values of the message columns a batch shares.

        They are in the order of `_MESSAGE_COLUMNS` without the three columns
        that differ between messages.
        """
        row = _evaluation_message_row(0, 0, now)
        row["dispatched_at"] = dispatched_at
        return _converted(row, _MESSAGE_BATCH_COLUMNS, self._message_batch_processors)

    def message_values(self, provider_id: int, fact_id: int, shared: tuple) -> tuple:
        """Return a message's INSERT values; `shared` is from `message_batch_values`."""
        # The payload is the text json.dumps writes for {"fact_id": fact_id}, as
        # the JSON column would store it; a test compares the two.
        kind, *rest = shared
        return (
            provider_id,
            kind,
            '{"fact_id": %d}' % fact_id,
            f"fact:{fact_id}",
            *rest,
        )

    def fact_insert(self, rows: list[tuple]) -> tuple[str, list]:
        return self._fact_sql.text(len(rows)), _flattened(rows)

    def message_insert(self, rows: list[tuple]) -> tuple[str, list]:
        return self._message_sql.text(len(rows)), _flattened(rows)

    def combined_insert(
        self, rows: list[tuple], now: datetime, dispatched_at: datetime | None
    ) -> tuple[str, list]:
        constants = _evaluation_message_row(0, 0, now)
        constants["dispatched_at"] = dispatched_at
        values = _flattened(rows)
        values.extend(
            _converted(constants, list(_MESSAGE_CONSTANTS), self._message_constants)
        )
        return self._combined_sql.text(len(rows)), values

    def fact_select(self, keys: list[tuple[int, str]]) -> tuple[str, list]:
        """Return a SELECT of id, provider_id, dedupe_key for facts among `keys`.

        It matches every provider of `keys` with every dedupe key of `keys`, so
        it can also return pairs that are not in `keys`. Callers drop those.
        """
        providers = sorted({provider_id for provider_id, _ in keys})
        dedupe_keys = sorted({dedupe_key for _, dedupe_key in keys})
        shape = (len(providers), len(dedupe_keys))
        text = self._select_texts.get(shape)
        if text is None:
            text = (
                f"{self._select_head}{self._row_marker(shape[0])}"
                f" AND dedupe_key IN {self._row_marker(shape[1])}"
            )
            self._select_texts[shape] = text
        return text, [*providers, *dedupe_keys]


# The fact columns whose values differ between the facts of a batch, in the order
# `FactBatchStatements.fact_values` lists them, then those a batch shares.
_FACT_OWN_COLUMNS = (
    "provider_id",
    "lms_connection_id",
    "lms_course_id",
    "lms_user_id",
    "activity_id",
    "state",
    "grade_percent",
    "occurred_at",
    "source",
    "source_event_id",
    "dedupe_key",
    "raw_payload",
)
_FACT_BATCH_COLUMNS = ("outcome", "outcome_detail", "received_at", "processed_at")
_FACT_COLUMNS = _FACT_OWN_COLUMNS + _FACT_BATCH_COLUMNS
_MESSAGE_COLUMNS = (
    "provider_id",
    "kind",
    "payload",
    "idempotency_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "locked_until",
    "dispatched_at",
    "last_error",
    "completed_at",
)

# The message columns a batch shares, in the order of `_MESSAGE_COLUMNS`: all but
# provider_id, payload and idempotency_key.
_MESSAGE_BATCH_COLUMNS = tuple(
    name
    for name in _MESSAGE_COLUMNS
    if name not in ("provider_id", "payload", "idempotency_key")
)

# The message columns that are the same for every message of a batch, in the order
# of their markers in the combined statement.
_MESSAGE_CONSTANTS = (
    "kind",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "dispatched_at",
)


class _SqlByRowCount:
    """A multi-row statement's SQL text, built once for each number of rows."""

    def __init__(self, head: str, row: str, tail: str) -> None:
        self._head = head
        self._row = row
        self._tail = tail
        self._texts: dict[int, str] = {}

    def text(self, count: int) -> str:
        text = self._texts.get(count)
        if text is None:
            text = self._head + ", ".join([self._row] * count) + self._tail
            self._texts[count] = text
        return text


def _bind_processors(table, columns: list[str], dialect: Dialect) -> list:
    return [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]


def _converted(row: dict, columns: list[str], processors: list) -> tuple:
    values = []
    for name, processor in zip(columns, processors):
        value = row[name]
        values.append(value if processor is None else processor(value))
    return tuple(values)


def _flattened(rows: list[tuple]) -> list:
    values = []
    for row in rows:
        values.extend(row)
    return values


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
