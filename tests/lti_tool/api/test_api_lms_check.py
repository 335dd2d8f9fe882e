"""Adding or editing a badge through the API checks its course and the activity ids
of its award rule in the LMS, against the Moodle and Canvas stand-ins."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement, Provider
from lti_tool.accounts import AuditEvent
from lti_tool.api.tokens import create_api_token
from lti_tool.demo.peers.canvas import FakeCanvas
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration
from lti_tool.models import AgsLineItem, LtiCourse
from connectors.models import LmsConnection
from tests.support.seed import add_moodle_connection, add_provider
from tests.support.silent_server import SilentServer
from tests.support.slow_body_server import SlowBodyServer

MOODLE_TOKEN = "moodle-ws-token"
CANVAS_COURSE_ID = 565
# Course modules of the Moodle stand-in's demo course.
QUIZ, PAGE = "4001", "4002"
# The Canvas stand-in numbers module items course id * 1000 + position.
CANVAS_ITEM = str(CANVAS_COURSE_ID * 1000 + 1)
UNREACHABLE_URL = "http://127.0.0.1:9"


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _activity_rule(*activity_ids: str) -> dict:
    return {
        "version": 1,
        "rule": {
            "kind": "activities_completed",
            "match": "all",
            "activity_ids": list(activity_ids),
        },
    }


def _body(connection: str, course_id: str, rule: dict, **fields) -> dict:
    return {
        "lms_connection": connection,
        "course_id": course_id,
        "name": "n",
        "description": "d",
        "criteria": "c",
        "award_rule": rule,
        **fields,
    }


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def canvas():
    fake = FakeCanvas()
    fake.add_course(CANVAS_COURSE_ID)
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def token(db):
    provider = add_provider(db, slug="alpha", name="Alpha")
    _, secret = create_api_token(db, provider_id=provider.id, name="t", created_by="t")
    db.commit()
    return secret


def _connect(client, token: str, kind: str, body: dict) -> str:
    response = client.post(
        f"/api/v1/lms-connections/{kind}", json=body, headers=_auth(token)
    )
    assert response.status_code == 201, response.json
    return response.json["connection"]["id"]


@pytest.fixture
def moodle_connection(client, token, moodle) -> str:
    return _connect(
        client, token, "moodle", {"url": moodle.site_url, "token": MOODLE_TOKEN}
    )


@pytest.fixture
def canvas_connection(client, token, canvas) -> str:
    return _connect(
        client,
        token,
        "canvas",
        {
            "url": canvas.url,
            "token": canvas.issue_token(),
            "course_id": str(CANVAS_COURSE_ID),
        },
    )


@pytest.fixture
def unreachable_connection(app, db) -> str:
    """A Moodle connection of the token's provider whose site listens nowhere."""
    provider = db.scalar(select(Provider).where(Provider.slug == "alpha"))
    connection = add_moodle_connection(
        db, app.extensions["hpass"].vault, provider, UNREACHABLE_URL, "token"
    )
    db.commit()
    return connection.public_id


@pytest.fixture
def short_timeouts(app):
    """Give the LMS check a time budget of half a second."""
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 0.5


@pytest.fixture
def silent_lms():
    with SilentServer() as server:
        yield server


def _stored(db) -> tuple[int, int]:
    """Return the number of achievements and of achievement.created audit events."""
    db.expire_all()
    achievements = db.scalar(select(func.count()).select_from(Achievement))
    created = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "achievement.created")
    )
    return achievements, created


def test_moodle_known_activities_added(client, db, token, moodle_connection):
    """A rule on the course's real activities is stored with no warnings."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, str(DEMO_COURSE_ID), _activity_rule(QUIZ, PAGE)),
        headers=_auth(token),
    )

    assert response.status_code == 201, response.json
    assert response.json["warnings"] == []
    assert _stored(db) == (1, 1)


def test_moodle_unknown_course_rejected(client, db, token, moodle_connection):
    """A course Moodle does not have gets 400 naming the id, and nothing is stored."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, "999", _activity_rule(QUIZ)),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "course_not_found"
    assert "course '999' was not found" in response.json["message"]
    assert "course/view.php?id=" in response.json["message"]
    assert _stored(db) == (0, 0)


