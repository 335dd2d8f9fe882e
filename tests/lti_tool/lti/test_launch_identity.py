"""A launch cannot act as another learner or in another course through custom parameters.

A teacher can add custom parameters to one activity, and the platform signs them with
the rest of the launch. The LMS ids the tool reads from `lms_user_id` and
`lms_course_id` must therefore agree with what the tool has stored: on Moodle
with `sub` and `context.id`, elsewhere with the learner's first launch and with the
course's own context.
"""

from __future__ import annotations

import html

from sqlalchemy import func, select

from badge_engine.models import Learner
from lti_tool.models import LtiCourse

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
MOODLE = {"product_family_code": "moodle", "guid": "moodle.example.invalid"}


def _launch(tool, platform, **changes):
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, **changes)
    return tool.launch(platform.sign(claims), login.state)


def _learner(db, lms_user_id: str) -> Learner | None:
    db.expire_all()
    return db.scalar(select(Learner).where(Learner.lms_user_id == lms_user_id))


def _count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_moodle_launch_with_another_user_id_refused(tool, platform, db):
    """On Moodle, a custom lms_user_id other than sub is refused and stores nothing."""
    response = _launch(
        tool,
        platform,
        sub="4002",
        lti_tool_platform=MOODLE,
        lti_custom={"lms_user_id": "3001"},
    )

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert "the custom parameter lms_user_id ('3001') differs from the launch's sub" in page
    assert "remove lms_user_id from the activity's custom parameters" in page
    assert _count(db, Learner) == 0
    assert _count(db, LtiCourse) == 0


def test_moodle_launch_with_another_course_id_refused(tool, platform, db):
    """On Moodle, a custom lms_course_id other than context.id is refused."""
    response = _launch(
        tool,
        platform,
        lti_roles=[INSTRUCTOR],
        lti_tool_platform=MOODLE,
        lti_context={"id": "999", "title": "Teacher's own course"},
        lti_custom={"lms_course_id": "101"},
    )

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert "the custom parameter lms_course_id ('101') differs from the launch's " in page
    assert _count(db, LtiCourse) == 0


def test_moodle_launch_with_matching_custom_ids_accepted(tool, platform, db):
    """Custom ids equal to sub and context.id, as the tool-level settings send them,
    are accepted."""
    response = _launch(
        tool,
        platform,
        sub="3001",
        lti_tool_platform=MOODLE,
        lti_context={"id": "101", "title": "Course"},
        lti_custom={"lms_user_id": "3001", "lms_course_id": "101"},
    )

    assert response.status_code == 302, response.text
    assert _learner(db, "3001").lti_sub == "3001"


def test_launch_as_another_learner_refused(tool, platform, db):
    """A second LTI user naming a learner who launched before is refused, and the
    learner's name, email and sub stay as they were."""
    first = _launch(
        tool,
        platform,
        sub="opaque-sub-of-3001",
        name="Learner One",
        email="one@example.invalid",
        lti_custom={"canvas_user_id": "3001"},
    )
    assert first.status_code == 302, first.text

    second = _launch(
        tool,
        platform,
        sub="opaque-sub-of-mallory",
        name="Mallory",
        email="mallory@example.invalid",
        lti_custom={"canvas_user_id": "3001"},
    )

    page = html.unescape(second.text)
    assert second.status_code == 400, second.text
    assert "LMS user '3001' first launched the tool as another LTI user (sub)" in page
    assert "set by the LMS admin at the tool level" in page
    learner = _learner(db, "3001")
    assert (learner.lti_sub, learner.name, learner.email) == (
        "opaque-sub-of-3001",
        "Learner One",
        "one@example.invalid",
    )


def test_same_learner_launches_again(tool, platform, db):
    """The learner's own later launch, with a new name, is accepted."""
    for name in ("Learner One", "Learner Renamed"):
        response = _launch(
            tool,
            platform,
            sub="opaque-sub-of-3001",
            name=name,
            lti_custom={"canvas_user_id": "3001"},
        )
        assert response.status_code == 302, response.text

    assert _learner(db, "3001").name == "Learner Renamed"


def test_learner_known_from_the_lms_binds_first_launch(tool, platform, db, registration):
    """A learner stored from LMS events, with no sub yet, gets the first launch's."""
    db.add(
        Learner(
            provider_id=registration.provider_id,
            lms_connection_id=registration.lms_connection_id,
            lms_user_id="3001",
            name="Learner One",
        )
    )
    db.commit()

    response = _launch(
        tool, platform, sub="opaque-sub-of-3001", lti_custom={"canvas_user_id": "3001"}
    )

    assert response.status_code == 302, response.text
    assert _learner(db, "3001").lti_sub == "opaque-sub-of-3001"


def test_launch_into_another_course_refused(tool, platform, db):
    """A context whose custom lms_course_id names another context's course is
    refused, and that course keeps its row."""
    first = _launch(
        tool,
        platform,
        lti_roles=[INSTRUCTOR],
        lti_context={"id": "opaque-context-101", "title": "Real course"},
        lti_custom={"canvas_course_id": "101"},
    )
    assert first.status_code == 302, first.text

    second = _launch(
        tool,
        platform,
        lti_roles=[INSTRUCTOR],
        lti_context={"id": "opaque-context-999", "title": "Teacher's own course"},
        lti_custom={"canvas_course_id": "101"},
    )

    page = html.unescape(second.text)
    assert second.status_code == 400, second.text
    assert (
        "LMS course '101' belongs to another course of this LMS "
        "(context 'opaque-context-101')" in page
    )
    db.expire_all()
    courses = db.scalars(select(LtiCourse)).all()
    assert [(course.lti_context_id, course.lms_course_id) for course in courses] == [
        ("opaque-context-101", "101")
    ]
