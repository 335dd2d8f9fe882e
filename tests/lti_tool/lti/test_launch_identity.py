"""A launch cannot act as another learner or in another course through custom parameters.

A teacher can add custom parameters to one activity, and the platform signs them with
the rest of the launch. The LMS ids the tool reads from `lms_user_id` and
`lms_course_id` must therefore agree with the launch: on Moodle with `sub` and
`context.id`, on Canvas with the course and user that Canvas's REST API reports for
them. The Canvas tests run against FakeCanvas, an in-memory Canvas REST API served
on loopback.
"""

from __future__ import annotations

import html
import re

import pytest
import requests
from sqlalchemy import func, select

from badge_engine.models import Achievement, Learner, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.canvas.connection import connect_canvas
from lti_tool.accounts import AuditEvent
from lti_tool.demo.peers.canvas import ALL_SCOPES, FakeCanvas
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.models import LtiCourse, LtiUsedNonce, Registration
from tests.lti_tool.lti.harness import REMOVE, register_token_platform, stop_server
from tests.support.seed import add_moodle_connection, add_provider

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
ADMINISTRATOR = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
MOODLE = {"product_family_code": "moodle", "guid": "moodle.example.invalid"}
CANVAS = {"product_family_code": "canvas", "guid": "canvas.example.invalid"}
COURSE_SCOPE = "url:GET|/api/v1/courses/:id"
# The custom ids with which Canvas user 4002 names user 3001 in course 101.
CUSTOM_IDS_OF_3001 = {"canvas_course_id": "101", "canvas_user_id": "3001"}
# The rejection messages for those ids, and for course 101 named in course 999.
USER_3001_UNCONFIRMED = (
    "The custom parameter canvas_user_id names LMS user 3001, but Canvas "
    "reports that the launch's sub belongs to user 4002."
)
COURSE_101_UNCONFIRMED = (
    "The custom parameter canvas_course_id names LMS course 101, but Canvas "
    "reports that the launch's context.id belongs to course 999."
)


@pytest.fixture
def canvas():
    """A Canvas site with course 101 (learners 3001 and 4002) and course 999."""
    fake = FakeCanvas()
    fake.add_course(101)
    fake.add_course(999)
    fake.add_students(101, [3001, 4002])
    fake.add_students(999, [5003])
    server = serve_in_thread(fake.app)
    fake.url = server.url
    yield fake
    stop_server(server)


@pytest.fixture
def canvas_token(canvas):
    return canvas.issue_token(scopes=ALL_SCOPES)