def test_moodle_non_numeric_course_rejected(client, db, token, moodle_connection):
    """A course id that is not a number cannot be a Moodle course."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, "intro-101", _activity_rule(QUIZ)),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "course_not_found"
    assert "whole numbers" in response.json["message"]
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    "rule",
    [
        _activity_rule(QUIZ, "4999"),
        {"version": 1, "rule": {"kind": "activity_completed", "activity_id": "4999"}},
        {
            "version": 1,
            "rule": {
                "kind": "any_of",
                "rules": [
                    {"kind": "course_completed"},
                    {
                        "kind": "grade_at_least",
                        "activity_id": "4999",
                        "min_percent": 50,
                    },
                ],
            },
        },
    ],
    ids=["in-a-set", "single", "nested-grade"],
)
def test_moodle_unknown_activity_rejected(client, db, token, moodle_connection, rule):
    """A rule naming an activity the course lacks gets 400 naming the id and the
    command that lists the course's activities."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, str(DEMO_COURSE_ID), rule),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "activity_not_found"
    message = response.json["message"]
    assert "names activity 4999" in message
    assert f"its activity ids: {QUIZ}, {PAGE}" in message
    assert (
        f"GET /api/v1/lms-connections/{moodle_connection}/courses/{DEMO_COURSE_ID}"
        "/activities" in message
    )
    assert "hpass-bridge" not in message
    assert _stored(db) == (0, 0)


def test_moodle_ags_line_item_accepted(app, client, db, token, moodle_connection):
    """An AGS line item the last poll stored for the course counts as an activity."""
    from connectors.models import LmsConnection

    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.public_id == moodle_connection)
    )
    registration = create_registration(
        db,
        app.extensions["hpass"].vault,
        db.get(Provider, connection.provider_id),
        issuer="https://lms.invalid",
        client_id="c",
        auth_login_url="https://lms.invalid/auth",
        key_set_url="https://lms.invalid/jwks",
    )
    course = LtiCourse(
        provider_id=connection.provider_id,
        registration_id=registration.id,
        lti_context_id="ctx",
        lms_course_id=str(DEMO_COURSE_ID),
    )
    db.add(course)
    db.flush()
    url = "https://lms.invalid/lineitems/1"
    item = AgsLineItem(
        provider_id=connection.provider_id,
        lti_course_id=course.id,
        lms_connection_id=connection.id,
        lms_course_id=str(DEMO_COURSE_ID),
        lineitem_url=url,
        lineitem_url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        label="Essay",
        score_maximum=10,
    )
    db.add(item)
    db.commit()

    response = client.post(
        "/api/v1/achievements",
        json=_body(
            moodle_connection,
            str(DEMO_COURSE_ID),
            _activity_rule(QUIZ, item.activity_id),
        ),
        headers=_auth(token),
    )

    assert response.status_code == 201, response.json


