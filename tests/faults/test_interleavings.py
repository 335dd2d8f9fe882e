"""Property test: random interleavings of completions, reversals and duplicates.

Whatever order the events arrive and are processed in, and however often each
arrives, the final awards must equal a simple model: a learner has exactly one
credential when Moodle's final state shows the course completed (all activities
complete), dated by that completion, and none otherwise. Facts must equal the
distinct events sent.

The bridge runs in-process on SQLite with the real webhook endpoint and the real
outbox handler; Moodle is the demo stand-in served over HTTP on loopback.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as record_statistic
from hypothesis import strategies as st
from sqlalchemy import func, select

from badge_engine.models import (
    Achievement,
    CompletionFactRecord,
    Credential,
    Learner,
)
from badge_engine.outbox import OutboxMessage, OutboxStatus
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.models import LmsConnection, LmsKind
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.tasks import run_outbox_message
from lti_tool.views.webhooks import secret_digest
from tests.support.seed import add_provider

ACTIVITIES = (4001, 4002)
START = 1735689600
WEBHOOK_SECRET = "property-webhook-secret"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def moodle():
    stand_in = MoodleStandIn(
        "property-token",
        webhook_url="http://127.0.0.1:9/unused",
        webhook_secret=WEBHOOK_SECRET,
    )
    server = stand_in.start()
    yield stand_in
    server.stop()


# One learner's history: (course module, new state) changes, one minute apart.
# Completions outnumber reversals so that about half the learners end complete.
changes = st.lists(
    st.tuples(st.sampled_from(ACTIVITIES), st.sampled_from([0, 1, 1, 1])),
    min_size=2,
    max_size=6,
)
histories = st.lists(changes, min_size=1, max_size=4)


def _setup(app, moodle):
    """Add a provider, its Moodle connection and a course-completion badge."""
    bridge = app.extensions["hpass"]
    number = next(_numbers)
    with bridge.session() as session:
        provider = add_provider(session, slug=f"p{number}", name=f"Provider {number}")
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="Moodle",
            base_url=moodle.site_url,
            api_token_encrypted=bridge.vault.encrypt(moodle.token),
            webhook_secret_sha256=secret_digest(WEBHOOK_SECRET),
        )
        session.add(connection)
        session.flush()
        session.add(
            Achievement(
                provider_id=provider.id,
                lms_connection_id=connection.id,
                lms_course_id=str(DEMO_COURSE_ID),
                name="Essentials",
                description="Completed the course.",
                criteria_narrative="Complete the course.",
                award_rule=COURSE_COMPLETED_RULE,
            )
        )
        session.commit()
        return provider.id, connection.public_id


def _play_history(moodle, user_id: int, history) -> tuple[list[dict], int | None]:
    """Apply the history to Moodle; return its events and the final completion time."""
    course = moodle.courses[DEMO_COURSE_ID]
    course.tracked_user_ids.add(user_id)
    moodle.users[user_id] = f"Learner {user_id}"
    states = {cmid: (0, 0) for cmid in ACTIVITIES}
    events = []
    for step, (cmid, state) in enumerate(history):
        time = START + 60 * (step + 1)
        states[cmid] = (state, time)
        moodle.set_activity_state(DEMO_COURSE_ID, user_id, cmid, state, time)
        events.append(
            moodle.build_module_completion_event(
                DEMO_COURSE_ID, user_id, cmid, state, time
            )
        )

    if all(state == 1 for state, _ in states.values()):
        completed_at = max(time for _, time in states.values())
        moodle.set_course_completed(DEMO_COURSE_ID, user_id, True, completed_at)
        events.append(
            moodle.build_course_completed_event(DEMO_COURSE_ID, user_id, completed_at)
        )
        return events, completed_at

    moodle.set_course_completed(DEMO_COURSE_ID, user_id, False, 0)
    return events, None


def _pending_ids(bridge, provider_id: int) -> list[int]:
    with bridge.session() as session:
        return list(
            session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.provider_id == provider_id,
                    OutboxMessage.kind == "fact.evaluate",
                    OutboxMessage.status == OutboxStatus.PENDING.value,
                )
                .order_by(OutboxMessage.id)
            )
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories=histories, data=st.data())
def test_interleavings_match_model(app, moodle, histories, data):
    """Random order, duplicates and processing interleavings give the model's awards."""
    bridge = app.extensions["hpass"]
    client = app.test_client()
    provider_id, connection_public_id = _setup(app, moodle)
    first_user = 100000 + next(_numbers) * 10

    expected: dict[str, int | None] = {}
    events = []
    for offset, history in enumerate(histories):
        user_id = first_user + offset
        learner_events, completed_at = _play_history(moodle, user_id, history)
        expected[str(user_id)] = completed_at
        events += learner_events

    copies = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    deliveries = data.draw(st.permutations(events + copies))
    with app.app_context():
        for event in deliveries:
            response = client.post(
                f"/webhooks/moodle/{connection_public_id}", json=event
            )
            assert response.status_code in (200, 202), response.get_data(as_text=True)
            pending = _pending_ids(bridge, provider_id)
            if pending and data.draw(st.booleans()):
                run_outbox_message.run(data.draw(st.sampled_from(pending)))
        while pending := _pending_ids(bridge, provider_id):
            run_outbox_message.run(data.draw(st.sampled_from(pending)))

    with bridge.session() as session:
        facts = session.scalar(
            select(func.count(CompletionFactRecord.id)).where(
                CompletionFactRecord.provider_id == provider_id
            )
        )
        awarded = {
            lms_user_id: awarded_at
            for lms_user_id, awarded_at in session.execute(
                select(Learner.lms_user_id, Credential.awarded_at)
                .join(Learner, Learner.id == Credential.learner_id)
                .where(Credential.provider_id == provider_id)
            )
        }
        credential_count = session.scalar(
            select(func.count(Credential.id)).where(
                Credential.provider_id == provider_id
            )
        )

    model = {
        user: datetime.fromtimestamp(completed_at, UTC)
        for user, completed_at in expected.items()
        if completed_at is not None
    }
    record_statistic(f"learners awarded: {len(model)} of {len(expected)}")
    assert facts == len(events)
    assert credential_count == len(model)
    assert awarded == model
