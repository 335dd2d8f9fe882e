"""The outbox dispatcher: ids sent in tasks of several, marks kept or cleared."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from badge_engine.db import utcnow
from badge_engine.outbox import OutboxMessage, enqueue
from lti_tool.dispatcher import IDS_PER_TASK, LINGER_SECONDS, Dispatcher
from lti_tool.tasks import run_outbox_messages
from tests.support.broker import broker_tasks
from tests.support.seed import add_provider


def _messages(db, count: int, *, dispatched: bool) -> list[int]:
    provider = add_provider(db)
    ids = []
    for number in range(count):
        message = enqueue(
            db,
            provider_id=provider.id,
            kind="test.unknown_kind",
            payload={"number": number},
            idempotency_key=f"dispatcher-test:{number}",
        )
        ids.append(message.id)
    if dispatched:
        for message in db.scalars(select(OutboxMessage)):
            message.dispatched_at = utcnow()
    db.commit()
    return ids


def test_ids_sent_in_tasks_of_fifty(app, db, settings):
    """110 ids go to the broker as tasks of 50, 50 and 10, marked as sent."""
    ids = _messages(db, 110, dispatched=False)
    dispatcher = Dispatcher(app.extensions["hpass"], app.extensions["celery"])

    dispatcher.submit(ids)
    assert dispatcher.flush(timeout=30)

    tasks = broker_tasks(settings)
    assert IDS_PER_TASK == 50
    assert len(tasks) == 3
    assert all("run_outbox_messages" in task for task in tasks)
    db.expire_all()
    assert all(m.dispatched_at for m in db.scalars(select(OutboxMessage)))


def test_failed_send_clears_marks(app, db):
    """A broker failure clears the marks that group commit set, for the sweep."""
    ids = _messages(db, 3, dispatched=True)

    class BrokerDown:
        def producer_or_acquire(self):
            raise ConnectionError("broker down (injected)")

    dispatcher = Dispatcher(app.extensions["hpass"], BrokerDown())
    dispatcher.submit(ids, marked=True)
    assert dispatcher.flush(timeout=30)

    db.expire_all()
    assert all(m.dispatched_at is None for m in db.scalars(select(OutboxMessage)))


def test_run_outbox_messages_counts_outcomes(app, db):
    """A task of several ids runs each alone and counts the outcomes."""
    ids = _messages(db, 3, dispatched=True)
    later = db.get(OutboxMessage, ids[2])
    later.next_attempt_at = utcnow() + timedelta(hours=1)
    db.commit()

    with app.app_context():
        outcomes = run_outbox_messages.run(ids)

    # No handler exists for the kind, so a claimed message fails; a message that
    # is not due yet cannot be claimed and is skipped.
    assert outcomes == {"failed": 2, "skipped": 1}


def test_commits_gathered_into_one_task(app, db, settings):
    """Ids of commits that come within the linger time go out in one task."""
    ids = _messages(db, 6, dispatched=True)
    dispatcher = Dispatcher(app.extensions["hpass"], app.extensions["celery"])

    # The first commit has several ids, so the thread waits for others to gather
    # although nothing else is queued when it takes them.
    dispatcher.submit(ids[:2], marked=True)
    time.sleep(LINGER_SECONDS / 4)
    dispatcher.submit(ids[2:4], marked=True)
    dispatcher.submit(ids[4:], marked=True)
    assert dispatcher.flush(timeout=30)

    tasks = broker_tasks(settings)
    assert len(tasks) == 1
    assert "run_outbox_messages" in tasks[0]
    assert dispatcher.stop()


def test_lone_id_sent_alone(app, db, settings):
    """A single id is sent at once as a task of its own."""
    ids = _messages(db, 1, dispatched=True)
    dispatcher = Dispatcher(app.extensions["hpass"], app.extensions["celery"])

    dispatcher.submit(ids, marked=True)
    assert dispatcher.flush(timeout=30)

    tasks = broker_tasks(settings)
    assert len(tasks) == 1
    assert "run_outbox_messages" not in tasks[0]
    assert dispatcher.stop()