def test_moodle_down_rejected(client, db, token, unreachable_connection):
    """An LMS that cannot be reached gets 502 saying how to skip the check."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(unreachable_connection, str(DEMO_COURSE_ID), _activity_rule(QUIZ)),
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    message = response.json["message"]
    assert "the LMS could not be checked for course '101'" in message
    assert "Nothing was saved" in message
    assert '"skip_lms_check": true' in message
    assert f"POST /api/v1/lms-connections/{unreachable_connection}/test" in message
    assert "hpass-bridge" not in message
    assert _stored(db) == (0, 0)


def test_moodle_timeout_rejected(
    client, db, token, moodle, moodle_connection, short_timeouts
):
    """A Moodle that does not respond within the time budget gets 502 lms_timeout."""
    moodle.slow_next(2, 3.0)
    started = time.monotonic()

    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, str(DEMO_COURSE_ID), _activity_rule(QUIZ)),
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    assert "did not respond within 0.5 s" in response.json["message"]
    assert "skip_lms_check" in response.json["message"]
    # Without the budget the two slow responses would take 6 s. The margin above
    # 0.5 s is for a loaded CI machine.
    assert time.monotonic() - started < 3.5
    assert _stored(db) == (0, 0)


def _point_at(db, public_id: str, url: str) -> None:
    """Move a stored connection to another site URL, keeping its credentials."""
    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.public_id == public_id)
    )
    connection.base_url = url
    db.commit()


@pytest.mark.parametrize("kind", ["moodle", "canvas"])
def test_silent_lms_times_out_in_budget(
    request, app, client, db, token, silent_lms, kind
):
    """An LMS that accepts the connection and never responds gets 502 lms_timeout
    once the configured budget ends, after one request and with nothing stored."""
    public_id = request.getfixturevalue(f"{kind}_connection")
    course = str(DEMO_COURSE_ID if kind == "moodle" else CANVAS_COURSE_ID)
    _point_at(db, public_id, silent_lms.url)
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 1.5
    started = time.monotonic()

    response = client.post(
        "/api/v1/achievements",
        json=_body(
            public_id, course, {"version": 1, "rule": {"kind": "course_completed"}}
        ),
        headers=_auth(token),
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    message = response.json["message"]
    assert "did not respond within 1.5 s" in message
    assert f"course '{course}'" in message
    assert "Nothing was saved" in message
    assert "Retry later" in message
    assert '"skip_lms_check": true' in message
    assert "HPASS_LMS_CHECK_TIMEOUT_SECONDS" in message
    assert "hpass-bridge" not in message
    # Below the default budget of 5 s, with room for a loaded CI machine.
    assert 1.4 <= elapsed < 4.5
    assert silent_lms.accepted == 1
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("kind", "mode"), [("moodle", "stall"), ("canvas", "stall"), ("moodle", "trickle")]
)
def test_slow_body_times_out_in_budget(request, app, client, db, token, kind, mode):
    """An LMS that sends its headers late in the budget and then stalls or trickles
    the body gets 502 lms_timeout once the budget ends, with nothing stored."""
    public_id = request.getfixturevalue(f"{kind}_connection")
    course = str(DEMO_COURSE_ID if kind == "moodle" else CANVAS_COURSE_ID)
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 3.0
    body = b"[" + b" " * 200 + b"]"

    with SlowBodyServer(body, mode=mode, headers_after=2.5) as lms:
        _point_at(db, public_id, lms.url)
        started = time.monotonic()
        response = client.post(
            "/api/v1/achievements",
            json=_body(
                public_id, course, {"version": 1, "rule": {"kind": "course_completed"}}
            ),
            headers=_auth(token),
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    message = response.json["message"]
    assert "did not respond within 3 s" in message
    assert f"course '{course}'" in message
    assert "Nothing was saved" in message
    assert "Retry later" in message
    assert '"skip_lms_check": true' in message
    assert "HPASS_LMS_CHECK_TIMEOUT_SECONDS" in message
    # A body read that kept the read timeout set before the headers would end about
    # 2.5 s after the budget. The 2 s margin is for a loaded machine.
    assert elapsed < 3.0 + 2.0
    assert lms.accepted == 1
    assert lms.bytes_sent < len(body)
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize("kind", ["moodle", "canvas"])
def test_slow_body_within_budget_added(request, app, client, db, token, kind):
    """An LMS whose body trickles in but ends within the budget passes the check."""
    public_id = request.getfixturevalue(f"{kind}_connection")
    course = str(DEMO_COURSE_ID if kind == "moodle" else CANVAS_COURSE_ID)
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 3.0

    with SlowBodyServer(b"[]", mode="trickle", headers_after=0.5) as lms:
        _point_at(db, public_id, lms.url)
        response = client.post(
            "/api/v1/achievements",
            json=_body(
                public_id, course, {"version": 1, "rule": {"kind": "course_completed"}}
            ),
            headers=_auth(token),
        )

    assert response.status_code == 201, response.json
    assert lms.bytes_sent == 2
    assert _stored(db) == (1, 1)


def test_silent_lms_default_budget(
    app, client, db, token, silent_lms, moodle_connection
):
    """Without configuration the budget is 5 s, well under a proxy's usual limits."""
    _point_at(db, moodle_connection, silent_lms.url)
    started = time.monotonic()

    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, str(DEMO_COURSE_ID), _activity_rule(QUIZ)),
        headers=_auth(token),
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    assert "did not respond within 5 s" in response.json["message"]
    assert 4.9 <= elapsed < 8.0
    assert silent_lms.accepted == 1
    assert _stored(db) == (0, 0)


def test_silent_lms_rule_edit_keeps_rule(
    app, client, db, token, silent_lms, moodle_connection
):
    """A rule change against a silent LMS gets 502 lms_timeout and keeps the old rule."""
    badge = _add(client, token, moodle_connection, _activity_rule(QUIZ))
    _point_at(db, moodle_connection, silent_lms.url)
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 1.0

    response = client.patch(
        f"/api/v1/achievements/{badge}",
        json={"award_rule": _activity_rule(PAGE)},
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    assert "did not respond within 1 s" in response.json["message"]
    db.expire_all()
    stored = db.scalar(select(Achievement).where(Achievement.public_id == badge))
    assert stored.award_rule == _activity_rule(QUIZ)


def test_moodle_error_page_rejected(client, db, token, moodle, moodle_connection):
    """A Moodle that returns an HTML page instead of JSON gets 502."""
    moodle.html_next(2)

    response = client.post(
        "/api/v1/achievements",
        json=_body(moodle_connection, str(DEMO_COURSE_ID), _activity_rule(QUIZ)),
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert _stored(db) == (0, 0)


def test_skip_lms_check_stores_with_warning(client, db, token, unreachable_connection):
    """skip_lms_check stores the badge unchecked, with a warning and an audit mark."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(
            unreachable_connection, "101", _activity_rule("4999"), skip_lms_check=True
        ),
        headers=_auth(token),
    )

    assert response.status_code == 201, response.json
    assert len(response.json["warnings"]) == 1
    assert "the LMS was not checked" in response.json["warnings"][0]
    assert (
        f"GET /api/v1/lms-connections/{unreachable_connection}/courses/101/activities"
        in response.json["warnings"][0]
    )
    assert _stored(db) == (1, 1)
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "achievement.created")
    )
    assert event.detail["lms_checked"] is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_skip_lms_check_must_be_boolean(client, db, token, moodle_connection, value):
    response = client.post(
        "/api/v1/achievements",
        json=_body(
            moodle_connection, "101", _activity_rule(QUIZ), skip_lms_check=value
        ),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_field"
    assert "skip_lms_check" in response.json["message"]
    assert _stored(db) == (0, 0)


def test_canvas_known_item_added(client, db, token, canvas_connection):
    """A rule on a Canvas module item of the course is stored."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(
            canvas_connection, str(CANVAS_COURSE_ID), _activity_rule(CANVAS_ITEM)
        ),
        headers=_auth(token),
    )

    assert response.status_code == 201, response.json
    assert response.json["warnings"] == []


