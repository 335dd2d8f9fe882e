"""Log configuration: routine Celery lines stay out of the way at INFO, and secret
tokens in request paths never reach the output."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager

import pytest

from lti_tool.logs import (
    ROUTINE_CELERY_LOGGERS,
    TOKEN_PATH_PREFIXES,
    configure_logging,
    get_logger,
    redact_url_secrets,
)
from lti_tool.lti.dynamic_registration import registration_token
from tests.support.seed import add_provider


@pytest.fixture(autouse=True)
def _restore_levels():
    before = {name: logging.getLogger(name).level for name in ROUTINE_CELERY_LOGGERS}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_routine_celery_lines_hidden_at_info():
    """At INFO the per-task and scheduler lines are hidden, and task errors still show."""
    configure_logging("console", "INFO")

    for name in ROUTINE_CELERY_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.ERROR)


def test_routine_celery_lines_shown_at_debug():
    """At DEBUG every Celery line shows."""
    configure_logging("console", "DEBUG")

    for name in ROUTINE_CELERY_LOGGERS:
        assert logging.getLogger(name).isEnabledFor(logging.INFO)


RESET_TOKEN = "Zq3vN8xYreset-token-value_123"
REGISTER_TOKEN = "1.eyJwIjoxfQ.c2lnbmF0dXJl"


@contextmanager
def captured_log_lines():
    """Collect what the bridge's own log handler writes, formatted as in production."""
    bridge_handler = next(
        handler
        for handler in logging.getLogger().handlers
        if getattr(handler, "_hpass", False)
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(bridge_handler.formatter)
    logging.getLogger().addHandler(handler)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"/account/reset/{RESET_TOKEN}", "/account/reset/[redacted]"),
        (f"/account/invitation/{RESET_TOKEN}", "/account/invitation/[redacted]"),
        (f"/lti/register/{REGISTER_TOKEN}", "/lti/register/[redacted]"),
        (
            f"http://127.0.0.1:5999/lti/register/{REGISTER_TOKEN}?lang=fr",
            "http://127.0.0.1:5999/lti/register/[redacted]?lang=fr",
        ),
        (
            f'"POST /account/reset/{RESET_TOKEN} HTTP/1.1" 400 -',
            '"POST /account/reset/[redacted] HTTP/1.1" 400 -',
        ),
        (
            "/webhooks/canvas/abc?token=s3cret&x=1",
            "/webhooks/canvas/abc?token=[redacted]&x=1",
        ),
        (
            "/lti/register/x?registration_token=eyJ.a.b&lang=fr",
            "/lti/register/[redacted]?registration_token=[redacted]&lang=fr",
        ),
        (
            "/portfolio/callback?state=s&code=c0de",
            "/portfolio/callback?state=s&code=[redacted]",
        ),
        ("/account/reset", "/account/reset"),
        ("/credentials/7f3c/badge.png", "/credentials/7f3c/badge.png"),
        ("/course/3?lang=fr", "/course/3?lang=fr"),
    ],
)
def test_redact_url_secrets_cases(value, expected):
    """Token path segments and secret query values are replaced, other paths kept."""
    event = redact_url_secrets(
        None, "warning", {"event": "request_rejected", "path": value}
    )

    assert event["path"] == expected
    assert event["event"] == "request_rejected"


def test_token_routes_all_redacted(app):
    """Every route that takes a token in its path is one whose segment is redacted."""
    token_rules = [
        rule.rule for rule in app.url_map.iter_rules() if "token" in rule.arguments
    ]

    assert token_rules
    for rule in token_rules:
        assert rule.startswith(TOKEN_PATH_PREFIXES), rule


def test_csrf_failure_on_reset_link_redacted(client):
    """A rejected post to a reset link logs the path without its token."""
    with captured_log_lines() as output:
        response = client.post(f"/account/reset/{RESET_TOKEN}", data={"csrf": "wrong"})

    lines = output.getvalue()
    assert response.status_code == 400
    assert "request_rejected" in lines
    assert "/account/reset/[redacted]" in lines
    assert RESET_TOKEN not in lines


def test_registration_url_rejection_redacted(app, client, db):
    """A registration URL opened without its platform parameters logs no token."""
    provider = add_provider(db, slug="alpha", name="Alpha")
    db.commit()
    token = registration_token(app.config["SECRET_KEY"], provider.id)

    with captured_log_lines() as output:
        response = client.get(f"/lti/register/{token}")

    lines = output.getvalue()
    assert response.status_code == 400
    assert "request_rejected" in lines
    assert "/lti/register/[redacted]" in lines
    assert token not in lines


def test_other_library_line_redacted(app):
    """A standard library line, such as a server's access line, is redacted too."""
    with captured_log_lines() as output:
        logging.getLogger("werkzeug").warning(
            '127.0.0.1 - - "%s %s HTTP/1.1" 200 -',
            "GET",
            f"/account/reset/{RESET_TOKEN}",
        )

    lines = output.getvalue()
    assert "/account/reset/[redacted]" in lines
    assert RESET_TOKEN not in lines


def test_traceback_text_redacted(app):
    """A logged exception whose message contains a token path is redacted."""
    log = get_logger("tests.logs")

    with captured_log_lines() as output:
        try:
            raise ValueError(f"no handler for /account/invitation/{RESET_TOKEN}")
        except ValueError:
            log.exception("request_failed")

    lines = output.getvalue()
    assert "/account/invitation/[redacted]" in lines
    assert RESET_TOKEN not in lines
