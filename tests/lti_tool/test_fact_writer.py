"""Group commit of webhook facts: batches, bad facts, writer failures and duplicates."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

import lti_tool.fact_writer as fact_writer_module
from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage
from lti_tool.fact_writer import FactNotStored, FactWriter
from lti_tool import intake
from lti_tool.intake import WRITER
from lti_tool.lti.serialize import database_writes
from tests.support.seed import add_moodle_connection, add_provider

FIXTURES = Path(__file__).parents[1] / "fixtures" / "moodle"
SECRET = "webhook-secret-academy"


@pytest.fixture
def connection(app, db):
    provider = add_provider(db)
    connection = add_moodle_connection(
        db, app.extensions["hpass"].vault, provider, "http://127.0.0.1:9", "token"
    )
    db.commit()
    return connection


def _event(learner_id: int) -> dict:
    body = json.loads((FIXTURES / "event_course_completed.json").read_text())
    body["token"] = SECRET
    body["relateduserid"] = learner_id
    body.get("other", {}).pop("relateduserid", None)
    return body


def _fact(connection, learner_id: int, *, provider_id: int | None = None):
    return CompletionFact(
        provider_id=provider_id or connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        lms_user_id=str(learner_id),
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        source=FactSource.EVENT,
        source_event_id=f"event-{learner_id}",
        raw_payload={"learner": learner_id},
    )


def _counts(db) -> tuple[int, int]:
    db.expire_all()
    facts = db.scalar(select(func.count()).select_from(CompletionFactRecord))
    messages = db.scalar(select(func.count()).select_from(OutboxMessage))
    return facts, messages


def _wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _post_all(app, public_id: str, bodies: list[dict]) -> list:
    """Post each body from its own thread with its own test client."""

    def post(body):
        return app.test_client().post(f"/webhooks/moodle/{public_id}", json=body)

    pool = ThreadPoolExecutor(max_workers=len(bodies))
    return pool, [pool.submit(post, body) for body in bodies]


def test_same_event_concurrently_stored_once(app, db, connection):
    """Eight concurrent posts of one event store one fact; one 202, seven duplicates."""
    pool, futures = _post_all(app, connection.public_id, [_event(3001)] * 8)
    responses = [future.result(timeout=60) for future in futures]
    pool.shutdown()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 7 + [202]
    assert len({response.json["fact_id"] for response in responses}) == 1
    assert _counts(db) == (1, 1)


def test_waiting_requests_share_commits(app, db, connection, monkeypatch):
    """Six requests that wait while the writer is busy are stored in two commits."""
    writer = app.extensions[WRITER]
    engine = app.extensions["hpass"].engine
    real_record_facts = fact_writer_module.record_facts
    # The writer runs one transaction per call of record_facts.
    transactions = []

    def counted(*args, **options):
        transactions.append(1)
        return real_record_facts(*args, **options)

    monkeypatch.setattr(fact_writer_module, "record_facts", counted)

    with database_writes(engine):
        pool, futures = _post_all(
            app, connection.public_id, [_event(4000 + n) for n in range(6)]
        )
        # The writer holds the facts it took at the lock; the others queue.
        assert _wait_until(lambda: writer.waiting() == 6)
    responses = [future.result(timeout=60) for future in futures]
    pool.shutdown()

    assert [response.status_code for response in responses] == [202] * 6
    assert len(transactions) <= 2
    assert _counts(db) == (6, 6)


def test_bad_fact_fails_only_itself(app, db, connection):
    """A fact the database rejects in a batch fails alone; the rest are stored."""
    engine = app.extensions["hpass"].engine
    committed: list[list[int]] = []
    writer = FactWriter(engine, on_committed=committed.append)
    facts = [_fact(connection, 5000 + n) for n in range(4)]
    # No provider has this id, so the foreign key rejects the row.
    bad = _fact(connection, 5999, provider_id=999_999)
    results: dict[int, object] = {}

    def write(index, fact):
        try:
            results[index] = writer.write(fact, timeout=30)
        except FactNotStored as error:
            results[index] = error

    with database_writes(engine):
        threads = [threading.Thread(target=write, args=(0, facts[0]))]
        threads[0].start()
        assert _wait_until(lambda: writer.waiting() == 1)
        # Let the writer take the first fact and stop at the lock.
        time.sleep(0.2)
        for index, fact in enumerate([facts[1], bad, facts[2], facts[3]], start=1):
            threads.append(threading.Thread(target=write, args=(index, fact)))
            threads[-1].start()
        assert _wait_until(lambda: writer.waiting() == 5)
    for thread in threads:
        thread.join(timeout=60)

    assert isinstance(results[2], FactNotStored)
    stored = [results[index] for index in (0, 1, 3, 4)]
    assert all(result.created for result in stored)
    assert all(result.message_id for result in stored)
    assert _counts(db) == (4, 4)
    assert sorted(sum(committed, [])) == sorted(r.message_id for r in stored)


def test_writer_crash_returns_503(app, db, connection, monkeypatch):
    """A writer that fails after its inserts returns 503 to every waiting request
    and leaves nothing stored; the next event is stored as usual."""
    engine = app.extensions["hpass"].engine
    writer = app.extensions[WRITER]
    real_record_facts = fact_writer_module.record_facts

    class WriterCrash(BaseException):
        pass

    def record_then_crash(*args, **options):
        real_record_facts(*args, **options)
        raise WriterCrash("injected before the commit")

    with database_writes(engine):
        pool, futures = _post_all(
            app, connection.public_id, [_event(6000 + n) for n in range(4)]
        )
        assert _wait_until(lambda: writer.waiting() == 4)
        monkeypatch.setattr(fact_writer_module, "record_facts", record_then_crash)
    responses = [future.result(timeout=60) for future in futures]
    pool.shutdown()

    assert [response.status_code for response in responses] == [503] * 4
    assert all(response.json["error"] == "not_stored" for response in responses)
    assert all("send it again" in response.json["message"] for response in responses)
    assert _counts(db) == (0, 0)

    monkeypatch.setattr(fact_writer_module, "record_facts", real_record_facts)
    response = app.test_client().post(
        f"/webhooks/moodle/{connection.public_id}", json=_event(6000)
    )
    assert response.status_code == 202
    assert _counts(db) == (1, 1)


def test_write_times_out_as_not_stored(app, connection):
    """A fact whose commit does not come in time raises FactNotStored."""
    engine = app.extensions["hpass"].engine
    writer = FactWriter(engine, on_committed=lambda ids: None)

    with database_writes(engine):
        with pytest.raises(FactNotStored, match="not stored within"):
            writer.write(_fact(connection, 7000), timeout=0.2)


def test_committed_messages_marked_dispatched(app, db, connection):
    """Group commit stores each message as dispatched, so the sweep leaves it alone."""
    response = app.test_client().post(
        f"/webhooks/moodle/{connection.public_id}", json=_event(8000)
    )

    assert response.status_code == 202
    message = db.scalars(select(OutboxMessage)).one()
    assert message.dispatched_at is not None


def test_stop_ends_threads(app, db, connection):
    """Stopping the intake ends its threads; the next event starts them again."""
    client = app.test_client()
    url = f"/webhooks/moodle/{connection.public_id}"
    writer = app.extensions[WRITER]
    assert client.post(url, json=_event(9000)).status_code == 202
    started = list(writer._threads)
    dispatcher = app.extensions["hpass_dispatcher"]._thread

    assert intake.stop(app)

    assert started
    assert not any(thread.is_alive() for thread in started)
    assert not dispatcher.is_alive()
    assert client.post(url, json=_event(9001)).status_code == 202
    assert all(thread.is_alive() for thread in writer._threads)
    assert _counts(db) == (2, 2)
