"""Launches as an observer (LIS Mentor), alone and beside other roles, over real HTTP.

An observer gets a read-only page without learner data, and neither instructor nor
learner actions. An instructor who is also a mentor keeps the instructor page.
"""

from __future__ import annotations

from sqlalchemy import func, select

from badge_engine.models import Learner
from tests.lti_tool.lti.harness import CLAIM

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
MENTOR = LIS + "membership#Mentor"
LEARNER = LIS + "membership#Learner"
NON_CREDIT_LEARNER = LIS + "membership/Learner#NonCreditLearner"
INSTRUCTOR = LIS + "membership#Instructor"
STUDENT = LIS + "institution/person#Student"


def _launch(tool, platform, roles: list[str]) -> str:
    """Launch with `roles` and return the course page's path."""
    login = tool.start()
    claims = platform.claims(
        login.nonce, tool.target_link_uri, **{CLAIM + "roles": roles}
    )
    response = tool.launch(platform.sign(claims), login.state)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def _get(tool, path: str, **headers):
    return tool.http.get(
        tool.tool_url + path, headers=headers, allow_redirects=False, timeout=10
    )


def _learner_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Learner))


def _assert_observer_page(tool, db, course_path: str) -> None:
    page = _get(tool, course_path)

    assert page.status_code == 200
    assert "as an observer of the course" in page.text
    assert "Each learner sees their own badges" in page.text
    assert "Badges of <bdi>Course one</bdi>" not in page.text
    assert "Your badges" not in page.text
    assert "Export awards" not in page.text
    assert 'action="/portfolio/link"' not in page.text
    assert _learner_count(db) == 0


def _assert_no_instructor_or_learner_actions(tool, course_path: str) -> None:
    csv = _get(tool, course_path + "/awards.csv")
    backfills = _get(tool, course_path + "/backfills.json")
    deliveries = _get(tool, "/portfolio/deliveries", Accept="application/json")

    assert csv.status_code == 403
    assert "Learner One" not in csv.text
    assert backfills.status_code == 403
    assert deliveries.status_code == 403


def test_mentor_gets_observer_page(tool, platform, db):
    """A Mentor gets the observer page, no learner row and no instructor actions."""
    course_path = _launch(tool, platform, [MENTOR])

    _assert_observer_page(tool, db, course_path)
    _assert_no_instructor_or_learner_actions(tool, course_path)


def test_learner_and_mentor_get_observer_page(tool, platform, db):
    """Learner with Mentor, as Canvas sends for an observer, is an observer."""
    course_path = _launch(tool, platform, [NON_CREDIT_LEARNER, MENTOR, STUDENT])

    _assert_observer_page(tool, db, course_path)
    _assert_no_instructor_or_learner_actions(tool, course_path)


def test_plain_learner_and_mentor_observer(tool, platform, db):
    """A principal Learner role beside Mentor also gives the observer page."""
    course_path = _launch(tool, platform, [LEARNER, MENTOR])

    _assert_observer_page(tool, db, course_path)


def test_instructor_and_mentor_instructor(tool, platform, db):
    """An instructor who is also a mentor keeps the instructor page."""
    course_path = _launch(tool, platform, [INSTRUCTOR, MENTOR])

    page = _get(tool, course_path)
    csv = _get(tool, course_path + "/awards.csv")

    assert page.status_code == 200
    assert "Badges of <bdi>Course one</bdi>" in page.text
    assert 'id="awards-heading"' in page.text
    assert "as an observer" not in page.text
    assert csv.status_code == 200
    assert _learner_count(db) == 0


def test_observer_page_translated(tool, platform):
    """The observer page follows the launch locale."""
    login = tool.start()
    claims = platform.claims(
        login.nonce,
        tool.target_link_uri,
        **{
            CLAIM + "roles": [MENTOR],
            CLAIM + "launch_presentation": {"locale": "fr"},
        },
    )
    response = tool.launch(platform.sign(claims), login.state)
    assert response.status_code == 302, response.text

    page = _get(tool, response.headers["Location"])

    assert page.status_code == 200
    assert '<html lang="fr"' in page.text
    assert "en tant qu’observateur" in page.text
    assert "as an observer" not in page.text


def test_mentor_deep_linking_forbidden(tool, platform):
    """A Mentor cannot add badges to a course through deep linking."""
    login = tool.start()
    claims = platform.claims(
        login.nonce,
        tool.target_link_uri,
        **{
            CLAIM + "roles": [MENTOR],
            CLAIM + "message_type": "LtiDeepLinkingRequest",
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
                "deep_link_return_url": platform.issuer + "/return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe"],
            },
        },
    )

    response = tool.launch(platform.sign(claims), login.state)

    assert response.status_code == 403, response.text
    assert "only instructors and admins" in response.text
