"""GET /api/v1/lms-connections/{id}/courses/{course_id}/activities reads a course's
activities from the LMS for the token's provider, against the Moodle and Canvas
stand-ins."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from connectors.models import LmsConnection
from lti_tool.accounts import AuditEvent
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from tests.lti_tool.api import test_api_lms_check as lms_check
from tests.lti_tool.api.test_api_lms_check import (
    CANVAS_COURSE_ID,
    CANVAS_ITEM,
    PAGE,
    QUIZ,
    _auth,
)
from tests.support.seed import add_moodle_connection, add_provider

COURSE = str(DEMO_COURSE_ID)

# The LMS stand-ins, the token and the connections of the LMS check's tests.
moodle = lms_check.moodle
canvas = lms_check.canvas
token = lms_check.token
moodle_connection = lms_check.moodle_connection
canvas_connection = lms_check.canvas_connection
unreachable_connection = lms_check.unreachable_connection
silent_lms = lms_check.silent_lms


def _activities_url(connection: str, course: str) -> str:
    return f"/api/v1/lms-connections/{connection}/courses/{course}/activities"


def _get(client, token: str, connection: str, course: str, query: str = ""):
    url = _activities_url(connection, course) + query
    return client.get(url, headers=_auth(token))


def _listed_events(db) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "lms_connection.activities_listed"
            )
        )
    )


@pytest.fixture
def other_provider_connection(app, db) -> str:
    """A Moodle connection of another provider, on the same stand-in site."""
    provider = add_provider(db, slug="beta", name="Beta")
    connection = add_moodle_connection(
        db, app.extensions["hpass"].vault, provider, "http://127.0.0.1:9", "token"
    )
    db.commit()
    return connection.public_id


def test_moodle_course_listed(client, db, token, moodle_connection):
    """The course modules come back with ids, names, kinds and tracking, audited."""
    response = _get(client, token, moodle_connection, COURSE)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["connection"] == moodle_connection
    assert body["course_id"] == COURSE
    assert body["complete"] is True
    assert [row["id"] for row in body["activities"]] == [QUIZ, PAGE]
    assert [row["kind"] for row in body["activities"]] == ["quiz", "page"]
    assert body["activities"][0]["name"] == "Final quiz"
    assert all(row["tracked"] is True for row in body["activities"])
    assert set(body["activities"][0]) == {"id", "name", "kind", "section", "tracked"}
    events = _listed_events(db)
    assert len(events) == 1
    assert events[0].actor.startswith("api-token:")
    assert events[0].detail == {"course_id": COURSE}


def test_canvas_course_listed(client, token, canvas_connection):
    """The Canvas module items come back with their item types."""
    response = _get(client, token, canvas_connection, str(CANVAS_COURSE_ID))

    assert response.status_code == 200, response.json
    rows = {row["id"]: row for row in response.json["activities"]}
    assert CANVAS_ITEM in rows
    assert rows[CANVAS_ITEM]["kind"] == "Page"
    assert rows[CANVAS_ITEM]["tracked"] is True
    assert rows[str(CANVAS_COURSE_ID * 1000 + 2)]["kind"] == "Assignment"
    assert response.json["complete"] is True


def test_limit_cuts_list(client, token, moodle_connection):
    response = _get(client, token, moodle_connection, COURSE, "?limit=1")

    assert response.status_code == 200, response.json
    assert [row["id"] for row in response.json["activities"]] == [QUIZ]
    assert response.json["complete"] is False


@pytest.mark.parametrize("value", ["0", "1001", "abc", "-1", "٣", "9" * 5000])
def test_bad_limit_rejected(client, db, token, moodle_connection, value):
    response = _get(client, token, moodle_connection, COURSE, f"?limit={value}")

    assert response.status_code == 400
    assert response.json["error"] == "invalid_limit"
    assert _listed_events(db) == []


def test_unknown_connection_not_found(client, token):
    """An unknown id gets 404 pointing to the API's connection list."""
    response = _get(client, token, "no-such-connection", COURSE)

    assert response.status_code == 404
    assert response.json["error"] == "connection_not_found"
    assert "GET /api/v1/lms-connections" in response.json["message"]
    assert "hpass-bridge" not in response.json["message"]