@pytest.fixture
def registration(app, db, platform, canvas, canvas_token):
    """A Canvas registration whose connection reads from FakeCanvas."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Canvas",
        base_url=canvas.url,
        access_token=canvas_token,
    )
    registration = register_token_platform(db, vault, provider, platform, connection.id)
    registration.platform_family = "canvas"
    db.commit()
    return registration


def _canvas_launch(tool, platform, canvas, course_id, user_id, **changes):
    """Launch as Canvas does: opaque sub and context.id, Canvas ids in custom."""
    course = canvas.courses[course_id]
    claims = {
        "sub": canvas.lti_1_3_id(user_id),
        "lti_tool_platform": CANVAS,
        "lti_context": {"id": course.lti_context_id, "title": f"Course {course_id}"},
        "lti_custom": {
            "canvas_course_id": str(course_id),
            "canvas_user_id": str(user_id),
        },
    }
    claims.update(changes)
    return _launch(tool, platform, **claims)


def _launch_as_4002_naming_3001(tool, platform, canvas, **changes):
    """Launch as Canvas user 4002 of course 101, with custom ids naming user 3001."""
    return _canvas_launch(
        tool, platform, canvas, 101, 4002, lti_custom=CUSTOM_IDS_OF_3001, **changes
    )


def _bind_learner_one(tool, platform, canvas) -> None:
    """Launch as Canvas user 3001 of course 101, so the tool stores learner 3001
    with its sub, the name "Learner One" and the email one@example.invalid."""
    response = _canvas_launch(
        tool,
        platform,
        canvas,
        101,
        3001,
        name="Learner One",
        email="one@example.invalid",
    )
    assert response.status_code == 302, response.text


def _canvas_calls(canvas, kind: str) -> int:
    """Count the requests FakeCanvas received for a course or a course user."""
    user_paths = [path for _, path, _ in canvas.requests if "/users/" in path]
    if kind == "user":
        return len(user_paths)
    return len(canvas.requests) - len(user_paths)


def _launch(tool, platform, **changes):
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, **changes)
    return tool.launch(platform.sign(claims), login.state)


def _launch_with_custom_ids_equal_to_claims(tool, platform, tool_platform: dict):
    """Launch as sub 3001 in context 101 on `tool_platform`, with custom
    lms_user_id and lms_course_id equal to those claims."""
    return _launch(
        tool,
        platform,
        sub="3001",
        lti_tool_platform=tool_platform,
        lti_context={"id": "101", "title": "Course"},
        lti_custom={"lms_user_id": "3001", "lms_course_id": "101"},
    )


def _page_text(response) -> str:
    """Return a page's text with entities unescaped and the <bdi> tags around
    ids removed, so a message with ids reads as one string."""
    return html.unescape(re.sub(r'</?bdi(?: dir="ltr")?>', "", response.text))


def _learner(db, lms_user_id: str) -> Learner | None:
    db.expire_all()
    return db.scalar(select(Learner).where(Learner.lms_user_id == lms_user_id))


def _count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_moodle_launch_with_another_user_id_refused(tool, platform, db):
    """On Moodle, a custom lms_user_id other than sub is rejected and stores nothing."""
    response = _launch(
        tool,
        platform,
        sub="4002",
        lti_tool_platform=MOODLE,
        lti_custom={"lms_user_id": "3001"},
    )

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        "The custom parameter lms_user_id (3001) differs from the launch's sub "
        "(4002), which Moodle fills with its own id." in page
    )
    assert "Remove lms_user_id from the activity's custom parameters" in page
    assert _count(db, Learner) == 0
    assert _count(db, LtiCourse) == 0


def test_moodle_launch_with_another_course_id_refused(tool, platform, db):
    """On Moodle, a custom lms_course_id other than context.id is rejected."""
    response = _launch(
        tool,
        platform,
        lti_roles=[INSTRUCTOR],
        lti_tool_platform=MOODLE,
        lti_context={"id": "999", "title": "Teacher's own course"},
        lti_custom={"lms_course_id": "101"},
    )

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        "The custom parameter lms_course_id (101) differs from the launch's "
        "context.id (999)" in page
    )
    assert _count(db, LtiCourse) == 0


def test_moodle_launch_with_matching_custom_ids_accepted(tool, platform, db):
    """Custom ids equal to sub and context.id, as the tool-level settings send them,
    are accepted."""
    response = _launch_with_custom_ids_equal_to_claims(tool, platform, MOODLE)

    assert response.status_code == 302, response.text
    assert _learner(db, "3001").lti_sub == "3001"


def test_canvas_ids_confirmed_bind_first_launch(tool, platform, db, canvas):
    """Custom ids that Canvas reports for the launch's context.id and sub bind."""
    response = _canvas_launch(tool, platform, canvas, 101, 3001)

    assert response.status_code == 302, response.text
    learner = _learner(db, "3001")
    assert learner.lti_sub == canvas.lti_1_3_id(3001)
    db.expire_all()
    course = db.scalars(select(LtiCourse)).one()
    assert course.lms_course_id == "101"
    assert course.lti_context_id == canvas.courses[101].lti_context_id


def test_same_learner_launches_again(tool, platform, db, canvas):
    """The learner's own later launch, with a new name, is accepted without asking
    Canvas again."""
    for name in ("Learner One", "Learner Renamed"):
        response = _canvas_launch(tool, platform, canvas, 101, 3001, name=name)
        assert response.status_code == 302, response.text

    assert _learner(db, "3001").name == "Learner Renamed"
    assert _canvas_calls(canvas, "user") == 1
    assert _canvas_calls(canvas, "course") == 1


def test_launch_as_another_learner_refused(tool, platform, db, canvas):
    """A second Canvas user naming a learner who launched before is rejected, and
    the learner's name, email and sub stay as they were."""
    _bind_learner_one(tool, platform, canvas)

    second = _launch_as_4002_naming_3001(
        tool, platform, canvas, name="Mallory", email="mallory@example.invalid"
    )

    page = _page_text(second)
    assert second.status_code == 400, second.text
    assert USER_3001_UNCONFIRMED in page
    assert (
        "The Canvas admin must set the custom parameters in the developer key" in page
    )
    learner = _learner(db, "3001")
    assert (learner.lti_sub, learner.name, learner.email) == (
        canvas.lti_1_3_id(3001),
        "Learner One",
        "one@example.invalid",
    )


