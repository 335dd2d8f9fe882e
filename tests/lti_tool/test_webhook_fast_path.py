"""The WSGI fast path for completion events, and what it hands on to Flask."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, run_wsgi_app

import lti_tool.webhook_fast_path as fast_path_module
from badge_engine.models import CompletionFactRecord, Provider
from badge_engine.outbox import OutboxMessage
from connectors.models import LmsConnection, LmsKind
from lti_tool.views.webhooks import secret_digest

FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "webhook-secret-fast"


@pytest.fixture
def connections(db):
    provider = Provider(slug="fast", name="Fast", url="https://fast.invalid")
    db.add(provider)
    db.flush()
    made = {}
    for kind in (LmsKind.MOODLE, LmsKind.CANVAS):
        made[kind] = LmsConnection(
            provider_id=provider.id,
            kind=kind.value,
            name=f"Fast {kind.value}",
            base_url="http://127.0.0.1:9",
            webhook_secret_sha256=secret_digest(SECRET),
        )
        db.add(made[kind])
    db.commit()
    return made


@pytest.fixture
def flask_unused(app):
    """Make any request that reaches the Flask app fail the test."""
    fast_path = app.wsgi_app

    def reached_flask(environ, start_response):
        raise AssertionError(f"{environ['PATH_INFO']} reached the Flask app")

    handed_on = fast_path._wsgi_app
    fast_path._wsgi_app = reached_flask
    yield
    fast_path._wsgi_app = handed_on


def _moodle_event(learner_id: int = 3001) -> dict:
    body = json.loads((FIXTURES / "moodle" / "event_course_completed.json").read_text())
    body["token"] = SECRET
    body["relateduserid"] = learner_id
    body.get("other", {}).pop("relateduserid", None)
    return body


def _canvas_event() -> dict:
    return json.loads(
        (FIXTURES / "canvas" / "live_event_course_completed.json").read_text()
    )


def _counts(db) -> tuple[int, int]:
    db.expire_all()
    facts = db.scalar(select(func.count()).select_from(CompletionFactRecord))
    messages = db.scalar(select(func.count()).select_from(OutboxMessage))
    return facts, messages


def test_moodle_event_skips_flask(client, db, connections, flask_unused):
    """A valid Moodle event is stored and gets 202 without reaching Flask."""
    url = f"/webhooks/moodle/{connections[LmsKind.MOODLE].public_id}"

    response = client.post(url, json=_moodle_event(), headers={"X-Request-ID": "r-1"})
    repeat = client.post(url, json=_moodle_event())

    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    assert response.headers["X-Request-ID"] == "r-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert repeat.status_code == 200
    assert repeat.json == {"status": "duplicate", "fact_id": response.json["fact_id"]}
    assert len(repeat.headers["X-Request-ID"]) == 32
    assert _counts(db) == (1, 1)


def test_canvas_json_event_skips_flask(client, db, connections, flask_unused):
    """A Canvas JSON Live Event with the URL's token is stored without Flask."""
    public_id = connections[LmsKind.CANVAS].public_id

    response = client.post(
        f"/webhooks/canvas/{public_id}?token={SECRET}", json=_canvas_event()
    )

    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    assert _counts(db) == (1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"token": "wrong"},
        {"eventname": "not-an-event"},
        {"eventname": "\\core\\event\\badge_awarded"},
    ],
    ids=["wrong-secret", "invalid-event", "not-a-completion"],
)
def test_other_events_handed_to_flask(client, db, connections, change):
    """Events that fail a check or carry no completion get Flask's own responses."""
    url = f"/webhooks/moodle/{connections[LmsKind.MOODLE].public_id}"
    body = {**_moodle_event(), **change}

    response = client.post(url, json=body)

    expected = {"wrong": 401, "not-an-event": 400}
    status = expected.get(change.get("token") or change.get("eventname"), 202)
    assert response.status_code == status
    assert response.headers["X-Request-ID"]
    assert _counts(db) == (0, 0)


def test_unknown_connection_handed_to_flask(client, db):
    """An unknown connection id gets Flask's 404 naming where to find the URL."""
    response = client.post("/webhooks/moodle/no-such-id", json=_moodle_event())

    assert response.status_code == 404
    assert "provider admin page" in response.json["message"]


