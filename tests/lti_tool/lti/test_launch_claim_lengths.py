"""Launch claims longer than the columns that store them get a launch error.

Without the check, PostgreSQL rejects the write and the launch ends in a 500;
SQLite stores any length, so both must give the same 400 page.
"""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from badge_engine.models import Learner
from lti_tool.lti.launch import CLAIM
from lti_tool.models import Deployment, LtiCourse

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"

# (case id, claim changes, phrase on the page)
CASES = [
    (
        "deployment_id",
        {"lti_deployment_id": "d" * 256},
        "the deployment_id claim is 256 characters long, more than the 255",
    ),
    (
        "context_id",
        {"lti_context": {"id": "c" * 256, "title": "Course"}},
        "the context.id claim is 256 characters long, more than the 255",
    ),
    (
        "context_title",
        {"lti_context": {"id": "course-1", "title": "t" * 501}},
        "the context.title claim is 501 characters long, more than the 500",
    ),
    (
        "context_id_as_course_id",
        {"lti_context": {"id": "c" * 65}},
        "the context.id claim is 65 characters long, more than the 64",
    ),
    (
        "custom_course_id",
        {"lti_custom": {"lms_course_id": "9" * 65}},
        "the custom lms_course_id claim is 65 characters long, more than the 64",
    ),
    (
        "learner_sub",
        {"sub": "s" * 65},
        "the sub claim is 65 characters long, more than the 64",
    ),
    (
        "custom_user_id",
        {"lti_custom": {"canvas_user_id": "7" * 65}},
        "the custom canvas_user_id claim is 65 characters long, more than the 64",
    ),
    (
        "learner_name",
        {"name": "n" * 201},
        "the name claim is 201 characters long, more than the 200",
    ),
]


def _launch(tool, platform, **changes):
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, **changes)
    return tool.launch(platform.sign(claims), login.state)


def _count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("changes", "phrase"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_overlong_claim_rejected(tool, platform, db, changes, phrase):
    """An overlong claim gets 400 naming it and its limit, and stores nothing."""
    deployments = _count(db, Deployment)

    response = _launch(tool, platform, **changes)

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert phrase in page
    assert "What to check:" in page
    assert _count(db, LtiCourse) == 0
    assert _count(db, Learner) == 0
    assert _count(db, Deployment) == deployments


def test_claims_at_limit_accepted(tool, platform, db):
    """Claims exactly as long as their columns are stored in full."""
    response = _launch(
        tool,
        platform,
        lti_context={"id": "c" * 64, "title": "t" * 500},
        sub="s" * 64,
        name="n" * 200,
    )

    assert response.status_code == 302, response.text
    db.expire_all()
    course = db.scalars(select(LtiCourse)).one()
    assert course.lti_context_id == "c" * 64
    assert course.title == "t" * 500
    assert db.scalars(select(Learner)).one().lms_user_id == "s" * 64


def test_instructor_long_sub_accepted(tool, platform, db):
    """An instructor's long sub is not stored as a learner id, so it is accepted."""
    response = _launch(tool, platform, sub="s" * 100, **{"lti_roles": [INSTRUCTOR]})

    assert response.status_code == 302, response.text
    assert _count(db, Learner) == 0


def test_overlong_claim_error_translated(tool, platform):
    """The page summarises an overlong claim in the page language."""
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri)
    claims[CLAIM + "context"] = {"id": "c" * 256}
    response = tool.http.post(
        f"{tool.tool_url}/lti/{tool.public_id}/launch",
        data={"id_token": platform.sign(claims), "state": login.state},
        headers={"Accept": "text/html", "Accept-Language": "fr"},
        allow_redirects=False,
        timeout=10,
    )

    page = html.unescape(response.text)
    assert response.status_code == 400
    assert "Le LMS a omis ou envoyé de mauvaises informations de lancement." in page
    assert "the context.id claim is 256 characters long" in page