def test_lms_learner_not_taken_by_another(tool, platform, db, registration, canvas):
    """A learner stored from LMS events, with no sub yet, is not bound by another
    user's launch naming them, and their own launch binds them afterwards."""
    db.add(
        Learner(
            provider_id=registration.provider_id,
            lms_connection_id=registration.lms_connection_id,
            lms_user_id="3001",
            name="Learner One",
        )
    )
    db.commit()

    enrolled = _launch_as_4002_naming_3001(tool, platform, canvas)
    stranger = _canvas_launch(
        tool,
        platform,
        canvas,
        101,
        3001,
        sub="attacker-sub",
        lti_custom=CUSTOM_IDS_OF_3001,
    )

    assert enrolled.status_code == 400, enrolled.text
    assert "belongs to user 4002." in _page_text(enrolled)
    assert stranger.status_code == 400, stranger.text
    assert (
        "Canvas has no user with the launch's sub attacker-sub in the launch's course."
        in _page_text(stranger)
    )
    assert _learner(db, "3001").lti_sub is None
    assert _count(db, Learner) == 1

    own = _canvas_launch(tool, platform, canvas, 101, 3001)

    assert own.status_code == 302, own.text
    assert _learner(db, "3001").lti_sub == canvas.lti_1_3_id(3001)


def test_launch_into_another_course_refused(tool, platform, db, canvas):
    """A teacher's context whose custom course id names another course is rejected
    before that course ever launched, and the real course binds afterwards."""
    teacher = _canvas_launch(
        tool,
        platform,
        canvas,
        999,
        5003,
        lti_roles=[INSTRUCTOR],
        lti_custom={"canvas_course_id": "101"},
    )

    page = _page_text(teacher)
    assert teacher.status_code == 400, teacher.text
    assert COURSE_101_UNCONFIRMED in page
    assert _count(db, LtiCourse) == 0

    real = _canvas_launch(tool, platform, canvas, 101, 3001, lti_roles=[INSTRUCTOR])

    assert real.status_code == 302, real.text
    db.expire_all()
    courses = db.scalars(select(LtiCourse)).all()
    assert [(course.lti_context_id, course.lms_course_id) for course in courses] == [
        (canvas.courses[101].lti_context_id, "101")
    ]


def test_unknown_context_rejected(tool, platform, db, canvas):
    """A context.id with no course in Canvas cannot bind a course."""
    response = _canvas_launch(
        tool, platform, canvas, 101, 3001, lti_context={"id": "opaque-context-7"}
    )

    assert response.status_code == 400, response.text
    assert (
        "Canvas has no course with the launch's context.id opaque-context-7."
        in _page_text(response)
    )
    assert _count(db, LtiCourse) == 0


def test_missing_scope_rejected(tool, platform, db, canvas, canvas_token):
    """Without the scope to read the course, the launch is rejected and names it."""
    canvas.tokens[canvas_token].scopes = ALL_SCOPES - {COURSE_SCOPE}

    response = _canvas_launch(tool, platform, canvas, 101, 3001)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert "could not confirm the launch's course" in page
    assert "Add the scopes url:GET|/api/v1/courses/:id," in page
    assert _count(db, LtiCourse) == 0
    assert _count(db, Learner) == 0


def test_custom_ids_need_canvas_connection(tool, platform, db, app, registration):
    """Off Moodle, custom ids that differ from the claims need a Canvas connection."""
    vault = app.extensions["hpass"].vault
    provider = db.get(Provider, registration.provider_id)
    moodle = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    stored = db.get(Registration, registration.id)
    stored.lms_connection_id = moodle.id
    stored.platform_family = None
    db.commit()

    response = _launch(
        tool, platform, sub="opaque-sub", lti_custom={"canvas_user_id": "3001"}
    )

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        "The launch's custom parameter canvas_user_id differs from its context.id "
        "or sub, and only a Moodle platform or a Canvas connection" in page
    )
    assert _count(db, Learner) == 0


def test_ids_equal_to_claims_skip_canvas(tool, platform, db, canvas):
    """Custom ids equal to context.id and sub bind nothing new, so no request goes
    to Canvas."""
    response = _launch_with_custom_ids_equal_to_claims(tool, platform, CANVAS)

    assert response.status_code == 302, response.text
    assert canvas.requests == []


