"""AGS as a grade source, end to end over loopback HTTP: a launch stores the AGS
endpoint, the platform records a score, the poll stores a grade fact and the grade
rule awards the badge exactly once."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import (
    Achievement,
    CompletionFactRecord,
    Credential,
    FactOutcome,
    Learner,
)
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.models import LmsConnection, LmsContact, LmsKind
from lti_tool.ags_tasks import poll_ags_course, poll_ags_courses
from lti_tool.course_activities import read_course_activities
from lti_tool.demo.peers.ags_service import AgsService
from lti_tool.demo.peers.platform import (
    DEMO_COURSE,
    DEFAULT_CLIENT_ID,
    PlatformPeer,
    ToolRegistration,
)
from lti_tool.lti.registrations import create_registration
from lti_tool.models import AgsLineItem, LtiCourse
from lti_tool.tasks import run_outbox_message
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url
from tests.lti_tool.lti.platform_setup import start_bridge, stop
from tests.support.databases import reset_postgres
from tests.support.seed import add_provider

LEARNER_SUB = "3001"


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    """The demo platform with AGS, and the bridge with an LTI-only connection."""
    database_url = reset_postgres() if request.param == "postgresql" else None
    ags = AgsService(DEFAULT_CLIENT_ID)
    peer = PlatformPeer(ags=ags)
    peer_server = peer.start()
    app, server = start_bridge(tmp_path, database_url)
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session)
        # Registered by LTI only: no API token, so AGS is the only grade source.
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="LTI-only Moodle",
            base_url=peer.issuer,
        )
        session.add(connection)
        session.flush()
        registration = create_registration(
            session,
            bridge.vault,
            provider,
            issuer=peer.token_issuer,
            client_id=peer.client_id,
            auth_login_url=f"{peer.issuer}/auth",
            key_set_url=f"{peer.issuer}/jwks",
            auth_token_url=ags.token_url(),
            deployment_ids=(peer.deployment_id,),
            lms_connection_id=connection.id,
        )
        session.commit()
        public_id = registration.public_id
        connection_id = connection.id
    peer.register_tool(
        ToolRegistration(
            login_url=lti_login_url(server.url, public_id),
            launch_url=lti_launch_url(server.url, public_id),
            jwks_url=lti_jwks_url(server.url, public_id),
        )
    )
    yield app, peer, ags, connection_id
    stop(app, server, peer_server)


def _launch(peer) -> None:
    response = peer.launch_with_session(requests.Session(), "learner")
    assert response.status_code == 200, response.text[:500]


def _poll(app, course_id: int) -> str:
    with app.app_context():
        return poll_ags_course.run(course_id)


def _run_outbox(app) -> list[str]:
    """Run every pending outbox message, as a worker does after the poll's dispatch."""
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        ids = session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.status == OutboxStatus.PENDING.value
            )
        ).all()
    with app.app_context():
        return [run_outbox_message.run(message_id) for message_id in ids]


def _add_grade_badge(session, connection_id: int, activity_id: str) -> None:
    connection = session.get(LmsConnection, connection_id)
    session.add(
        Achievement(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id=str(DEMO_COURSE.moodle_course_id),
            name="Assessed",
            description="Passed the final assessment.",
            criteria_narrative="Score at least 80% in the final assessment.",
            award_rule={
                "version": 1,
                "rule": {
                    "kind": "grade_at_least",
                    "activity_id": activity_id,
                    "min_percent": 80,
                },
            },
        )
    )
    session.commit()


def test_ags_grade_awards_once(world):
    """A score read through AGS awards the grade badge once; a second poll adds nothing."""
    app, peer, ags, connection_id = world
    bridge = app.extensions["hpass"]
    item_url = ags.add_line_item(DEMO_COURSE.context_id, "Final assessment", 50)
    _launch(peer)

    with bridge.session() as session:
        course = session.scalars(select(LtiCourse)).one()
        course_id = course.id
        assert course.ags_lineitems_url == ags.lineitems_url(DEMO_COURSE.context_id)
        learner = session.scalars(select(Learner)).one()
        assert learner.lti_sub == LEARNER_SUB

    # The first poll finds the line item, which the rule builder then offers.
    assert _poll(app, course_id) == "done"
    with bridge.session() as session:
        line_item = session.scalars(select(AgsLineItem)).one()
        activity_id = line_item.activity_id
        connection = session.get(LmsConnection, connection_id)
        activities = read_course_activities(
            bridge, session, connection, str(DEMO_COURSE.moodle_course_id)
        )
        assert [a.activity_id for a in activities] == [activity_id]
        assert activities[0].name == "Final assessment"
        _add_grade_badge(session, connection_id, activity_id)

    ags.set_result(item_url, LEARNER_SUB, 45)
    with app.app_context():
        assert poll_ags_courses.run() == 1
    assert _poll(app, course_id) == "done"
    assert _run_outbox(app)[0] == "done"

    with bridge.session() as session:
        credentials = session.scalars(select(Credential)).all()
        assert len(credentials) == 1
        fact = session.scalars(select(CompletionFactRecord)).one()
        assert fact.grade_percent == 90.0
        assert fact.activity_id == activity_id
        assert fact.outcome == FactOutcome.AWARDED.value
        contact = session.scalars(select(LmsContact)).one()
        assert contact.last_success_source == "ags_poll"
        assert not contact.failing

    assert _poll(app, course_id) == "done"
    _run_outbox(app)
    with bridge.session() as session:
        assert len(session.scalars(select(Credential)).all()) == 1
        assert len(session.scalars(select(CompletionFactRecord)).all()) == 1


