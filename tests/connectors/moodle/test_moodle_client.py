"""Tests for MoodleClient against a real HTTP server on 127.0.0.1.

The server imitates webservice/rest/server.php. It checks the token and the
functions that the token's service allows, and it serves the fixture response for
each wsfunction. A test can queue scripted responses (an HTTP error, HTML, a delay)
that the server sends to the next requests instead.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from badge_engine.facts import CompletionState
from badge_engine.outbound import GuardedSession, OutboundBlocked, OutboundPolicy
from connectors.moodle.client import MOODLE_LIMITS, MoodleClient, encode_params
from connectors.moodle.conversions import CompletionTracking
from connectors.moodle.errors import (
    MoodleAccessDenied,
    MoodleError,
    MoodleNoCompletionCriteria,
    MoodleResponseInvalid,
    MoodleTokenInvalid,
    MoodleUnavailable,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle"
VALID_TOKEN = "tok-4c1d9e0a7b3f4d2e8a6c5b1f0e9d8c7a"
REST_PATH = "/webservice/rest/server.php"
COURSE_WITHOUT_CRITERIA = 999
ALLOWED_FUNCTIONS = {
    "core_webservice_get_site_info",
    "core_completion_get_course_completion_status",
    "core_completion_get_activities_completion_status",
    "core_course_get_contents",
}


@dataclass
class ScriptedResponse:
    """A response the fake Moodle sends instead of the normal one."""

    status: int = 200
    body: str | bytes = ""
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeMoodle:
    """State of the fake Moodle: recorded requests and scripted responses."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    script: deque[ScriptedResponse] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.script.clear()

    def then(self, *responses: ScriptedResponse) -> None:
        with self.lock:
            self.script.extend(responses)


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_for(wsfunction: str) -> str:
    for name in (f"ws_{wsfunction}.json", f"ws_{wsfunction}_excerpt.json"):
        if (FIXTURES / name).exists():
            return fixture_text(name)
    raise LookupError(f"no fixture for {wsfunction}")


def build_app(state: FakeMoodle) -> Flask:
    app = Flask("fake_moodle")

    @app.post(REST_PATH)
    def rest_server() -> Response:
        form = request.form.to_dict()
        with state.lock:
            state.requests.append({"form": form, "args": request.args.to_dict()})
            scripted = state.script.popleft() if state.script else None

        if scripted is not None:
            time.sleep(scripted.delay)
            return Response(
                scripted.body,
                status=scripted.status,
                content_type=scripted.content_type,
                headers=scripted.headers,
            )

        # Moodle returns errors with HTTP 200 and an exception body.
        if form.get("wstoken") != VALID_TOKEN:
            body = fixture_text("ws_error_invalidtoken.json")
        elif form.get("wsfunction") not in ALLOWED_FUNCTIONS:
            body = fixture_text("ws_error_accessexception.json")
        elif form.get("courseid") == str(COURSE_WITHOUT_CRITERIA):
            body = fixture_text("ws_error_nocriteriaset.json")
        else:
            body = fixture_for(form["wsfunction"])
        return Response(body, status=200, content_type="application/json")

    return app