def _canvas_deep_link(tool, platform, canvas, course_id, user_id, **changes):
    """Start Deep Linking as a Canvas instructor, with Canvas ids in custom."""
    deep_linking = {
        "lti_message_type": "LtiDeepLinkingRequest",
        "lti_resource_link": REMOVE,
        "lti_roles": [INSTRUCTOR],
        DL_CLAIM + "deep_linking_settings": {
            "deep_link_return_url": f"{platform.issuer}/deep-link/return",
            "accept_types": ["ltiResourceLink"],
        },
    }
    deep_linking.update(changes)
    return _canvas_launch(tool, platform, canvas, course_id, user_id, **deep_linking)


def _add_badges(db, registration) -> None:
    """Add one badge to LMS course 101 and one to LMS course 999."""
    for course_id in ("101", "999"):
        db.add(
            Achievement(
                provider_id=registration.provider_id,
                lms_connection_id=registration.lms_connection_id,
                lms_course_id=course_id,
                name=f"Badge of course {course_id}",
                description="Finished the course.",
                criteria_narrative="Complete the course.",
                award_rule=COURSE_COMPLETED_RULE,
            )
        )
    db.commit()


def _picker(tool) -> str:
    """Open the Deep Linking picker in the launching browser; return its text."""
    response = tool.http.get(
        f"{tool.tool_url}/lti/{tool.public_id}/deep-link", timeout=10
    )
    assert response.status_code == 200, response.text
    return _page_text(response)


def test_deep_link_ids_equal_claims(tool, platform, db, canvas, registration):
    """Custom ids equal to context.id list that course's badges without Canvas."""
    _add_badges(db, registration)

    response = _canvas_deep_link(
        tool,
        platform,
        canvas,
        101,
        5003,
        lti_context={"id": "101", "title": "Course"},
        lti_custom={"lms_course_id": "101"},
    )

    assert response.status_code == 302, response.text
    page = _picker(tool)
    assert "Badge of course 101" in page
    assert "Badge of course 999" not in page
    assert canvas.requests == []


def test_deep_link_bound_course(tool, platform, db, canvas, registration):
    """A course bound by an earlier launch lists its badges without asking Canvas."""
    _add_badges(db, registration)
    db.add(
        LtiCourse(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            lti_context_id=canvas.courses[101].lti_context_id,
            title="Course 101",
            lms_course_id="101",
        )
    )
    db.commit()

    response = _canvas_deep_link(tool, platform, canvas, 101, 3001)

    assert response.status_code == 302, response.text
    page = _picker(tool)
    assert "Badge of course 101" in page
    assert "Badge of course 999" not in page
    assert canvas.requests == []


def test_deep_link_confirmed_by_canvas(tool, platform, db, canvas, registration):
    """A custom course id that Canvas confirms lists that course's badges."""
    _add_badges(db, registration)

    response = _canvas_deep_link(tool, platform, canvas, 101, 3001)

    assert response.status_code == 302, response.text
    page = _picker(tool)
    assert "Badge of course 101" in page
    assert "Badge of course 999" not in page
    assert _canvas_calls(canvas, "course") == 1
    # Deep Linking stores no user, so the user id is not looked up.
    assert _canvas_calls(canvas, "user") == 0


def test_deep_link_other_course_rejected(tool, platform, db, canvas, registration):
    """A teacher's context naming another course is rejected with the launch's
    page, and no picker of that course opens."""
    _add_badges(db, registration)

    response = _canvas_deep_link(
        tool, platform, canvas, 999, 5003, lti_custom={"canvas_course_id": "101"}
    )

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert COURSE_101_UNCONFIRMED in page
    assert (
        "The Canvas admin must set the custom parameters in the developer key" in page
    )
    assert "Badge of course 101" not in page
    picker = tool.http.get(
        f"{tool.tool_url}/lti/{tool.public_id}/deep-link", timeout=10
    )
    assert picker.status_code == 403
    assert "Badge of course 101" not in picker.text


def test_deep_link_moodle_mismatch_rejected(tool, platform, db, registration):
    """On Moodle, Deep Linking with a custom course id other than context.id is
    rejected."""
    response = _launch(
        tool,
        platform,
        lti_message_type="LtiDeepLinkingRequest",
        lti_resource_link=REMOVE,
        lti_roles=[INSTRUCTOR],
        lti_tool_platform=MOODLE,
        lti_context={"id": "999", "title": "Teacher's own course"},
        lti_custom={"lms_course_id": "101"},
        **{
            DL_CLAIM + "deep_linking_settings": {
                "deep_link_return_url": f"{platform.issuer}/deep-link/return"
            }
        },
    )

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        "The custom parameter lms_course_id (101) differs from the launch's "
        "context.id (999)" in page
    )


