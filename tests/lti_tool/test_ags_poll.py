"""The AGS poll on a course whose connection also has an LMS API token: which line
items it reads, how it matches learners by `sub`, and how grades reach the rules."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from flask import Flask
from sqlalchemy import select

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import Achievement, CompletionFactRecord, Learner
from badge_engine.rules import GradeProgress, LearnerProgress
from lti_tool.ags_poll import client_for, load_course, poll_course, pollable_course_ids
from lti_tool.ags_progress import with_ags_grades
from lti_tool.demo.peers.ags_service import AgsService
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.ags import SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY
from lti_tool.lti.registrations import create_registration
from lti_tool.models import AgsLineItem, LtiCourse
from lti_tool.pipeline import record_fact
from tests.lti_tool.lti.harness import stop_server
from tests.support.seed import add_moodle_connection, add_provider

CONTEXT = "ctx-7"


@pytest.fixture
def service():
    service = AgsService("tool-client")
    app = Flask("ags")
    service.register_routes(app)
    server = serve_in_thread(app)
    service.base_url = server.url
    yield service
    stop_server(server)


@pytest.fixture
def course(app, db, service):
    """A course on a Moodle connection with a token, launched with the AGS claim."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    registration = create_registration(
        db,
        vault,
        provider,
        issuer=service.base_url,
        client_id="tool-client",
        auth_login_url=f"{service.base_url}/auth",
        key_set_url=f"{service.base_url}/jwks",
        auth_token_url=service.token_url(),
        lms_connection_id=connection.id,
    )
    course = LtiCourse(
        provider_id=provider.id,
        registration_id=registration.id,
        lti_context_id=CONTEXT,
        lms_course_id="55",
        ags_lineitems_url=service.lineitems_url(CONTEXT),
        ags_scopes=f"{SCOPE_LINEITEM_READONLY} {SCOPE_RESULT_READONLY}",
    )
    db.add(course)
    # The launch sent the LMS's own user id in custom, so lms_user_id is not the sub.
    db.add(
        Learner(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_user_id="42",
            lti_sub="sub-learner",
        )
    )
    db.commit()
    return course


def _poll(app, db, course):
    bridge = app.extensions["hpass"]
    target = load_course(db, course.id)
    with client_for(bridge, target) as client:
        result = poll_course(db, client, target)
    db.commit()
    return result


def _rule_on(db, course, activity_id: str) -> None:
    connection_id = db.get(AgsLineItem, int(activity_id[4:])).lms_connection_id
    db.add(
        Achievement(
            provider_id=course.provider_id,
            lms_connection_id=connection_id,
            lms_course_id=course.lms_course_id,
            name="Graded",
            description="Graded.",
            criteria_narrative="A grade of 60% or more.",
            award_rule={
                "version": 1,
                "rule": {
                    "kind": "all_of",
                    "rules": [
                        {"kind": "course_completed"},
                        {
                            "kind": "grade_at_least",
                            "activity_id": activity_id,
                            "min_percent": 60,
                        },
                    ],
                },
            },
        )
    )
    db.commit()


def test_poll_lists_course(db, course):
    """A course with an AGS endpoint on a working connection is polled."""
    assert pollable_course_ids(db) == [course.id]


def test_poll_without_rules_reads_no_results(app, db, service, course):
    """Line items are stored, but results are read only for items a rule names."""
    url = service.add_line_item(CONTEXT, "Essay", 20)
    service.set_result(url, "sub-learner", 15)

    result = _poll(app, db, course)

    assert result.line_items == 1
    assert result.line_items_read == 0
    assert [kind for kind, _ in service.requests] == ["lineitems"]
    assert db.scalars(select(CompletionFactRecord)).all() == []


def test_poll_matches_learner_by_sub(app, db, service, course):
    """A result's userId is matched to the learner by `sub`, stored by LMS user id."""
    url = service.add_line_item(CONTEXT, "Essay", 20)
    _poll(app, db, course)
    activity_id = db.scalars(select(AgsLineItem)).one().activity_id
    _rule_on(db, course, activity_id)
    service.set_result(url, "sub-learner", 15)

    result = _poll(app, db, course)

    assert result.facts_new == 1
    fact = db.scalars(select(CompletionFactRecord)).one()
    assert fact.lms_user_id == "42"
    assert fact.lms_course_id == "55"
    assert fact.grade_percent == 75.0
    assert fact.raw_payload["ags_result"]["userId"] == "sub-learner"


def test_poll_twice_no_new_fact(app, db, service, course):
    """A second poll that reads the same scores stores nothing new."""
    url = service.add_line_item(CONTEXT, "Essay", 20)
    _poll(app, db, course)
    _rule_on(db, course, db.scalars(select(AgsLineItem)).one().activity_id)
    service.set_result(url, "sub-learner", 15)
    _poll(app, db, course)

    again = _poll(app, db, course)

    assert again.facts_new == 0
    assert len(db.scalars(select(CompletionFactRecord)).all()) == 1
    assert len(db.scalars(select(AgsLineItem)).all()) == 1


def test_grades_join_lms_progress(app, db, service, course):
    """A learner's AGS grades are added beside the grades the LMS API returned."""
    url = service.add_line_item(CONTEXT, "Essay", 20)
    _poll(app, db, course)
    activity_id = db.scalars(select(AgsLineItem)).one().activity_id
    _rule_on(db, course, activity_id)
    service.set_result(url, "sub-learner", 15)
    _poll(app, db, course)
    fact = db.scalars(select(CompletionFactRecord)).one()
    lms_progress = LearnerProgress(
        course_completed=True, grades={"901": GradeProgress(55.0)}
    )

    progress = with_ags_grades(db, fact, lms_progress)

    assert progress.course_completed is True
    assert progress.grades["901"].percent == 55.0
    assert progress.grades[activity_id].percent == 75.0
    assert progress.grades[activity_id].graded_at == fact.occurred_at


def test_newest_grade_wins(app, db, course):
    """With two stored grades for one item, the newest recorded one is current."""
    connection_id = db.scalars(select(Learner)).one().lms_connection_id
    for percent in (90.0, 40.0):
        record_fact(
            db,
            CompletionFact(
                provider_id=course.provider_id,
                lms_connection_id=connection_id,
                lms_course_id="55",
                lms_user_id="42",
                activity_id="ags-9",
                state=CompletionState.COMPLETE,
                occurred_at=datetime.now(timezone.utc),
                source=FactSource.POLL,
                grade_percent=percent,
            ),
        )
    db.commit()
    fact = db.scalars(select(CompletionFactRecord)).first()

    progress = with_ags_grades(db, fact, LearnerProgress(course_completed=False))

    assert progress.grades["ags-9"].percent == 40.0


def test_graded_item_counts_completed(app, db, service, course):
    """A line item with a score counts as a completed activity for completion rules."""
    url = service.add_line_item(CONTEXT, "Essay", 20)
    _poll(app, db, course)
    activity_id = db.scalars(select(AgsLineItem)).one().activity_id
    _rule_on(db, course, activity_id)
    service.set_result(url, "sub-learner", 0)
    _poll(app, db, course)
    fact = db.scalars(select(CompletionFactRecord)).one()

    progress = with_ags_grades(db, fact, LearnerProgress(course_completed=False))

    assert progress.activities[activity_id].state == CompletionState.COMPLETE
    assert progress.grades[activity_id].percent == 0.0
