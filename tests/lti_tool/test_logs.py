"""Log configuration: routine Celery lines stay out of the way at INFO, and secret
tokens in request paths never reach the output."""

from __future__ import annotations

import io
import json
import logging
from collections import namedtuple
from contextlib import contextmanager

import pytest

from lti_tool.logs import (
    GRANIAN_ACCESS_LOGGER,
    ROUTINE_CELERY_LOGGERS,
    TOKEN_PATH_PREFIXES,
    AccessLineRedactor,
    configure_logging,
    get_logger,
    redact_url_secrets,
    redact_value,
)
from lti_tool.lti.registration_links import issue_registration_link
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
WEBHOOK_TOKEN = "canvas-webhook-secret-42"
RESET_PATH = f"/account/reset/{RESET_TOKEN}"


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
    _, token = issue_registration_link(db, provider_id=provider.id, actor="os:test")
    db.commit()

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


def test_nested_values_redacted():
    """Strings inside dict, list and tuple values are redacted at any depth."""
    request = {
        "url": f"http://127.0.0.1:5999{RESET_PATH}",
        "hops": [("POST", f"/webhooks/canvas/abc?token={WEBHOOK_TOKEN}")],
    }
    event = redact_url_secrets(
        None,
        "warning",
        {
            "event": "request_failed",
            "request": request,
            "paths": [RESET_PATH, "/course/3"],
            "pair": ("reset", RESET_PATH),
            "attempt": 2,
        },
    )

    assert event["request"]["url"] == "http://127.0.0.1:5999/account/reset/[redacted]"
    assert event["request"]["hops"] == [
        ("POST", "/webhooks/canvas/abc?token=[redacted]")
    ]
    assert event["paths"] == ["/account/reset/[redacted]", "/course/3"]
    assert event["pair"] == ("reset", "/account/reset/[redacted]")
    assert event["attempt"] == 2


def test_nested_redaction_copies_values():
    """The caller's dicts and lists are copied, never changed in place."""
    details = {"paths": [RESET_PATH]}

    event = redact_url_secrets(None, "info", {"event": "sent", "details": details})

    assert event["details"] == {"paths": ["/account/reset/[redacted]"]}
    assert details == {"paths": [RESET_PATH]}


def test_redact_value_keeps_types():
    """A named tuple stays one, dict keys are redacted, and scalars pass unchanged."""
    Hop = namedtuple("Hop", "method path")

    hop = redact_value(Hop("GET", RESET_PATH))
    keyed = redact_value({RESET_PATH: 1, "ok": None, "ratio": 0.5, "on": True})

    assert isinstance(hop, Hop)
    assert hop.path == "/account/reset/[redacted]"
    assert keyed == {
        "/account/reset/[redacted]": 1,
        "ok": None,
        "ratio": 0.5,
        "on": True,
    }


def test_redact_value_cyclic_list():
    """A list that contains itself is copied with the same cycle, not recursed into."""
    paths: list = [RESET_PATH]
    paths.append(paths)

    copy = redact_value(paths)

    assert copy[0] == "/account/reset/[redacted]"
    assert copy[1] is copy


def test_redact_value_exception_object():
    """An exception value with a token becomes its redacted repr, and one without
    a token is kept as it is."""
    error = ValueError(f"no handler for /account/invitation/{RESET_TOKEN}")
    plain = ValueError("no handler")

    assert redact_value(error) == (
        "ValueError('no handler for /account/invitation/[redacted]')"
    )
    assert redact_value(plain) is plain


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_nested_value_line_redacted(app, log_format):
    """A line with tokens inside nested values and an exception value is redacted in
    both output formats."""
    log = get_logger("tests.logs")
    error = RuntimeError(f"callback to /lti/register/{REGISTER_TOKEN} failed")
    configure_logging(log_format, "INFO")
    try:
        with captured_log_lines() as output:
            log.warning(
                "delivery_failed",
                request={"paths": [RESET_PATH]},
                hops=(f"/webhooks/canvas/abc?token={WEBHOOK_TOKEN}",),
                error=error,
            )
    finally:
        configure_logging("console", "INFO")

    lines = output.getvalue()
    assert "delivery_failed" in lines
    assert "/account/reset/[redacted]" in lines
    assert "token=[redacted]" in lines
    assert "/lti/register/[redacted]" in lines
    assert RESET_TOKEN not in lines
    assert WEBHOOK_TOKEN not in lines
    assert REGISTER_TOKEN not in lines
    if log_format == "json":
        assert json.loads(lines)["request"] == {"paths": ["/account/reset/[redacted]"]}


def _granian_access_record(fields: dict) -> logging.LogRecord:
    fmt = '%(method)s %(path)s?%(query_string)s %(status)d "%(_h0)s"'
    return logging.LogRecord(
        GRANIAN_ACCESS_LOGGER, logging.INFO, __file__, 1, fmt, (fields,), None
    )


def test_access_line_redactor_fields():
    """Granian's path, query string and header fields are redacted, others kept."""
    record = _granian_access_record(
        {
            "method": "POST",
            "path": RESET_PATH,
            "query_string": f"lang=fr&token={WEBHOOK_TOKEN}",
            "status": 400,
            "_h0": f"https://lms.example.org{RESET_PATH}",
        }
    )

    assert AccessLineRedactor().filter(record) is True
    assert record.getMessage() == (
        "POST /account/reset/[redacted]?lang=fr&token=[redacted] 400 "
        '"https://lms.example.org/account/reset/[redacted]"'
    )


def test_access_line_redactor_installed(app):
    """The bridge's logging setup adds the redactor to granian's access logger."""
    access_logger = logging.getLogger(GRANIAN_ACCESS_LOGGER)
    configure_logging("console", "INFO")

    redactors = [
        entry
        for entry in access_logger.filters
        if isinstance(entry, AccessLineRedactor)
    ]
    assert len(redactors) == 1