def test_deep_link_course_without_context(tool, platform, db, canvas):
    """A custom course id without a context claim cannot be checked, so it is
    rejected."""
    response = _canvas_deep_link(tool, platform, canvas, 101, 3001, lti_context=REMOVE)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert "names a course in the custom parameter canvas_course_id" in page
    assert "has no course (context claim)" in page
    assert "Add the tool's content from inside a course." in page
    assert canvas.requests == []


def test_replayed_launch_asks_canvas_once(tool, platform, db, canvas):
    """A launch that Canvas rejected, posted again with its cookie, is rejected as
    a replay without a second Canvas request, and stores no course."""
    login = tool.start()
    claims = platform.claims(
        login.nonce,
        tool.target_link_uri,
        sub=canvas.lti_1_3_id(5003),
        lti_roles=[INSTRUCTOR],
        lti_tool_platform=CANVAS,
        lti_context={"id": canvas.courses[999].lti_context_id, "title": "Course 999"},
        lti_custom={"canvas_course_id": "101"},
    )
    id_token = platform.sign(claims)

    first = tool.launch(id_token, login.state)
    assert first.status_code == 400, first.text
    assert "Canvas reports that the launch's context.id belongs to course 999." in (
        _page_text(first)
    )
    requests_after_first = len(canvas.requests)
    assert requests_after_first == 1

    replay = tool.launch(id_token, login.state)

    assert replay.status_code == 400, replay.text
    assert "was already used (a replayed or stale launch)" in _page_text(replay)
    assert len(canvas.requests) == requests_after_first
    assert _count(db, LtiCourse) == 0
    assert _count(db, LtiUsedNonce) == 1


def test_rejected_launch_keeps_only_nonce(tool, platform, db, canvas):
    """A learner launch rejected by Canvas leaves its used nonce and no other row."""
    response = _launch_as_4002_naming_3001(tool, platform, canvas)

    assert response.status_code == 400, response.text
    assert _count(db, LtiUsedNonce) == 1
    assert _count(db, LtiCourse) == 0
    assert _count(db, Learner) == 0


def test_instructor_as_another_user_rejected(tool, platform, db, canvas):
    """An instructor's custom user id names the audit log's actor, so one that
    Canvas does not confirm is rejected and no learner row changes."""
    _bind_learner_one(tool, platform, canvas)

    teacher = _launch_as_4002_naming_3001(
        tool,
        platform,
        canvas,
        name="Mallory",
        email="mallory@example.invalid",
        lti_roles=[INSTRUCTOR],
    )

    page = _page_text(teacher)
    assert teacher.status_code == 400, teacher.text
    assert USER_3001_UNCONFIRMED in page
    learner = _learner(db, "3001")
    assert learner.lti_sub == canvas.lti_1_3_id(3001)
    assert learner.name == "Learner One"
    assert learner.email == "one@example.invalid"
    assert _count(db, Learner) == 1


def test_instructor_user_id_confirmed(tool, platform, db, canvas):
    """An instructor's own custom user id is confirmed once and stores no learner."""
    for _ in range(2):
        response = _canvas_launch(
            tool, platform, canvas, 101, 4002, lti_roles=[INSTRUCTOR]
        )
        assert response.status_code == 302, response.text

    assert _canvas_calls(canvas, "user") == 1
    assert _count(db, Learner) == 0


def test_observer_as_another_user_rejected(tool, platform, db, canvas):
    """An observer's custom user id is checked as a learner's is."""
    response = _launch_as_4002_naming_3001(tool, platform, canvas, lti_roles=[MENTOR])

    assert response.status_code == 400, response.text
    assert "Canvas reports that the launch's sub belongs to user 4002." in (
        _page_text(response)
    )
    assert _count(db, Learner) == 0


# An account admin of the Canvas site who is in no course.
ACCOUNT_ADMIN = 7001
USERS_SCOPE = "url:GET|/api/v1/users/:id"


def _admin_launch(tool, platform, canvas, user_id, custom_user_id):
    """Launch as admin `user_id` into course 101, with custom user id
    `custom_user_id`."""
    return _canvas_launch(
        tool,
        platform,
        canvas,
        101,
        user_id,
        lti_custom={"canvas_course_id": "101", "canvas_user_id": str(custom_user_id)},
        lti_roles=[ADMINISTRATOR],
    )


