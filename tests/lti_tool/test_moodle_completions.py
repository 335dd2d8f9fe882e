"""Moodle completions end to end: the fake Moodle over real HTTP, the bridge's web
server and a real Celery worker, on SQLite and on PostgreSQL with Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from badge_engine.models import CompletionFactRecord, Credential, FactOutcome
from connectors.models import ConnectionState, LmsConnection
from connectors.moodle.models import MoodlePollCursor
from lti_tool.demo.peers.moodle_ws import (
    COMPLETION_INCOMPLETE,
    DEMO_COURSE_ID,
    DEMO_LEARNER_ID,
)
from lti_tool.demo.stack import DemoStack, wait_for
from lti_tool.tasks import POLL_MOODLE_CONNECTION
from tests.support.databases import reset_postgres, reset_redis

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60
COMPLETED_AT = 1735689600
QUIZ_CMID = 4001


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def stack(tmp_path):
    stacks = []

    def start(backend: str = "sqlite") -> DemoStack:
        options = {}
        if backend == "postgres":
            options = {"database_url": reset_postgres(), "broker_url": reset_redis()}
        made = DemoStack(tmp_path / f"instance-{len(stacks)}", **options)
        stacks.append(made)
        made.start_web()
        made.start_worker()
        return made

    yield start
    for made in stacks:
        made.stop()


def _credentials(demo: DemoStack) -> list[Credential]:
    with demo.bridge.session() as session:
        return session.scalars(select(Credential)).all()


def _facts(demo: DemoStack) -> list[CompletionFactRecord]:
    with demo.bridge.session() as session:
        return session.scalars(
            select(CompletionFactRecord).order_by(CompletionFactRecord.id)
        ).all()


def _connection(demo: DemoStack) -> LmsConnection:
    with demo.bridge.session() as session:
        return session.scalars(
            select(LmsConnection).where(
                LmsConnection.public_id == demo.peers.ids.connection_public_id
            )
        ).one()


def _all_processed(demo: DemoStack, count: int) -> bool:
    facts = _facts(demo)
    pending = [fact for fact in facts if fact.outcome == FactOutcome.PENDING.value]
    return len(facts) >= count and not pending


def _poll(demo: DemoStack) -> None:
    celery = demo.app.extensions["celery"]
    celery.send_task(POLL_MOODLE_CONNECTION, args=[_connection(demo).id])


def _wait_credentials(demo: DemoStack, count: int = 1) -> list[Credential]:
    found = wait_for(lambda: len(_credentials(demo)) >= count, WAIT_SECONDS)
    assert found, "no credential issued\n" + demo.logs()
    return _credentials(demo)


def test_completion_awards_once(stack, backend):
    """A course completion awards one credential dated at Moodle's completion time."""
    demo = stack(backend)
    moodle = demo.peers.moodle

    event = moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT)
    _wait_credentials(demo)
    assert moodle.post_event(event) == 200
    _poll(demo)
    polled = wait_for(lambda: _facts_from_poll(demo), WAIT_SECONDS)
    assert polled, "the poll stored no fact\n" + demo.logs()
    assert wait_for(lambda: _all_processed(demo, 3), WAIT_SECONDS), demo.logs()

    credentials = _credentials(demo)
    assert len(credentials) == 1
    assert credentials[0].awarded_at.timestamp() == COMPLETED_AT
    assert credentials[0].completion_reversed_at is None


def _facts_from_poll(demo: DemoStack) -> list[CompletionFactRecord]:
    return [fact for fact in _facts(demo) if fact.source == "poll"]


def test_override_before_award_prevents(stack):
    """A teacher's override to incomplete before the award means no award."""
    demo = stack()
    moodle = demo.peers.moodle
    completed = moodle.complete_course(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT, send_event=False
    )
    moodle.override_activity_state(
        DEMO_COURSE_ID,
        DEMO_LEARNER_ID,
        QUIZ_CMID,
        COMPLETION_INCOMPLETE,
        COMPLETED_AT + 60,
    )
    assert wait_for(lambda: _all_processed(demo, 1), WAIT_SECONDS), demo.logs()

    # course_completed often arrives late, from cron, after the override.
    assert moodle.post_event(completed) == 202
    assert wait_for(lambda: _all_processed(demo, 2), WAIT_SECONDS), demo.logs()

    outcomes = [fact.outcome for fact in _facts(demo)]
    assert outcomes == [FactOutcome.REVERSAL.value, FactOutcome.NOT_CONFIRMED.value]
    assert _credentials(demo) == []


