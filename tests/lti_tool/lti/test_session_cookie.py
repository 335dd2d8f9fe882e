"""The launch's session cookie: written without tagged JSON, read back by Flask."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from flask import Flask
from itsdangerous import BadSignature

from lti_tool.lti.session_cookie import SessionCookieWriter

LAUNCH_SESSION = {
    "provider_id": 1,
    "registration_id": 2,
    "course_id": 3,
    "lms_user_id": "3001",
    "learner_id": 4,
    "role": "learner",
    "lti_role": "learner",
    "name": 'Léa \u00e9l\u00e8ve "quoted" <b>',
    "launch_locale": None,
    "frame_origins": ["https://lms.example.org"],
}


def _app() -> Flask:
    app = Flask("session_cookie_test")
    app.secret_key = b"test-secret"
    app.config.update(
        SESSION_COOKIE_NAME="hpass_session",
        SESSION_COOKIE_SAMESITE="None",
        SESSION_COOKIE_SECURE=True,
    )
    return app


def _read(app: Flask, value: str) -> dict:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(value)


def test_plain_session_read_by_flask():
    """Flask's session interface reads the written cookie back unchanged."""
    app = _app()
    writer = SessionCookieWriter(app)

    value = writer.value(LAUNCH_SESSION)

    assert not value.startswith(".")
    assert _read(app, value) == LAUNCH_SESSION


def test_header_attributes_match_flask():
    """The header has the name and attributes Flask's own cookie would have."""
    app = _app()
    header = SessionCookieWriter(app).header(LAUNCH_SESSION)

    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie["hpass_session"]
    assert morsel["httponly"]
    assert morsel["secure"]
    assert morsel["samesite"] == "None"
    assert morsel["path"] == "/"
    assert not morsel["expires"]
    assert _read(app, morsel.value) == LAUNCH_SESSION


def test_tampered_cookie_rejected():
    """A cookie whose payload was swapped for another session's does not verify."""
    app = _app()
    writer = SessionCookieWriter(app)
    _, timestamp, signature = writer.value(LAUNCH_SESSION).split(".")
    other_payload = writer.value({**LAUNCH_SESSION, "role": "instructor"}).split(".")[0]
    serializer = app.session_interface.get_signing_serializer(app)

    with pytest.raises(BadSignature):
        serializer.loads(f"{other_payload}.{timestamp}.{signature}")


def test_other_key_rejected():
    """A cookie signed with another secret key does not verify."""
    other = _app()
    other.secret_key = b"other-secret"
    value = SessionCookieWriter(other).value(LAUNCH_SESSION)
    app = _app()

    with pytest.raises(BadSignature):
        _read(app, value)


def test_tagged_values_use_flask_serializer():
    """A tuple or a one-key dict keeps its type through Flask's serializer."""
    app = _app()
    writer = SessionCookieWriter(app)
    data = {"pair": ("a", "b"), "tagged": {" t": ["x"]}}

    assert _read(app, writer.value(data)) == data


def test_value_equals_itsdangerous_signature(monkeypatch):
    """The prekeyed signer writes the bytes itsdangerous's own signer writes."""
    app = _app()
    writer = SessionCookieWriter(app)
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: 1_800_000_000.5)
    payload = b"eyJyb2xlIjoibGVhcm5lciJ9"

    assert writer._sign is not writer._signer.sign
    assert writer._sign(payload) == writer._signer.sign(payload)


def test_other_key_derivation_read_by_flask(monkeypatch):
    """A session interface with another key derivation gets cookies Flask reads."""
    app = _app()
    monkeypatch.setattr(app.session_interface, "key_derivation", "django-concat")
    writer = SessionCookieWriter(app)

    assert _read(app, writer.value(LAUNCH_SESSION)) == LAUNCH_SESSION