def test_other_provider_connection_looks_unknown(
    client, db, token, other_provider_connection
):
    """Another provider's connection gets the same 404 as an unknown id."""
    theirs = _get(client, token, other_provider_connection, COURSE)
    unknown = _get(client, token, "no-such-connection", COURSE)

    assert theirs.status_code == 404
    assert theirs.json["error"] == unknown.json["error"]
    assert theirs.json["message"] == unknown.json["message"].replace(
        "no-such-connection", other_provider_connection
    )
    assert _listed_events(db) == []


def test_disconnected_connection_rejected(client, db, token, moodle_connection):
    disconnected = client.post(
        f"/api/v1/lms-connections/{moodle_connection}/disconnect",
        headers=_auth(token),
    )
    assert disconnected.status_code == 200, disconnected.json

    response = _get(client, token, moodle_connection, COURSE)

    assert response.status_code == 409
    assert response.json["error"] == "connection_disconnected"
    assert "was disconnected" in response.json["message"]
    assert _listed_events(db) == []


@pytest.mark.parametrize(
    ("course", "reason"),
    [
        ("999", "Moodle has no course with this id"),
        ("intro-101", "Moodle course ids are whole numbers"),
    ],
    ids=["unknown", "not-a-number"],
)
def test_moodle_bad_course_rejected(
    client, db, token, moodle_connection, course, reason
):
    response = _get(client, token, moodle_connection, course)

    assert response.status_code == 400
    assert response.json["error"] == "course_not_found"
    assert f"course {course!r} was not found" in response.json["message"]
    assert reason in response.json["message"]
    assert "Nothing was saved" not in response.json["message"]
    assert _listed_events(db) == []


def test_canvas_unknown_course_rejected(client, token, canvas_connection):
    response = _get(client, token, canvas_connection, "777")

    assert response.status_code == 400
    assert response.json["error"] == "course_not_found"
    assert "Canvas returned 404" in response.json["message"]


def test_overlong_course_id_rejected(client, db, token, moodle, moodle_connection):
    """A course id longer than a badge can store is rejected before any LMS call."""
    response = _get(client, token, moodle_connection, "1" * 65)

    assert response.status_code == 400
    assert response.json["error"] == "invalid_course_id"
    assert "1 to 64 characters" in response.json["message"]


def test_lms_down_rejected(client, db, token, unreachable_connection):
    """An LMS that refuses connections gets 502 naming the API's test route."""
    response = _get(client, token, unreachable_connection, COURSE)

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    message = response.json["message"]
    assert f"POST /api/v1/lms-connections/{unreachable_connection}/test" in message
    assert "skip_lms_check" not in message
    assert "Nothing was saved" not in message
    assert "hpass-bridge" not in message
    assert _listed_events(db) == []


def test_moodle_error_page_rejected(client, token, moodle, moodle_connection):
    """A Moodle that returns an HTML page instead of JSON gets 502."""
    moodle.html_next(1)

    response = _get(client, token, moodle_connection, COURSE)

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert "not JSON" in response.json["message"]


def test_canvas_forbidden_course_rejected(client, token, canvas, canvas_connection):
    canvas.forbidden_courses.add(CANVAS_COURSE_ID)

    response = _get(client, token, canvas_connection, str(CANVAS_COURSE_ID))

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert "HTTP 401" in response.json["message"]
    assert "lacks a permission" in response.json["message"]


def test_silent_lms_times_out(app, client, db, token, silent_lms, moodle_connection):
    """An LMS that never responds gets 502 lms_timeout once the budget ends."""
    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.public_id == moodle_connection)
    )
    connection.base_url = silent_lms.url
    db.commit()
    app.extensions["hpass"].settings.lms_check_timeout_seconds = 1.0
    started = time.monotonic()

    response = _get(client, token, moodle_connection, COURSE)
    elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json["error"] == "lms_timeout"
    message = response.json["message"]
    assert "did not respond within 1 s" in message
    assert "Retry later" in message
    assert "skip_lms_check" not in message
    assert f"POST /api/v1/lms-connections/{moodle_connection}/test" in message
    assert elapsed < 4.0


def test_token_required(client, moodle_connection):
    response = client.get(_activities_url(moodle_connection, COURSE))

    assert response.status_code == 401
    assert response.json["error"] == "token_missing"