def test_canvas_unknown_course_rejected(client, db, token, canvas_connection):
    """A course for which Canvas returns 404 gets 400 naming the id."""
    response = client.post(
        "/api/v1/achievements",
        json=_body(canvas_connection, "777", _activity_rule(CANVAS_ITEM)),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "course_not_found"
    assert "course '777' was not found in the canvas LMS" in response.json["message"]
    assert "/courses/" in response.json["message"]
    assert _stored(db) == (0, 0)


def test_canvas_unknown_item_rejected(client, db, token, canvas_connection):
    response = client.post(
        "/api/v1/achievements",
        json=_body(canvas_connection, str(CANVAS_COURSE_ID), _activity_rule("1")),
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "activity_not_found"
    assert "names activity 1," in response.json["message"]
    assert CANVAS_ITEM in response.json["message"]
    assert _stored(db) == (0, 0)


def test_canvas_expired_token_rejected(client, db, token, canvas, canvas_connection):
    """A Canvas that rejects the token gets 502, not a course-not-found error."""
    canvas.expire_all_tokens()

    response = client.post(
        "/api/v1/achievements",
        json=_body(
            canvas_connection, str(CANVAS_COURSE_ID), _activity_rule(CANVAS_ITEM)
        ),
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert _stored(db) == (0, 0)


def test_canvas_forbidden_course_rejected(client, db, token, canvas, canvas_connection):
    """A course the token may not read gets 502: the bridge cannot tell if it exists."""
    canvas.forbidden_courses.add(CANVAS_COURSE_ID)

    response = client.post(
        "/api/v1/achievements",
        json=_body(
            canvas_connection, str(CANVAS_COURSE_ID), _activity_rule(CANVAS_ITEM)
        ),
        headers=_auth(token),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert _stored(db) == (0, 0)


def _add(client, token: str, connection: str, rule: dict, **fields) -> str:
    response = client.post(
        "/api/v1/achievements",
        json=_body(connection, str(DEMO_COURSE_ID), rule, **fields),
        headers=_auth(token),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_edit_rule_unknown_activity(client, db, token, moodle_connection):
    """A new rule naming a missing activity gets 400 and the old rule stays."""
    badge = _add(client, token, moodle_connection, _activity_rule(QUIZ))

    response = client.patch(
        f"/api/v1/achievements/{badge}",
        json={"award_rule": _activity_rule("4999")},
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json["error"] == "activity_not_found"
    db.expire_all()
    stored = db.scalar(select(Achievement).where(Achievement.public_id == badge))
    assert stored.award_rule == _activity_rule(QUIZ)


def test_edit_with_lms_down(
    client, db, token, moodle, moodle_connection, short_timeouts
):
    """With the LMS down a text edit succeeds, a rule edit gets 502 unless the check
    is skipped, and then the response carries the warning."""
    badge = _add(client, token, moodle_connection, _activity_rule(QUIZ))
    moodle.slow_next(2, 3.0)
    renamed = client.patch(
        f"/api/v1/achievements/{badge}", json={"name": "new"}, headers=_auth(token)
    )
    rule_change = client.patch(
        f"/api/v1/achievements/{badge}",
        json={"award_rule": _activity_rule(PAGE)},
        headers=_auth(token),
    )
    skipped = client.patch(
        f"/api/v1/achievements/{badge}",
        json={"award_rule": _activity_rule(PAGE), "skip_lms_check": True},
        headers=_auth(token),
    )

    assert renamed.status_code == 200, renamed.json
    assert renamed.json["warnings"] == []
    assert rule_change.status_code == 502
    assert rule_change.json["error"] == "lms_timeout"
    assert skipped.status_code == 200, skipped.json
    assert skipped.json["award_rule"] == _activity_rule(PAGE)
    assert "the LMS was not checked" in skipped.json["warnings"][0]
