"""Rows that group commit writes through the DB-API, on SQLite and PostgreSQL.

The fact writer stores facts with plain SQL on the driver's cursor. These tests check
that its rows read the same as those the ORM writes for the same fact, and that
duplicates within a batch and against stored facts resolve to the stored fact.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from badge_engine.fact_store import (
    FactBatchStatements,
    FactNotRecorded,
    record_fact,
    record_facts,
)
from badge_engine.facts import CompletionFact, CompletionState, FactSource
from lti_tool import intake
from lti_tool.app import create_app
from lti_tool.fact_writer import FactWriter, _Pending
from lti_tool.schema import upgrade
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

# Columns whose values differ between two facts stored at different times.
FACT_VARYING = {"id", "lms_user_id", "source_event_id", "dedupe_key", "received_at"}
MESSAGE_VARYING = {
    "id",
    "idempotency_key",
    "payload",
    "next_attempt_at",
    "created_at",
}


@pytest.fixture(params=["sqlite", "postgres"])
def backend_app(request, settings):
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    upgrade(settings.database_url)
    app = create_app(settings)
    yield app
    intake.stop(app)
    app.extensions["hpass"].engine.dispose()


def _seed(app):
    """Add a provider with a Moodle connection; return the engine and their ids."""
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session)
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:9", "token"
        )
        session.commit()
        return bridge.engine, provider.id, connection.id


@pytest.fixture
def seeded(backend_app):
    return _seed(backend_app)


def _fact(provider_id: int, connection_id: int, learner_id: int) -> CompletionFact:
    return CompletionFact(
        provider_id=provider_id,
        lms_connection_id=connection_id,
        lms_course_id="101",
        lms_user_id=str(learner_id),
        activity_id="4001",
        state=CompletionState.COMPLETE,
        grade_percent=87.5,
        occurred_at=datetime(2025, 1, 1, 12, 30, tzinfo=timezone.utc),
        source=FactSource.EVENT,
        source_event_id=f"event-{learner_id}",
        raw_payload={"learner": "same", "nested": {"values": [1, 2.5, None]}},
    )


def _rows(engine, table: str) -> list[dict]:
    with engine.connect() as connection:
        query = text(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - a test constant
        result = connection.execute(query)
        return [dict(row._mapping) for row in result]


def _assert_same_storage(orm_row: dict, dbapi_row: dict, varying: set[str]) -> None:
    assert orm_row.keys() == dbapi_row.keys()
    for name in orm_row:
        if name in varying:
            # Stored in the same form: same Python type, and on SQLite, where
            # timestamps are text, the same length.
            assert type(orm_row[name]) is type(dbapi_row[name]), name
            if isinstance(orm_row[name], str):
                assert len(orm_row[name]) == len(dbapi_row[name]), name
        else:
            assert orm_row[name] == dbapi_row[name], name


def test_rows_match_orm_rows(seeded):
    """A fact and its message stored by the writer read as the ORM stores them."""
    engine, provider_id, connection_id = seeded
    with engine.connect() as connection:
        with Session(connection) as session:
            record_fact(session, _fact(provider_id, connection_id, 1))
            session.commit()
    writer = FactWriter(engine, on_committed=lambda ids: None)

    stored = writer.write(_fact(provider_id, connection_id, 2))
    assert writer.stop()

    facts = _rows(engine, "completion_facts")
    messages = _rows(engine, "outbox")
    assert len(facts) == 2
    assert len(messages) == 2
    _assert_same_storage(facts[0], facts[1], FACT_VARYING)
    # The ORM path leaves dispatched_at empty and the writer sets it, so it is
    # compared with another timestamp of the same row.
    orm_message = dict(messages[0], dispatched_at=messages[0]["created_at"])
    _assert_same_storage(orm_message, messages[1], MESSAGE_VARYING | {"dispatched_at"})
    assert facts[1]["id"] == stored.fact_id
    assert messages[1]["id"] == stored.message_id
    assert messages[1]["idempotency_key"] == f"fact:{stored.fact_id}"
    assert messages[0]["dispatched_at"] is None
    assert messages[1]["dispatched_at"] is not None
    for fact, payload in zip(facts, _payload_texts(engine)):
        assert payload == json.dumps({"fact_id": fact["id"]})


def _payload_texts(engine) -> list[str]:
    with engine.connect() as connection:
        query = text("SELECT CAST(payload AS TEXT) FROM outbox ORDER BY id")
        return list(connection.scalars(query))


def test_bad_fact_fails_alone(seeded):
    """In a batch with a fact the database rejects, only that fact fails."""
    engine, provider_id, connection_id = seeded
    committed: list[list[int]] = []
    writer = FactWriter(engine, on_committed=committed.append)
    good = _Pending(_fact(provider_id, connection_id, 20))
    # No provider has this id, so the foreign key rejects the row.
    bad = _Pending(_fact(999_999, connection_id, 21))

    writer._store([good, bad])

    assert good.result is not None
    assert good.result.created
    assert isinstance(bad.error, Exception)
    assert bad.result is None
    assert len(_rows(engine, "completion_facts")) == 1
    assert len(_rows(engine, "outbox")) == 1
    assert committed == [[good.result.message_id]]


def test_batch_resolves_repeats(seeded):
    """Repeats within a batch and of stored facts name the stored fact, no message."""
    engine, provider_id, connection_id = seeded
    statements = FactBatchStatements(engine.dialect)
    first = _fact(provider_id, connection_id, 10)
    second = _fact(provider_id, connection_id, 11)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        earlier = record_facts(cursor, statements, [first])
        connection.commit()
        results = record_facts(cursor, statements, [second, first, second])
        connection.commit()
    finally:
        connection.close()

    assert earlier[0].created
    assert [result.created for result in results] == [True, False, False]
    assert results[1].fact_id == earlier[0].fact_id
    assert results[2].fact_id == results[0].fact_id
    assert results[0].message_id is not None
    assert results[1].message_id is None
    assert results[2].message_id is None
    assert len(_rows(engine, "completion_facts")) == 2
    assert len(_rows(engine, "outbox")) == 2


def test_statements_reject_other_databases():
    """Only SQLite and PostgreSQL have the ON CONFLICT form the batch uses."""
    from sqlalchemy.dialects import mysql

    with pytest.raises(ValueError, match="'mysql' is not supported"):
        FactBatchStatements(mysql.dialect())


def test_concurrent_repeats_stored_once(seeded):
    """Eight threads writing one fact store it once; all name the same fact."""
    engine, provider_id, connection_id = seeded
    writer = FactWriter(engine, on_committed=lambda ids: None)
    fact = _fact(provider_id, connection_id, 30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: writer.write(fact), range(8)))

    assert sum(result.created for result in results) == 1
    assert len({result.fact_id for result in results}) == 1
    assert len(_rows(engine, "completion_facts")) == 1
    assert len(_rows(engine, "outbox")) == 1
    assert writer.stop()


def test_released_connection_rolls_back(seeded):
    """The writer's connection, back in the pool, runs transactions again.

    On PostgreSQL the writer sends its batches in autocommit mode. A connection
    left in that mode would commit the next user's statements one by one.
    """
    engine, provider_id, connection_id = seeded
    writer = FactWriter(engine, on_committed=lambda ids: None)
    writer.write(_fact(provider_id, connection_id, 40))
    assert writer.stop()

    pooled = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        for connection in pooled:
            cursor = connection.cursor()
            cursor.execute("DELETE FROM outbox")
            cursor.close()
            connection.rollback()
    finally:
        for connection in pooled:
            connection.close()

    assert len(pooled) >= 1
    assert len(_rows(engine, "outbox")) == 1


def _record(engine, facts: list[CompletionFact]):
    statements = FactBatchStatements(engine.dialect)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        results = record_facts(cursor, statements, facts)
        connection.commit()
        return results
    finally:
        connection.close()


def test_batch_of_stored_facts_adds_nothing(seeded):
    """A batch whose facts are all stored already inserts no fact and no message."""
    engine, provider_id, connection_id = seeded
    facts = [_fact(provider_id, connection_id, learner) for learner in (50, 51)]
    first = _record(engine, facts)

    again = _record(engine, list(reversed(facts)))

    assert [result.created for result in again] == [False, False]
    assert [result.fact_id for result in again] == [r.fact_id for r in reversed(first)]
    assert [result.message_id for result in again] == [None, None]
    assert len(_rows(engine, "completion_facts")) == 2
    assert len(_rows(engine, "outbox")) == 2


def test_ids_match_rows_after_repeats(seeded):
    """With stored facts between new ones, each result names its own row."""
    engine, provider_id, connection_id = seeded
    stored = _record(engine, [_fact(provider_id, connection_id, 61)])
    facts = [_fact(provider_id, connection_id, learner) for learner in (60, 61, 62, 63)]

    results = _record(engine, facts)

    assert [result.created for result in results] == [True, False, True, True]
    assert results[1].fact_id == stored[0].fact_id
    by_id = {row["id"]: row for row in _rows(engine, "completion_facts")}
    for fact, result in zip(facts, results):
        assert by_id[result.fact_id]["lms_user_id"] == fact.lms_user_id
    payloads = dict(
        zip([m["id"] for m in _rows(engine, "outbox")], _payload_texts(engine))
    )
    for result in results:
        if result.created:
            assert payloads[result.message_id] == json.dumps(
                {"fact_id": result.fact_id}
            )


def test_random_rowids_rejected(settings):
    """On SQLite, rows given random rowids fail the batch instead of being misnamed.

    Once a table contains the largest rowid, SQLite gives new rows random ones, and
    the writer can no longer read their ids from the last rowid.
    """
    upgrade(settings.database_url)
    app = create_app(settings)
    engine, provider_id, connection_id = _seed(app)
    largest = _record(engine, [_fact(provider_id, connection_id, 70)])
    with engine.begin() as database:
        database.execute(
            text("UPDATE completion_facts SET id = :id WHERE id = :old"),
            {"id": 2**63 - 1, "old": largest[0].fact_id},
        )

    with pytest.raises(FactNotRecorded, match="random rowids"):
        _record(engine, [_fact(provider_id, connection_id, 71)])

    assert len(_rows(engine, "completion_facts")) == 1
    assert len(_rows(engine, "outbox")) == 1
    intake.stop(app)
    engine.dispose()


def test_repeats_of_two_providers_name_their_own_facts(backend_app):
    """The lookup of stored facts returns only the provider and key pairs asked for.

    It matches every provider of a batch with every dedupe key of the batch, so a
    fact of one provider under another provider's key must not be taken for it.
    """
    engine, first_provider, first_connection = _seed(backend_app)
    bridge = backend_app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session, slug="second")
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:8", "token"
        )
        session.commit()
        second_provider, second_connection = provider.id, connection.id
    first = _fact(first_provider, first_connection, 80)
    second = _fact(second_provider, second_connection, 81)
    # A fact of the first provider stored under the second fact's dedupe key.
    crossed = _record(engine, [first])[0]
    with engine.begin() as database:
        database.execute(
            text(
                "INSERT INTO completion_facts (provider_id, lms_connection_id,"
                " lms_course_id, lms_user_id, activity_id, state, occurred_at,"
                " source, dedupe_key, outcome, received_at) SELECT provider_id,"
                " lms_connection_id, lms_course_id, '82', activity_id, state,"
                " occurred_at, source, :key, outcome, received_at"
                " FROM completion_facts WHERE id = :id"
            ),
            {"key": second.dedupe_key, "id": crossed.fact_id},
        )

    results = _record(engine, [first, second])

    assert [result.created for result in results] == [False, True]
    assert results[0].fact_id == crossed.fact_id
    by_id = {row["id"]: row for row in _rows(engine, "completion_facts")}
    assert by_id[results[1].fact_id]["provider_id"] == second_provider


def test_stored_fact_lookup_searches_the_index(settings):
    """On SQLite the lookup of stored facts searches the unique index.

    A scan of the whole index would make every batch with a repeated event
    slower as the table grows.
    """
    upgrade(settings.database_url)
    app = create_app(settings)
    engine = app.extensions["hpass"].engine
    statements = FactBatchStatements(engine.dialect)
    sql, parameters = statements.fact_select([(1, "a"), (2, "b"), (1, "c")])
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    finally:
        connection.close()

    assert "SEARCH completion_facts USING COVERING INDEX" in plan, plan
    assert "SCAN" not in plan, plan
    intake.stop(app)
    engine.dispose()


def test_learner_fact_reads_search_the_learner_index(settings):
    """On SQLite, reading one learner's facts in a course searches an index.

    Rule evaluation and progress pages run these reads; with only the provider
    index they went through every fact of the provider.
    """
    from sqlalchemy import func, select

    from badge_engine.models import CompletionFactRecord as Fact

    upgrade(settings.database_url)
    app = create_app(settings)
    engine = app.extensions["hpass"].engine
    learner = (
        Fact.provider_id == 1,
        Fact.lms_connection_id == 2,
        Fact.lms_course_id == "101",
        Fact.lms_user_id == "7",
    )
    reads = [
        select(Fact.activity_id, Fact.state).where(
            *learner, Fact.activity_id.in_(["4001", "4002"])
        ),
        select(func.min(Fact.occurred_at)).where(*learner, Fact.activity_id.is_(None)),
        select(Fact.id).where(*learner[:2], Fact.lms_user_id == "7"),
    ]
    with engine.connect() as connection:
        for read in reads:
            compiled = read.compile(engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            )
            assert "SEARCH completion_facts USING" in plan, plan
            assert "INDEX ix_completion_facts_learner" in plan, plan
    intake.stop(app)
    engine.dispose()
