"""The award pipeline's Moodle paths, run in process against the fake Moodle over
real HTTP: re-read failures, unknown users, and the poll task's broken-token state."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import (
    Achievement,
    CompletionFactRecord,
    FactOutcome,
    Learner,
    Provider,
)
from badge_engine.outbox import OutboxMessage
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.models import ConnectionState, LmsConnection, LmsKind
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.pipeline import HandlerContext, RetryLater, evaluate_fact, record_fact
from lti_tool.tasks import poll_moodle_connection

TOKEN = "pipeline-token-0001"
COMPLETED_AT = 1735689600


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def connection_id(app, db, moodle):
    """A provider with a Moodle connection to the fake and a course badge."""
    bridge = app.extensions["hpass"]
    provider = Provider(slug="pipeline", name="Pipeline", url="https://p.invalid")
    db.add(provider)
    db.flush()
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Moodle",
        base_url=moodle.site_url,
        api_token_encrypted=bridge.vault.encrypt(TOKEN),
    )
    db.add(connection)
    db.flush()
    db.add(
        Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id=str(DEMO_COURSE_ID),
            name="Badge",
            description="A badge.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()
    return connection.id


def _evaluate(app, db, connection_id: int, user_id: int) -> CompletionFactRecord:
    connection = db.get(LmsConnection, connection_id)
    fact = CompletionFact(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id=str(DEMO_COURSE_ID),
        lms_user_id=str(user_id),
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=datetime.fromtimestamp(COMPLETED_AT, tz=timezone.utc),
        source=FactSource.EVENT,
    )
    record, message = record_fact(db, fact)
    db.commit()

    context = HandlerContext(
        bridge=app.extensions["hpass"], session=db, message=message
    )
    with app.app_context():
        evaluate_fact(context)
    db.commit()
    return record


def test_unknown_user_not_confirmed(app, db, moodle, connection_id):
    """A fact for a user Moodle does not know is recorded as not confirmed."""
    record = _evaluate(app, db, connection_id, 9999)

    assert record.outcome == FactOutcome.NOT_CONFIRMED.value
    assert "invalidrecord" in record.outcome_detail


def test_html_answer_retried_later(app, db, moodle, connection_id):
    """A site answering HTML leaves the fact pending for a retry."""
    moodle.html_next(1)

    with pytest.raises(RetryLater) as raised:
        _evaluate(app, db, connection_id, DEMO_LEARNER_ID)

    assert "not JSON" in str(raised.value)
    db.rollback()
    fact = db.scalars(select(CompletionFactRecord)).one()
    assert fact.outcome == FactOutcome.PENDING.value


def test_poll_task_html_keeps_connection(app, db, moodle, connection_id):
    """A poll that meets an HTML answer fails and leaves the connection OK."""
    moodle.html_next(1)

    with app.app_context():
        outcome = poll_moodle_connection.run(connection_id)

    assert outcome == "failed"
    db.expire_all()
    assert db.get(LmsConnection, connection_id).state == ConnectionState.OK.value


def test_poll_task_revoked_token_breaks(app, db, moodle, connection_id):
    """A poll whose token Moodle rejects marks the connection broken, and the next
    poll skips it without calling Moodle."""
    moodle.revoke_token(TOKEN)

    with app.app_context():
        first = poll_moodle_connection.run(connection_id)
        calls = len(moodle.calls)
        second = poll_moodle_connection.run(connection_id)

    assert first == "broken"
    assert second == "skipped"
    assert len(moodle.calls) == calls
    db.expire_all()
    connection = db.get(LmsConnection, connection_id)
    assert connection.state == ConnectionState.BROKEN.value
    assert "invalidtoken" in connection.state_detail


def test_poll_task_stores_and_queues(app, db, moodle, connection_id):
    """A poll stores a missed completion with its evaluation message."""
    moodle.complete_course(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT, send_event=False
    )

    with app.app_context():
        outcome = poll_moodle_connection.run(connection_id)

    assert outcome == "done"
    facts = db.scalars(select(CompletionFactRecord)).all()
    assert any(fact.activity_id is None for fact in facts)
    messages = db.scalars(select(OutboxMessage)).all()
    assert len(messages) == len(facts)


def test_poll_fills_learner_email(app, db, moodle, connection_id):
    """A poll fills in the email of a learner known only by Moodle user id."""
    connection = db.get(LmsConnection, connection_id)
    db.add(
        Learner(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_user_id=str(DEMO_LEARNER_ID),
        )
    )
    db.commit()

    with app.app_context():
        poll_moodle_connection.run(connection_id)

    db.expire_all()
    learner = db.scalars(select(Learner)).one()
    assert learner.email == f"user{DEMO_LEARNER_ID}@example.invalid"
    assert learner.name == "Learner One"


def test_slow_site_retried_later(app, db, moodle, connection_id):
    """A site slower than the timeout on every attempt leaves the fact pending."""
    app.extensions["hpass"].settings.http_timeout_seconds = 0.3
    moodle.slow_next(3, seconds=1.0)

    with pytest.raises(RetryLater) as raised:
        _evaluate(app, db, connection_id, DEMO_LEARNER_ID)

    assert "timed out" in str(raised.value)
    db.rollback()
    fact = db.scalars(select(CompletionFactRecord)).one()
    assert fact.outcome == FactOutcome.PENDING.value


def test_beat_task_polls_ok_connections(app, db, moodle, connection_id):
    """The periodic task starts a poll for each OK Moodle connection, none for broken."""
    from lti_tool.tasks import poll_moodle_connections

    with app.app_context():
        started = poll_moodle_connections.run()
    db.get(LmsConnection, connection_id).state = ConnectionState.BROKEN.value
    db.commit()
    with app.app_context():
        started_when_broken = poll_moodle_connections.run()

    assert started == 1
    assert started_when_broken == 0