def test_ags_low_grade_awards_nothing(world):
    """A score below the rule's threshold is recorded and awards nothing."""
    app, peer, ags, connection_id = world
    bridge = app.extensions["hpass"]
    item_url = ags.add_line_item(DEMO_COURSE.context_id, "Quiz", 10)
    _launch(peer)
    with bridge.session() as session:
        course_id = session.scalars(select(LtiCourse.id)).one()
    _poll(app, course_id)
    with bridge.session() as session:
        activity_id = session.scalars(select(AgsLineItem)).one().activity_id
        _add_grade_badge(session, connection_id, activity_id)

    ags.set_result(item_url, LEARNER_SUB, 7)
    _poll(app, course_id)
    _run_outbox(app)

    with bridge.session() as session:
        assert session.scalars(select(Credential)).all() == []
        fact = session.scalars(select(CompletionFactRecord)).one()
        assert fact.grade_percent == 70.0
        assert fact.outcome == FactOutcome.NO_RULE_MET.value


def test_ags_changed_score_new_fact(world):
    """A raised score is a new fact that awards; the earlier low score stays recorded."""
    app, peer, ags, connection_id = world
    bridge = app.extensions["hpass"]
    item_url = ags.add_line_item(DEMO_COURSE.context_id, "Quiz", 10)
    _launch(peer)
    with bridge.session() as session:
        course_id = session.scalars(select(LtiCourse.id)).one()
    _poll(app, course_id)
    with bridge.session() as session:
        activity_id = session.scalars(select(AgsLineItem)).one().activity_id
        _add_grade_badge(session, connection_id, activity_id)

    ags.set_result(item_url, LEARNER_SUB, 5)
    _poll(app, course_id)
    _run_outbox(app)
    ags.set_result(item_url, LEARNER_SUB, 9)
    _poll(app, course_id)
    _run_outbox(app)

    with bridge.session() as session:
        percents = session.scalars(
            select(CompletionFactRecord.grade_percent).order_by(CompletionFactRecord.id)
        ).all()
        assert percents == [50.0, 90.0]
        assert len(session.scalars(select(Credential)).all()) == 1


def test_ags_poll_rate_limited(world):
    """A 429 on the line item request ends the poll as rate limited, storing nothing."""
    app, peer, ags, _ = world
    bridge = app.extensions["hpass"]
    ags.add_line_item(DEMO_COURSE.context_id, "Quiz", 10)
    _launch(peer)
    with bridge.session() as session:
        course_id = session.scalars(select(LtiCourse.id)).one()
    ags.fail_next("lineitems", 429, headers={"Retry-After": "600"})

    assert _poll(app, course_id) == "rate_limited"
    with bridge.session() as session:
        assert session.scalars(select(AgsLineItem)).all() == []
        contact = session.scalars(select(LmsContact)).one()
        assert contact.failing
        assert contact.last_failure_source == "ags_poll"


def test_ags_poll_scope_missing(world):
    """A platform that grants no result scope makes the poll fail with nothing stored."""
    app, peer, ags, connection_id = world
    bridge = app.extensions["hpass"]
    ags.granted_scopes = ()
    ags.add_line_item(DEMO_COURSE.context_id, "Quiz", 10)
    _launch(peer)
    with bridge.session() as session:
        course_id = session.scalars(select(LtiCourse.id)).one()

    assert _poll(app, course_id) == "failed"
    with bridge.session() as session:
        assert session.scalars(select(CompletionFactRecord)).all() == []
        contact = session.scalars(select(LmsContact)).one()
        assert contact.failing
        assert contact.last_failure_source == "ags_poll"
        assert contact.last_failure_detail


def test_ags_unlaunched_learner_skipped(world):
    """A result whose sub no launch brought is skipped until the learner launches."""
    app, peer, ags, connection_id = world
    bridge = app.extensions["hpass"]
    item_url = ags.add_line_item(DEMO_COURSE.context_id, "Quiz", 10)
    _launch(peer)
    with bridge.session() as session:
        course_id = session.scalars(select(LtiCourse.id)).one()
    _poll(app, course_id)
    with bridge.session() as session:
        activity_id = session.scalars(select(AgsLineItem)).one().activity_id
        _add_grade_badge(session, connection_id, activity_id)
    ags.set_result(item_url, "sub-never-launched", 10)

    assert _poll(app, course_id) == "done"
    with bridge.session() as session:
        assert session.scalars(select(CompletionFactRecord)).all() == []