def test_oversized_body_handed_to_flask(client, db, connections):
    """A body over the 2 MiB limit gets Flask's 413 and nothing is read or stored."""
    url = f"/webhooks/moodle/{connections[LmsKind.MOODLE].public_id}"
    body = {**_moodle_event(), "padding": "x" * (2 * 1024 * 1024)}

    response = client.post(url, json=body)

    assert response.status_code == 413
    assert _counts(db) == (0, 0)


def test_unexpected_error_returns_500(client, db, connections, monkeypatch):
    """A bug in the fast path returns Flask's 500 body with a request id."""

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(fast_path_module, "parse_webhook_event", broken)
    url = f"/webhooks/moodle/{connections[LmsKind.MOODLE].public_id}"

    response = client.post(url, json=_moodle_event())

    assert response.status_code == 500
    assert response.json["error"] == "internal_error"
    assert response.json["request_id"] == response.headers["X-Request-ID"]
    assert _counts(db) == (0, 0)


def test_generated_request_ids_distinct():
    """Generated request ids are 32 hex digits and never repeat in one process."""
    from lti_tool.webhook_fast_path import _request_id

    ids = [_request_id({}) for _ in range(1000)]

    assert len(set(ids)) == 1000
    assert all(len(value) == 32 for value in ids)
    assert all(int(value, 16) >= 0 for value in ids)


LIMIT = 2 * 1024 * 1024


def _chunked_post(client, url: str, raw: bytes):
    """POST `raw` with no Content-Length, as a server hands on a chunked body."""
    return client.post(
        url,
        input_stream=io.BytesIO(raw),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def _padded(body: dict, size: int) -> bytes:
    """Return `body` as JSON of exactly `size` bytes, padded in a "padding" field."""
    raw = json.dumps({**body, "padding": ""}).encode()
    return json.dumps({**body, "padding": "x" * (size - len(raw))}).encode()


def _event_urls(connections) -> dict[str, tuple[str, dict]]:
    moodle = connections[LmsKind.MOODLE].public_id
    canvas = connections[LmsKind.CANVAS].public_id
    return {
        "moodle": (f"/webhooks/moodle/{moodle}", _moodle_event()),
        "canvas": (f"/webhooks/canvas/{canvas}?token={SECRET}", _canvas_event()),
    }


@pytest.mark.parametrize("lms", ["moodle", "canvas"])
def test_chunked_body_over_limit_413(client, db, connections, lms):
    """A chunked body one byte over the limit gets the same 413 as a Content-Length
    body over it, and nothing is stored."""
    url, event = _event_urls(connections)[lms]
    sized = client.post(
        url, data=_padded(event, LIMIT + 1), content_type="application/json"
    )

    response = _chunked_post(client, url, _padded(event, LIMIT + 1))

    assert sized.status_code == 413
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"
    assert response.json["message"] == sized.json["message"]
    assert "limit of 2 MB" in response.json["message"]
    assert response.headers["X-Request-ID"]
    assert _counts(db) == (0, 0)


@pytest.mark.parametrize("lms", ["moodle", "canvas"])
def test_chunked_body_at_limit_stored(client, db, connections, lms):
    """A chunked body of exactly the limit, and a small one, are read whole and stored."""
    url, event = _event_urls(connections)[lms]

    at_limit = _chunked_post(client, url, _padded(event, LIMIT))
    small = _chunked_post(client, url, json.dumps(event).encode())

    assert at_limit.status_code == 202, at_limit.json
    assert small.status_code == 200, small.json
    assert small.json["status"] == "duplicate"
    assert _counts(db) == (1, 1)


def test_endless_chunked_body_413(app, db, connections):
    """A streamed body that never ends is read only to one byte past the limit."""

    class Endless(io.RawIOBase):
        bytes_read = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b" " * len(buffer)
            Endless.bytes_read += len(buffer)
            return len(buffer)

    url = f"/webhooks/moodle/{connections[LmsKind.MOODLE].public_id}"
    environ = EnvironBuilder(url, method="POST", content_type="application/json")
    environ = environ.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BufferedReader(Endless())
    environ["wsgi.input_terminated"] = True

    chunks, status, _headers = run_wsgi_app(app, environ, buffered=True)

    assert status.startswith("413")
    assert json.loads(b"".join(chunks))["error"] == "request_entity_too_large"
    assert Endless.bytes_read < 2 * LIMIT
    assert _counts(db) == (0, 0)