def _account_user_calls(canvas) -> int:
    """Count the requests FakeCanvas received on the Users API (not a course's)."""
    return len(
        [path for _, path, _ in canvas.requests if path.startswith("/api/v1/users/")]
    )


def _session_lms_user_id(app, tool) -> str | None:
    """Return the LMS user id in the course session the launch set, or None."""
    value = tool.http.cookies.get(app.config.get("SESSION_COOKIE_NAME", "session"))
    if value is None:
        return None
    return (
        app.session_interface.get_signing_serializer(app)
        .loads(value)
        .get("lms_user_id")
    )


def _audit_actors(db) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(AuditEvent.actor)))


def _audit_actor_of(db, action: str) -> str | None:
    db.expire_all()
    return db.scalar(select(AuditEvent.actor).where(AuditEvent.action == action))


def _create_badge(tool, location: str) -> requests.Response:
    """Open the course page the launch redirected to and save a badge there."""
    page = tool.http.get(tool.tool_url + location, timeout=10)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    return tool.http.post(
        f"{tool.tool_url}{location}/achievements",
        data={
            "csrf": csrf.group(1),
            "name": "First aid basics",
            "description": "Knows first aid.",
            "criteria": "Completed the first aid course.",
            "rule_kind": "course_completed",
        },
        allow_redirects=False,
        timeout=10,
    )


def test_admin_confirmed_account_wide(tool, platform, db, canvas, app):
    """An account admin who is no user of the course is confirmed through the
    Users API once, and the audit log names the admin by the confirmed id."""
    canvas.add_account_user(ACCOUNT_ADMIN)

    for _ in range(2):
        response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, ACCOUNT_ADMIN)
        assert response.status_code == 302, response.text

    assert _account_user_calls(canvas) == 1
    assert _session_lms_user_id(app, tool) == str(ACCOUNT_ADMIN)
    created = _create_badge(tool, response.headers["Location"])
    assert created.status_code == 303, created.text
    assert _audit_actor_of(db, "achievement.created") == f"lti:{ACCOUNT_ADMIN}"
    assert _audit_actors(db) == {f"lti:{ACCOUNT_ADMIN}"}
    assert _count(db, Learner) == 0


def test_admin_as_learner_rejected(tool, platform, db, canvas, app):
    """A course-level placement that names learner 3001 in an admin's launch is
    rejected, so no session or audit entry names 3001 for the admin."""
    _bind_learner_one(tool, platform, canvas)
    canvas.add_account_user(ACCOUNT_ADMIN)
    tool.http.cookies.clear()

    response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, 3001)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        "The custom parameter canvas_user_id names LMS user 3001, but Canvas "
        "reports that the launch's sub belongs to user 7001." in page
    )
    assert (
        "The Canvas admin must set the custom parameters in the developer key" in page
    )
    assert _session_lms_user_id(app, tool) is None
    assert _audit_actors(db) == set()
    assert _learner(db, "3001").name == "Learner One"


def test_admin_in_course_forged_rejected(tool, platform, db, canvas):
    """An admin who is also a user of the course is checked account-wide too."""
    response = _admin_launch(tool, platform, canvas, 4002, 3001)

    assert response.status_code == 400, response.text
    assert USER_3001_UNCONFIRMED in _page_text(response)
    assert _account_user_calls(canvas) == 1
    assert _count(db, Learner) == 0


def test_admin_unreadable_rejected(tool, platform, db, canvas):
    """An admin whom the connection's token cannot read is rejected, and the page
    names the account that the connection's token must administer."""
    response = _admin_launch(tool, platform, canvas, 8001, 8001)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        f"Canvas has no user with the launch's sub {canvas.lti_1_3_id(8001)} "
        "that the Canvas connection's token can read." in page
    )
    assert "an admin of an account that contains the launching admin" in page
    assert _audit_actors(db) == set()


@pytest.mark.parametrize("status", [401, 403])
def test_admin_permission_denied_names_role(tool, platform, db, canvas, status):
    """A Users API permission denial (401, or 403 with api_auth_error_updates)
    names the admin role that the user of the connection's token needs, and is not
    reported as an invalid token."""
    canvas.add_account_user(ACCOUNT_ADMIN)
    canvas.unreadable_users.add(ACCOUNT_ADMIN)
    canvas.show_user_denial = "unauthorized"
    canvas.permission_denied_status = status

    response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, ACCOUNT_ADMIN)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert "could not confirm the launch's user" in page
    assert f"HTTP {status}" in page
    assert "account admin whose role has the permission Users - view list" in page
    assert "Give that user such a role in Canvas" in page
    assert "rejected the token" not in page
    assert _account_user_calls(canvas) == 1
    assert _audit_actors(db) == set()