@pytest.fixture(scope="module")
def moodle_server():
    state = FakeMoodle()
    server = make_server("127.0.0.1", 0, build_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fake_moodle(moodle_server):
    _, state = moodle_server
    state.reset()
    return state


@pytest.fixture
def session():
    http = GuardedSession(OutboundPolicy(allow_loopback=True), MOODLE_LIMITS)
    yield http
    http.close()


@pytest.fixture
def make_client(moodle_server, session):
    base_url, _ = moodle_server

    def make(**options: Any) -> MoodleClient:
        options.setdefault("token", VALID_TOKEN)
        options.setdefault("site_url", base_url)
        options.setdefault("backoff", 0)
        return MoodleClient(session=session, **options)

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_site_info_success(make_client, fake_moodle):
    """get_site_info returns the site's JSON object."""
    client = make_client()

    info = client.get_site_info()

    assert info["sitename"] == "Placeholder Moodle"
    assert info["release"].startswith("4.5")
    assert len(fake_moodle.requests) == 1


def test_call_posts_token_in_body(make_client, fake_moodle):
    """The token, function and format go in the POST body, not the URL."""
    client = make_client()

    client.get_site_info()

    sent = fake_moodle.requests[0]
    assert sent["args"] == {}
    assert sent["form"]["wstoken"] == VALID_TOKEN
    assert sent["form"]["wsfunction"] == "core_webservice_get_site_info"
    assert sent["form"]["moodlewsrestformat"] == "json"


def test_call_flattens_array_params(make_client, fake_moodle):
    """List and dict parameters reach Moodle in PHP array syntax."""
    client = make_client()

    sections = client.call(
        "core_course_get_contents",
        courseid=101,
        options=[{"name": "excludemodules", "value": False}],
    )

    form = fake_moodle.requests[0]["form"]
    assert form["courseid"] == "101"
    assert form["options[0][name]"] == "excludemodules"
    assert form["options[0][value]"] == "0"
    assert sections[0]["modules"][0]["id"] == 4001


def test_course_completion_success(make_client, fake_moodle):
    """The fixture course is complete at the latest criterion time."""
    client = make_client()

    status = client.get_course_completion_status(101, 3001)

    assert status.completed is True
    assert status.time_completed == datetime.fromtimestamp(1735689500, tz=timezone.utc)
    assert status.raw["completionstatus"]["aggregation"] == 1
    form = fake_moodle.requests[0]["form"]
    assert form["courseid"] == "101"
    assert form["userid"] == "3001"


def test_course_completion_incomplete_no_time(make_client, fake_moodle):
    """An incomplete course has no completion time even if a criterion has one."""
    body = json.loads(fixture_for("core_completion_get_course_completion_status"))
    body["completionstatus"]["completed"] = False
    body["completionstatus"]["completions"][1]["complete"] = False
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()

    status = client.get_course_completion_status(101, 3001)

    assert status.completed is False
    assert status.time_completed is None


def test_course_completion_without_times(make_client, fake_moodle):
    """A complete course whose criteria carry no time has time_completed None."""
    body = {
        "completionstatus": {
            "completed": True,
            "aggregation": 1,
            "completions": [{"type": 4, "complete": True, "timecompleted": None}],
        },
        "warnings": [],
    }
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()

    status = client.get_course_completion_status(101, 3001)

    assert status.completed is True
    assert status.time_completed is None


def test_course_completion_bad_shape(make_client, fake_moodle):
    """A response without completionstatus raises MoodleResponseInvalid naming it."""
    fake_moodle.then(ScriptedResponse(body='{"warnings": []}'))
    client = make_client()

    with pytest.raises(MoodleResponseInvalid) as caught:
        client.get_course_completion_status(101, 3001)

    assert "completionstatus" in str(caught.value)
    assert caught.value.wsfunction == "core_completion_get_course_completion_status"


def test_activities_completion_success(make_client, fake_moodle):
    """Each fixture status becomes an ActivityCompletion with neutral values."""
    client = make_client()

    quiz, page = client.get_activities_completion_status(101, 3001)

    assert quiz.cmid == 4001
    assert quiz.modname == "quiz"
    assert quiz.state is CompletionState.PASSED
    assert quiz.time_completed == datetime.fromtimestamp(1735689500, tz=timezone.utc)
    assert quiz.tracking is CompletionTracking.AUTOMATIC
    assert page.cmid == 4002
    assert page.state is CompletionState.INCOMPLETE
    assert page.time_completed is None
    assert page.tracking is CompletionTracking.MANUAL


def test_activities_state_out_of_range(make_client, fake_moodle):
    """An unknown activity state raises MoodleResponseInvalid naming the item."""
    body = json.loads(fixture_for("core_completion_get_activities_completion_status"))
    body["statuses"][0]["state"] = 5
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()

    with pytest.raises(MoodleResponseInvalid) as caught:
        client.get_activities_completion_status(101, 3001)

    assert "statuses[0].state" in str(caught.value)
    assert "5" in str(caught.value)


def test_activities_warnings_logged(make_client, fake_moodle, caplog):
    """Warnings beside a successful result are logged with their ids."""
    body = json.loads(fixture_for("core_completion_get_activities_completion_status"))
    body["warnings"] = [
        {"item": "course", "itemid": 101, "warningcode": "1", "message": "text"}
    ]
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()
    caplog.set_level(logging.WARNING, logger="connectors.moodle.client")

    client.get_activities_completion_status(101, 3001)

    assert "warningcode=1" in caplog.text
    assert "itemid=101" in caplog.text


def test_invalid_token_raises(make_client, fake_moodle):
    """An unknown token raises MoodleTokenInvalid and is not retried."""
    client = make_client(token="tok-deleted-by-admin", max_retries=2)

    with pytest.raises(MoodleTokenInvalid) as caught:
        client.get_site_info()

    assert caught.value.errorcode == "invalidtoken"
    assert caught.value.wsfunction == "core_webservice_get_site_info"
    assert "new token" in str(caught.value)
    assert len(fake_moodle.requests) == 1


def test_access_exception_names_function(make_client, fake_moodle):
    """A function missing from the service raises MoodleAccessDenied naming it."""
    client = make_client()

    with pytest.raises(MoodleAccessDenied) as caught:
        client.call("core_enrol_get_enrolled_users", courseid=101)

    assert caught.value.errorcode == "accessexception"
    assert "Add core_enrol_get_enrolled_users to the token's external service" in str(
        caught.value
    )


def test_no_criteria_raises(make_client, fake_moodle):
    """A course without completion criteria raises MoodleNoCompletionCriteria."""
    client = make_client()

    with pytest.raises(MoodleNoCompletionCriteria) as caught:
        client.get_course_completion_status(COURSE_WITHOUT_CRITERIA, 3001)

    assert caught.value.errorcode == "nocriteriaset"
    assert caught.value.course_id == COURSE_WITHOUT_CRITERIA
    assert f"course {COURSE_WITHOUT_CRITERIA}" in str(caught.value)
    assert "<localised message text>" not in str(caught.value)


def test_unknown_errorcode_base_error(make_client, fake_moodle):
    """An errorcode without its own class raises MoodleError with the errorcode."""
    body = {
        "exception": "dml_missing_record_exception",
        "errorcode": "invalidrecord",
        "message": "Can't find data record in database table course.",
    }
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()

    with pytest.raises(MoodleError) as caught:
        client.get_course_completion_status(404404, 3001)

    assert type(caught.value) is MoodleError
    assert caught.value.errorcode == "invalidrecord"


@pytest.mark.parametrize(
    ("errorcode", "error_class"),
    [
        ("invalidtoken", MoodleTokenInvalid),
        ("accessexception", MoodleAccessDenied),
        ("nopermissions", MoodleAccessDenied),
        ("requireloginerror", MoodleAccessDenied),
        ("nocriteriaset", MoodleNoCompletionCriteria),
        ("sitemaintenance", MoodleUnavailable),
        ("invalidparameter", MoodleError),
    ],
)
def test_errorcode_selects_class(make_client, fake_moodle, errorcode, error_class):
    """Each errorcode raises its class once, whatever the translated message."""
    body = {
        "exception": "moodle_exception",
        "errorcode": errorcode,
        "message": "Texte traduit sans rapport",
    }
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client(max_retries=2)

    with pytest.raises(MoodleError) as caught:
        client.get_course_completion_status(101, 3001)

    assert type(caught.value) is error_class
    assert caught.value.errorcode == errorcode
    assert caught.value.site_url == client.site_url
    assert len(fake_moodle.requests) == 1


def test_access_exception_shows_debuginfo(make_client, fake_moodle):
    """Moodle's debuginfo, sent in debugging mode, is part of the message."""
    body = json.loads(fixture_text("ws_error_accessexception.json"))
    body["debuginfo"] = "Invalid token - token expired - check validuntil time"
    fake_moodle.then(ScriptedResponse(body=json.dumps(body)))
    client = make_client()

    with pytest.raises(MoodleAccessDenied) as caught:
        client.get_site_info()

    assert "token expired" in str(caught.value)


def test_error_body_with_http_400(make_client, fake_moodle):
    """An exception body is mapped by errorcode even when sent with HTTP 400."""
    fake_moodle.then(
        ScriptedResponse(status=400, body=fixture_text("ws_error_invalidtoken.json"))
    )
    client = make_client()

    with pytest.raises(MoodleTokenInvalid):
        client.get_site_info()


def test_html_response_invalid(make_client, fake_moodle):
    """An HTML page in place of JSON raises MoodleResponseInvalid."""
    fake_moodle.then(
        ScriptedResponse(
            body="<!DOCTYPE html><html><body>Log in to the site</body></html>",
            content_type="text/html; charset=utf-8",
        )
    )
    client = make_client()

    with pytest.raises(MoodleResponseInvalid) as caught:
        client.get_site_info()

    assert "not JSON" in str(caught.value)
    assert "text/html" in str(caught.value)
    assert caught.value.status_code == 200


def test_empty_403_access_denied(make_client, fake_moodle):
    """An empty HTTP 403 means the REST protocol is off: MoodleAccessDenied."""
    fake_moodle.then(ScriptedResponse(status=403, body="", content_type="text/html"))
    client = make_client()

    with pytest.raises(MoodleAccessDenied) as caught:
        client.get_site_info()

    assert "REST protocol" in str(caught.value)


def test_wrong_site_path_404(make_client, moodle_server, fake_moodle):
    """A site URL that does not lead to server.php raises MoodleResponseInvalid."""
    base_url, _ = moodle_server
    client = make_client(site_url=base_url + "/moodle")

    with pytest.raises(MoodleResponseInvalid) as caught:
        client.get_site_info()

    assert caught.value.status_code == 404
    assert "site URL" in str(caught.value)


def test_redirect_not_followed(make_client, fake_moodle):
    """A redirect raises MoodleResponseInvalid and the token is not sent again."""
    fake_moodle.then(
        ScriptedResponse(
            status=302, headers={"Location": "https://moodle.example.invalid/"}
        )
    )
    client = make_client()

    with pytest.raises(MoodleResponseInvalid) as caught:
        client.get_site_info()

    assert "https://moodle.example.invalid/" in str(caught.value)
    assert len(fake_moodle.requests) == 1


def test_503_then_success_retried(make_client, fake_moodle):
    """Two HTTP 503 responses are retried and the third attempt succeeds."""
    fake_moodle.then(
        ScriptedResponse(status=503, body="busy", content_type="text/plain"),
        ScriptedResponse(status=503, body="busy", content_type="text/plain"),
    )
    client = make_client(max_retries=2)

    info = client.get_site_info()

    assert info["sitename"] == "Placeholder Moodle"
    assert len(fake_moodle.requests) == 3


def test_503_exhausts_retries(make_client, fake_moodle):
    """Persistent HTTP 503 raises MoodleUnavailable after max_retries retries."""
    for _ in range(3):
        fake_moodle.then(ScriptedResponse(status=503, headers={"Retry-After": "120"}))
    client = make_client(max_retries=2)

    with pytest.raises(MoodleUnavailable) as caught:
        client.get_site_info()

    assert caught.value.status_code == 503
    assert caught.value.retry_after == 120.0
    assert "attempt 3 of 3" in str(caught.value)
    assert len(fake_moodle.requests) == 3


def test_retry_waits_backoff(make_client, fake_moodle):
    """Retries wait backoff, then twice backoff, before the next attempts."""
    fake_moodle.then(ScriptedResponse(status=502), ScriptedResponse(status=504))
    client = make_client(max_retries=2, backoff=0.1)

    started = time.monotonic()
    client.get_site_info()
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3
    assert len(fake_moodle.requests) == 3


def test_slow_server_times_out(make_client, fake_moodle):
    """A server slower than the read timeout raises MoodleUnavailable."""
    fake_moodle.then(ScriptedResponse(body="{}", delay=1.0))
    client = make_client(timeout=(2, 0.2), max_retries=0)

    with pytest.raises(MoodleUnavailable) as caught:
        client.get_site_info()

    assert "timed out" in str(caught.value)
    assert isinstance(caught.value.__cause__, requests.exceptions.Timeout)


def test_timeout_then_success_retried(make_client, fake_moodle):
    """A timed-out attempt is retried and the retry's result is returned."""
    fake_moodle.then(ScriptedResponse(body="{}", delay=1.0))
    client = make_client(timeout=(2, 0.2), max_retries=1)

    info = client.get_site_info()

    assert info["sitename"] == "Placeholder Moodle"
    assert len(fake_moodle.requests) == 2


def test_connection_refused_unavailable(session):
    """A port with no server raises MoodleUnavailable after the retries."""
    client = MoodleClient(
        f"http://127.0.0.1:{free_port()}",
        VALID_TOKEN,
        session=session,
        max_retries=1,
        backoff=0,
    )

    with pytest.raises(MoodleUnavailable) as caught:
        client.get_site_info()

    assert "Could not connect" in str(caught.value)
    assert "attempt 2 of 2" in str(caught.value)


def test_token_never_logged(make_client, fake_moodle, caplog):
    """No log record or error message contains the token, even when Moodle echoes it."""
    caplog.set_level(logging.DEBUG)
    echoed = {
        "exception": "invalid_parameter_exception",
        "errorcode": "invalidparameter",
        "message": f"Invalid parameter value detected ({VALID_TOKEN})",
        "debuginfo": f"wstoken={VALID_TOKEN}",
    }
    fake_moodle.then(
        # A retried HTTP 503, then an error body that echoes the token.
        ScriptedResponse(status=503),
        ScriptedResponse(body=json.dumps(echoed)),
        # An HTML page that echoes the token.
        ScriptedResponse(body=f"<html>{VALID_TOKEN}</html>", content_type="text/html"),
        # Two timeouts.
        ScriptedResponse(body="{}", delay=1.0),
        ScriptedResponse(body="{}", delay=1.0),
    )
    client = make_client(max_retries=1, timeout=(2, 0.2))
    bad_token_client = make_client(token="tok-deleted-by-admin", max_retries=0)
    messages = []

    for call in (
        client.get_site_info,
        client.get_site_info,
        lambda: client.get_course_completion_status(101, 3001),
        lambda: bad_token_client.get_activities_completion_status(101, 3001),
    ):
        with pytest.raises(MoodleError) as caught:
            call()
        messages.append(str(caught.value))

    assert len(fake_moodle.requests) == 6
    assert "retrying" in caplog.text
    assert VALID_TOKEN not in caplog.text
    assert "tok-deleted-by-admin" not in caplog.text
    for message in messages:
        assert VALID_TOKEN not in message
        assert "tok-deleted-by-admin" not in message
    assert "[token removed]" in messages[0]
    assert "[token removed]" in messages[1]


def test_repr_hides_token():
    """The client's repr names the site but not the token."""
    client = MoodleClient("https://moodle.example.invalid/", VALID_TOKEN)

    assert VALID_TOKEN not in repr(client)
    assert "https://moodle.example.invalid" in repr(client)
    assert client.endpoint == "https://moodle.example.invalid" + REST_PATH


@pytest.mark.parametrize(
    "site_url",
    [
        "moodle.example.invalid",
        "ftp://moodle.example.invalid",
        "https://",
        "https://moodle.example.invalid/?x=1",
    ],
)
def test_invalid_site_url_rejected(site_url):
    """A site URL without http(s), a host, or with a query raises ValueError."""
    with pytest.raises(ValueError, match="site URL"):
        MoodleClient(site_url, VALID_TOKEN)


@pytest.mark.parametrize("token", ["", "   "])
def test_empty_token_rejected(token):
    """An empty token raises ValueError."""
    with pytest.raises(ValueError, match="token"):
        MoodleClient("https://moodle.example.invalid", token)


def test_invalid_wsfunction_rejected():
    """A wsfunction that is not a Moodle function name raises ValueError."""
    client = MoodleClient("https://moodle.example.invalid", VALID_TOKEN)

    with pytest.raises(ValueError, match="wsfunction"):
        client.call("core_webservice_get_site_info&wstoken=x")


def test_encode_params_nested():
    """Nested lists and dicts flatten to indexed and named PHP array keys."""
    fields = encode_params(
        {
            "courseids": [3, 4],
            "options": {"ids": [7], "flag": True},
            "skipped": None,
            "ratio": 0.5,
        }
    )

    assert fields == [
        ("courseids[0]", "3"),
        ("courseids[1]", "4"),
        ("options[ids][0]", "7"),
        ("options[flag]", "1"),
        ("ratio", "0.5"),
    ]


def test_encode_params_rejects_objects():
    """A value of an unsupported type raises TypeError naming the parameter."""
    with pytest.raises(TypeError, match="'when'"):
        encode_params({"when": datetime(2025, 1, 1, tzinfo=timezone.utc)})


@pytest.mark.parametrize(
    "site_url",
    ["https://169.254.169.254", "https://10.0.0.5/moodle", "https://127.0.0.1:1"],
)
def test_blocked_address_each_request(site_url):
    """Every call goes through the outbound guard, which blocks non-public sites."""
    client = MoodleClient(site_url, VALID_TOKEN, backoff=0)

    with pytest.raises(MoodleError) as raised:
        client.get_site_info()

    assert isinstance(raised.value.__cause__, OutboundBlocked)
    assert raised.value.__cause__.code == "blocked_address"
    assert VALID_TOKEN not in str(raised.value)


def test_plain_session_rejected():
    """A session that bypasses the outbound guard is a TypeError."""
    with pytest.raises(TypeError, match="GuardedSession"):
        MoodleClient(
            "https://moodle.example.org", VALID_TOKEN, session=requests.Session()
        )
