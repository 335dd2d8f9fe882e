"""The same award rule gives the same outcome for a Moodle and a Canvas course.

Both LMS stand-ins run on loopback with the same learners and the same
completion times; the connectors' progress readers and the pipeline must agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import Achievement, Credential, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE, evaluate_award_rule
from connectors.canvas.connection import connect_canvas
from connectors.canvas.facts import store_completion_fact
from connectors.canvas.progress import read_learner_progress as read_canvas
from connectors.moodle.client import MoodleClient
from connectors.moodle.progress import read_learner_progress as read_moodle
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.tasks import run_outbox_message
from tests.connectors.canvas.conftest import COURSE_ID
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.seed import add_moodle_connection, add_provider

COMPLETED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
# (learner, completes the course)
LEARNERS = ((5001, True), (5002, False), (5003, True))


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn("moodle-token")
    for user_id, _ in LEARNERS:
        stand_in.enrol_learner(DEMO_COURSE_ID, user_id, f"Learner {user_id}")
    with stand_in.start() as server:
        yield stand_in, server.url


@pytest.fixture
def both_completed(fake, moodle):
    """Complete the same learners at the same times in both LMSs."""
    stand_in, _ = moodle
    fake.add_students(COURSE_ID, [user_id for user_id, _ in LEARNERS])
    for index, (user_id, completes) in enumerate(LEARNERS):
        if completes:
            moment = COMPLETED_AT + timedelta(hours=index)
            stand_in.complete_course(
                DEMO_COURSE_ID, user_id, int(moment.timestamp()), send_event=False
            )
            fake.complete(COURSE_ID, user_id, moment)


def test_same_rule_same_outcome(fake, moodle, make_client, both_completed):
    """Each learner's rule outcome (met, and when) is the same in both LMSs."""
    _, moodle_url = moodle
    moodle_client = MoodleClient(moodle_url, "moodle-token", policy=LOOPBACK_POLICY)
    canvas_client = make_client()

    for user_id, completes in LEARNERS:
        from_moodle = evaluate_award_rule(
            COURSE_COMPLETED_RULE,
            read_moodle(moodle_client, str(DEMO_COURSE_ID), str(user_id)),
        )
        from_canvas = evaluate_award_rule(
            COURSE_COMPLETED_RULE,
            read_canvas(canvas_client, str(COURSE_ID), str(user_id)),
        )

        assert from_moodle.met is completes
        assert from_canvas.met is completes
        assert from_canvas.met_at == from_moodle.met_at
        assert from_canvas.missing == from_moodle.missing


def _achievement(provider, connection, course_id):
    return Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=str(course_id),
        name=f"Course {course_id}",
        description="Completed the course.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )


def _fact(connection, course_id, user_id, moment):
    return CompletionFact(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id=str(course_id),
        lms_user_id=str(user_id),
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=moment,
        source=FactSource.EVENT,
    )


def test_pipeline_awards_alike(app, db, fake, moodle, canvas_url, both_completed):
    """Completion facts for every learner award the same learners on the same dates."""
    _, moodle_url = moodle
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    moodle_connection = add_moodle_connection(
        db, vault, provider, moodle_url, "moodle-token"
    )
    canvas_connection = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url=canvas_url,
        access_token=fake.issue_token(),
    )
    db.add_all(
        [
            _achievement(provider, moodle_connection, DEMO_COURSE_ID),
            _achievement(provider, canvas_connection, COURSE_ID),
        ]
    )
    message_ids = []
    for index, (user_id, _) in enumerate(LEARNERS):
        # An event with the LMS's time arrives for every learner, also for the one
        # who has not completed: only the re-read may award.
        moment = COMPLETED_AT + timedelta(hours=index)
        for connection, course_id in (
            (moodle_connection, DEMO_COURSE_ID),
            (canvas_connection, COURSE_ID),
        ):
            stored = store_completion_fact(
                db, _fact(connection, course_id, user_id, moment)
            )
            message_ids.append(stored.message_id)
    db.commit()

    with app.app_context():
        results = [run_outbox_message(message_id) for message_id in message_ids]

    def awards(connection):
        rows = db.execute(
            select(Learner.lms_user_id, Credential.awarded_at)
            .join(Credential, Credential.learner_id == Learner.id)
            .where(Learner.lms_connection_id == connection.id)
            .order_by(Learner.lms_user_id)
        ).all()
        return [tuple(row) for row in rows]

    assert results == ["done"] * len(message_ids)
    assert awards(canvas_connection) == awards(moodle_connection)
    assert [user for user, _ in awards(canvas_connection)] == ["5001", "5003"]