def test_admin_not_readable_names_role(tool, platform, db, canvas):
    """Current Canvas returns 404 for an admin the token's user may not read, so
    the page names both the unknown user and the missing admin permission."""
    canvas.add_account_user(ACCOUNT_ADMIN)
    canvas.unreadable_users.add(ACCOUNT_ADMIN)

    response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, ACCOUNT_ADMIN)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert (
        f"Canvas has no user with the launch's sub "
        f"{canvas.lti_1_3_id(ACCOUNT_ADMIN)} that the Canvas connection's token "
        "can read." in page
    )
    assert "that admin's role must have the permission Users - view list" in page
    assert _audit_actors(db) == set()


def test_admin_users_scope_missing(tool, platform, db, canvas, canvas_token):
    """Without the Users API scope an admin's custom user id cannot be checked, so
    the launch is rejected and the page names the scope."""
    canvas.tokens[canvas_token].scopes = ALL_SCOPES - {USERS_SCOPE}
    canvas.add_account_user(ACCOUNT_ADMIN)

    response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, ACCOUNT_ADMIN)

    page = _page_text(response)
    assert response.status_code == 400, response.text
    assert "could not confirm the launch's user" in page
    assert USERS_SCOPE in page
    assert _audit_actors(db) == set()


def test_admin_own_sub_skips_canvas(tool, platform, db, canvas):
    """An admin launch whose user id is its own sub sends no request to Canvas."""
    response = _launch(
        tool,
        platform,
        sub="admin-sub",
        lti_tool_platform=CANVAS,
        lti_context={"id": "101", "title": "Course"},
        lti_roles=[ADMINISTRATOR],
        lti_custom={"lms_course_id": "101"},
    )

    assert response.status_code == 302, response.text
    assert canvas.requests == []


# The page text of USER_3001_UNCONFIRMED in each page language, with its ids still
# in their <bdi dir="ltr"> tags.
USER_3001_UNCONFIRMED_TRANSLATED = {
    "fr": (
        'Le paramètre personnalisé <bdi dir="ltr">canvas_user_id</bdi> nomme '
        'l\'utilisateur LMS <bdi dir="ltr">3001</bdi>, mais Canvas indique que le '
        'sub du lancement appartient à l\'utilisateur <bdi dir="ltr">4002</bdi>.'
    ),
    "es": (
        'El parámetro personalizado <bdi dir="ltr">canvas_user_id</bdi> nombra el '
        'usuario del LMS <bdi dir="ltr">3001</bdi>, pero Canvas indica que el sub '
        'del lanzamiento pertenece al usuario <bdi dir="ltr">4002</bdi>.'
    ),
    "ar": (
        'يذكر المعامل المخصص <bdi dir="ltr">canvas_user_id</bdi> المستخدم '
        '<bdi dir="ltr">3001</bdi> في نظام إدارة التعلّم، لكن Canvas يفيد بأن '
        'قيمة sub الخاصة بالتشغيل تنتمي إلى المستخدم <bdi dir="ltr">4002</bdi>.'
    ),
}
# The start of the sentence that names who must set the custom parameters.
CANVAS_ADMIN_MUST_SET = {
    "fr": "L'administrateur Canvas doit définir les paramètres personnalisés",
    "es": "El administrador de Canvas debe definir los parámetros personalizados",
    "ar": "على مسؤول Canvas ضبط المعاملات المخصصة",
}


@pytest.mark.parametrize("language", sorted(USER_3001_UNCONFIRMED_TRANSLATED))
def test_rejected_launch_translated(tool, platform, db, canvas, language, caplog):
    """A launch naming another learner gets its details in the page language, with
    the ids isolated, and the log keeps the English message."""
    _bind_learner_one(tool, platform, canvas)
    tool.http.headers["Accept-Language"] = language

    response = _launch_as_4002_naming_3001(tool, platform, canvas)

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert f'<html lang="{language}"' in page
    assert USER_3001_UNCONFIRMED_TRANSLATED[language] in page
    assert CANVAS_ADMIN_MUST_SET[language] in page
    assert '<bdi dir="ltr">lms_course_id=$Canvas.course.id</bdi>' in page
    assert USER_3001_UNCONFIRMED not in _page_text(response)
    assert "What to check:" not in page
    assert '<span lang="en" dir="ltr">' not in page
    assert "belongs to user '4002'" in caplog.text
    assert "What to check: the custom parameters must be set" in caplog.text


