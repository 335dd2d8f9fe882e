"""Canvas tokens that lack scopes: `lms list`, `connection set-token`, course ids."""

from __future__ import annotations

from sqlalchemy import select

from lti_tool.accounts import AuditEvent
from connectors.canvas.connection import REQUIRED_SCOPES, credential_for
from connectors.models import LmsConnection
from lti_tool.bridge import Bridge
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.operations.lms import canvas_course_id
from tests.lti_tool.cli.conftest import CANVAS_COURSE_ID

COURSE = str(CANVAS_COURSE_ID)


def _connect_without_first_scope(cli, provider, canvas) -> tuple[str, str]:
    scopes = list(REQUIRED_SCOPES)
    token = canvas.issue_token(scopes=frozenset(scopes[1:]))
    result = cli.ok(
        "lms",
        "connect",
        "canvas",
        "--provider",
        provider,
        "--url",
        canvas.url,
        "--token",
        token,
        "--course",
        COURSE,
        "--json",
    )
    return result.document["connection"]["id"], scopes[0]


def _bridge(cli) -> Bridge:
    settings = load_settings(environ=cli.env)
    ensure_secret_files(settings, cli.env)
    return Bridge.from_settings(settings)


def test_missing_scopes_listed_not_working(cli, provider, canvas):
    """lms list shows the missing scope, not "Not responding"."""
    connection_id, missing_scope = _connect_without_first_scope(cli, provider, canvas)

    listed = cli.ok("lms", "list", "--json").document["connections"][0]
    text = cli.ok("lms", "list").stdout

    assert listed["id"] == connection_id
    assert listed["status"] == "not_working"
    assert "The access token lacks these scopes" in listed["state_detail"]
    assert missing_scope in listed["state_detail"]
    assert "developer key lacks" not in listed["state_detail"]
    assert "Not responding" not in text
    assert "Not working" in text
    assert missing_scope in text


def test_set_token_fixes_canvas(cli, provider, canvas, tmp_path):
    """A token with every scope is saved encrypted, tested, audited, and the
    connection works again."""
    connection_id, _ = _connect_without_first_scope(cli, provider, canvas)
    new_token = canvas.issue_token()
    token_file = tmp_path / "canvas-token.txt"
    token_file.write_text(new_token + "\n")

    result = cli(
        "connection",
        "set-token",
        connection_id,
        "--token-file",
        str(token_file),
        "--course",
        COURSE,
        "--json",
    )

    assert result.code == 0, result.stderr
    assert result.document["ok"] is True
    assert cli.ok("lms", "list", "--json").document["connections"][0]["status"] in (
        "connected",
    )
    bridge = _bridge(cli)
    with bridge.session() as session:
        connection = session.scalars(select(LmsConnection)).one()
        stored = credential_for(session, connection).access_token_encrypted
        actions = list(session.scalars(select(AuditEvent.action)))
        assert connection.state == "ok"
        assert connection.state_detail is None
        assert new_token.encode() not in stored
        assert bridge.vault.decrypt(stored).decode() == new_token
    bridge.engine.dispose()
    assert "lms_connection.token_replaced" in actions


def test_set_token_still_missing_scope(cli, provider, canvas, tmp_path):
    """A new token that still lacks a scope exits 1 and names the scope."""
    connection_id, missing_scope = _connect_without_first_scope(cli, provider, canvas)
    token_file = tmp_path / "canvas-token.txt"
    token_file.write_text(canvas.issue_token(scopes=frozenset()))

    result = cli(
        "connection",
        "set-token",
        connection_id,
        "--token-file",
        str(token_file),
        "--course",
        COURSE,
    )

    assert result.code == 1
    assert "test FAILED" in result.stdout
    assert missing_scope in result.stdout
    assert "set-token" in result.stdout


def test_set_token_course_only_canvas(cli, moodle_connection, tmp_path):
    """--course on a Moodle connection is a usage error."""
    token_file = tmp_path / "token.txt"
    token_file.write_text("some-token")

    result = cli(
        "connection",
        "set-token",
        moodle_connection,
        "--token-file",
        str(token_file),
        "--course",
        COURSE,
    )

    assert result.code == 2
    assert "Canvas connections only" in result.stderr


def test_canvas_course_id_forms():
    """A course id is read from digits or from a course address."""
    assert canvas_course_id(" 1234 ") == "1234"
    assert canvas_course_id("https://canvas.example.org/courses/1234") == "1234"
    assert canvas_course_id("https://canvas.example.org/courses/1234/modules") == "1234"
    assert canvas_course_id("https://canvas.example.org/courses/12x") is None
    assert canvas_course_id("https://canvas.example.org/users/1234") is None
    assert canvas_course_id("canvas.example.org/courses/1234") is None
    assert canvas_course_id("1" * 21) is None