def test_override_after_award_flags(stack):
    """A teacher's override after the award flags the credential and keeps it live."""
    demo = stack()
    moodle = demo.peers.moodle
    moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT)
    credential = _wait_credentials(demo)[0]

    moodle.override_activity_state(
        DEMO_COURSE_ID,
        DEMO_LEARNER_ID,
        QUIZ_CMID,
        COMPLETION_INCOMPLETE,
        COMPLETED_AT + 3600,
    )
    flagged = wait_for(
        lambda: [c for c in _credentials(demo) if c.completion_reversed_at],
        WAIT_SECONDS,
    )

    assert flagged, "the credential was never flagged\n" + demo.logs()
    assert flagged[0].public_id == credential.public_id
    assert flagged[0].status == "live"
    assert flagged[0].completion_reversed_at.timestamp() == COMPLETED_AT + 3600
    assert f"course module {QUIZ_CMID}" in flagged[0].completion_reversal_detail
    reversal = _facts(demo)[-1]
    assert reversal.outcome == FactOutcome.REVERSAL.value
    assert credential.public_id in reversal.outcome_detail


def test_poll_finds_missed_completion(stack, backend):
    """A completion that produced no event is found and awarded by the next poll."""
    demo = stack(backend)
    moodle = demo.peers.moodle
    moodle.complete_course(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT, send_event=False
    )
    assert moodle.deliveries == []

    _poll(demo)
    credentials = _wait_credentials(demo)

    assert len(credentials) == 1
    assert credentials[0].awarded_at.timestamp() == COMPLETED_AT
    facts = _facts(demo)
    assert {fact.source for fact in facts} == {"poll"}
    course_facts = [fact for fact in facts if fact.activity_id is None]
    assert len(course_facts) == 1


def test_poll_twice_stores_nothing_new(stack):
    """A second poll over the same state stores no fact and awards nothing more."""
    demo = stack()
    moodle = demo.peers.moodle
    moodle.complete_course(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT, send_event=False
    )
    _poll(demo)
    _wait_credentials(demo)
    assert wait_for(lambda: _all_processed(demo, 1), WAIT_SECONDS), demo.logs()
    fact_count = len(_facts(demo))
    passes = _passes_completed(demo)

    _poll(demo)
    assert wait_for(lambda: _passes_completed(demo) > passes, WAIT_SECONDS)

    assert len(_facts(demo)) == fact_count
    assert len(_credentials(demo)) == 1


def _passes_completed(demo: DemoStack) -> int:
    with demo.bridge.session() as session:
        cursor = session.scalars(select(MoodlePollCursor)).one_or_none()
        if cursor is None or cursor.last_pass_completed_at is None:
            return 0
        return int(cursor.last_pass_completed_at.timestamp() * 1000)


def test_user_graded_triggers_reread(stack):
    """user_graded makes the bridge re-read the learner and award what it finds."""
    demo = stack()
    moodle = demo.peers.moodle
    moodle.complete_course(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT, send_event=False
    )
    event = moodle.build_course_completed_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT
    )
    event.update(
        eventname="\\core\\event\\user_graded",
        objecttable="grade_grades",
        objectid=80001,
        other={"itemid": 501, "overridden": False, "finalgrade": 85.0},
    )

    assert moodle.post_event(event) == 202
    credentials = _wait_credentials(demo)

    assert credentials[0].awarded_at.timestamp() == COMPLETED_AT


def test_revoked_token_stops_polling(stack):
    """A token Moodle rejects marks the connection broken and stops its polls."""
    demo = stack()
    moodle = demo.peers.moodle
    moodle.revoke_token(demo.peers.secrets.moodle_token)

    _poll(demo)
    broken = wait_for(
        lambda: _connection(demo).state == ConnectionState.BROKEN.value, WAIT_SECONDS
    )

    assert broken, demo.logs()
    assert "invalidtoken" in _connection(demo).state_detail
    calls = len(moodle.calls)
    _poll(demo)
    skipped = wait_for(lambda: "moodle_poll_skipped" in demo.logs(), WAIT_SECONDS)
    assert skipped, demo.logs()
    assert len(moodle.calls) == calls