def test_rejected_launch_arabic_right_to_left(tool, platform, db, canvas):
    """An Arabic page of a rejected launch is laid out right to left."""
    tool.http.headers["Accept-Language"] = "ar"

    response = _launch_as_4002_naming_3001(tool, platform, canvas)

    assert response.status_code == 400, response.text
    assert '<html lang="ar" dir="rtl">' in response.text


def test_moodle_mismatch_translated_french(tool, platform, db):
    """A Moodle launch whose custom user id differs from sub is explained in
    French."""
    tool.http.headers["Accept-Language"] = "fr"

    response = _launch(
        tool,
        platform,
        sub="4002",
        lti_tool_platform=MOODLE,
        lti_custom={"lms_user_id": "3001"},
    )

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert (
        'Le paramètre personnalisé <bdi dir="ltr">lms_user_id</bdi> '
        '(<bdi dir="ltr">3001</bdi>) diffère du <bdi dir="ltr">sub</bdi> du '
        'lancement (<bdi dir="ltr">4002</bdi>)'
    ) in page
    assert (
        'Retirez <bdi dir="ltr">lms_user_id</bdi> des paramètres personnalisés' in page
    )


def test_canvas_error_marked_english(tool, platform, db, canvas, canvas_token):
    """A Spanish page names Canvas's own error text, marked as English."""
    canvas.tokens[canvas_token].scopes = ALL_SCOPES - {COURSE_SCOPE}
    tool.http.headers["Accept-Language"] = "es"

    response = _canvas_launch(tool, platform, canvas, 101, 3001)

    page = html.unescape(response.text)
    assert response.status_code == 400, response.text
    assert "El puente no pudo confirmar el curso del lanzamiento" in page
    assert 'Error de Canvas: <span lang="en" dir="ltr">' in page
    assert f'Agregue los ámbitos <bdi dir="ltr">{COURSE_SCOPE}</bdi>' in page


def test_rejected_launch_json_detail(tool, platform, db, canvas):
    """A JSON client gets the detail as plain text, without <bdi> tags."""
    login = tool.start()
    claims = platform.claims(
        login.nonce,
        tool.target_link_uri,
        sub=canvas.lti_1_3_id(4002),
        lti_tool_platform=CANVAS,
        lti_context={"id": canvas.courses[101].lti_context_id, "title": "Course"},
        lti_custom=CUSTOM_IDS_OF_3001,
    )

    response = tool.http.post(
        f"{tool.tool_url}/lti/{tool.public_id}/launch",
        data={"id_token": platform.sign(claims), "state": login.state},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "launch_identity_unverified"
    assert USER_3001_UNCONFIRMED in body["detail"]
    assert "<bdi" not in body["detail"]


def _audit_actor_roles(db) -> dict[str, set]:
    """Map each audited action to the actor roles its events record."""
    db.expire_all()
    found: dict[str, set] = {}
    for event in db.scalars(select(AuditEvent)):
        found.setdefault(event.action, set()).add(
            (event.detail or {}).get("actor_role")
        )
    return found


def test_admin_actions_record_admin_role(tool, platform, db, canvas):
    """The audit events of an admin's course page actions record the admin role."""
    canvas.add_account_user(ACCOUNT_ADMIN)
    response = _admin_launch(tool, platform, canvas, ACCOUNT_ADMIN, ACCOUNT_ADMIN)
    assert response.status_code == 302, response.text

    created = _create_badge(tool, response.headers["Location"])

    assert created.status_code == 303, created.text
    roles_by_action = _audit_actor_roles(db)
    assert roles_by_action["achievement.created"] == {"admin"}
    assert roles_by_action["backfill.started"] == {"admin"}
    assert set().union(*roles_by_action.values()) == {"admin"}


def test_instructor_actions_record_role(tool, platform, db, canvas):
    """The audit events of an instructor's course page actions record the
    instructor role."""
    response = _canvas_launch(tool, platform, canvas, 101, 3001, lti_roles=[INSTRUCTOR])
    assert response.status_code == 302, response.text

    created = _create_badge(tool, response.headers["Location"])

    assert created.status_code == 303, created.text
    roles_by_action = _audit_actor_roles(db)
    assert roles_by_action["achievement.created"] == {"instructor"}
    assert set().union(*roles_by_action.values()) == {"instructor"}
