"""`hpass-bridge lms`: connect a provider's Moodle or Canvas site, list and test them.

`lms connect moodle` is the same action as the older `connection add-moodle`,
which stays as an alias.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lti_tool.cli import EXIT_FAILURE
from lti_tool.cli_support import (
    emit,
    json_option,
    operator_session,
    provider_option,
    table,
)
from lti_tool.operations import InvalidInput, audit, provider_by_slug
from lti_tool.operations.lms import (
    CONNECTION_STATUS_LABELS,
    connect_canvas_site,
    connect_moodle,
    connection_dict,
    find_connection,
    list_connections,
    test_lms_connection,
)
from lti_tool.operations.course_check import list_course_activities


def _token(token: str | None, token_file: Path | None) -> str:
    if (token is None) == (token_file is None):
        raise InvalidInput(
            "give the LMS token with exactly one of --token or --token-file "
            "(the file keeps it out of the shell history)",
            code="token_required",
        )
    if token is not None:
        return token
    try:
        return token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise InvalidInput(
            f"cannot read --token-file {str(token_file)!r}: {error.strerror}; write "
            "the token into a file readable by this user",
            code="invalid_token_file",
        ) from None


def _token_option_name(token_file: Path | None) -> str:
    """Return the option the user gave the token with, for error messages."""
    return "--token" if token_file is None else "--token-file"


def _token_options(function):
    function = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File that contains the token instead of --token.",
    )(function)
    return click.option("--token", help="The LMS API token.")(function)


def _connected_text(kind: str, connected, slug: str) -> str:
    lines = [
        f"{kind} connection {connected.connection.public_id} created for {slug}.",
        f"Webhook URL: {connected.webhook_url}",
        f"Webhook secret (shown once, paste it into the LMS now): "
        f"{connected.webhook_secret}",
    ]
    lines += connection_test_fixes(connected.test)
    return "\n".join(lines)


def connection_test_fixes(test: dict) -> list[str]:
    """Return a "to fix" line per problem that a connection test reported."""
    problems = [m["fix"] for m in test.get("missing_functions", [])]
    problems += test.get("problems", []) + list(test.get("advice", []))
    if test.get("missing_scopes"):
        problems.append(test["message"])
    return [f"  to fix: {problem}" for problem in problems]


def _connected_result(op, connected, slug: str) -> dict:
    return {
        "status": "created",
        "provider": slug,
        "connection": connection_dict(op.bridge, connected.connection),
        "webhook_url": connected.webhook_url,
        "webhook_secret": connected.webhook_secret,
        "test": connected.test,
    }


@click.group()
def lms() -> None:
    """Connect a provider's LMS (Moodle, Canvas), list and test connections."""


@lms.group()
def connect() -> None:
    """Connect a Moodle or Canvas site, test it and print the webhook to configure."""


@connect.command("moodle")
@provider_option()
@click.option("--url", required=True, help="Moodle site root URL (http(s)).")
@_token_options
@click.option("--name", default="Moodle", show_default=True, help="Display name.")
@json_option
def connect_moodle_command(provider_slug, url, token, token_file, name, as_json):
    """Connect a Moodle site with a web service token, saved only if Moodle accepts it."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        connected = connect_moodle(
            op.session,
            op.bridge,
            op.actor,
            found,
            url=url,
            token=_token(token, token_file),
            name=name,
            token_option=_token_option_name(token_file),
        )
        op.session.commit()
        result = _connected_result(op, connected, provider_slug)
    emit(result, as_json, _connected_text("Moodle", connected, provider_slug))


@connect.command("canvas")
@provider_option()
@click.option("--url", required=True, help="Canvas site root URL (http(s)).")
@_token_options
@click.option(
    "--course",
    "course_id",
    required=True,
    help="A Canvas course id the test reads, because Canvas checks "
    "scopes per course endpoint.",
)
@click.option(
    "--client-id",
    help="Developer key client id (OAuth2; with --client-secret and --refresh-token).",
)
@click.option("--client-secret", help="Developer key secret.")
@click.option("--refresh-token", help="Refresh token of the developer key's grant.")
@click.option("--name", default="Canvas", show_default=True, help="Display name.")
@json_option
def connect_canvas_command(
    provider_slug,
    url,
    token,
    token_file,
    course_id,
    client_id,
    client_secret,
    refresh_token,
    name,
    as_json,
):
    """Connect a Canvas site with an access token or a developer key's tokens."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        connected = connect_canvas_site(
            op.session,
            op.bridge,
            op.actor,
            found,
            url=url,
            token=_token(token, token_file),
            course_id=course_id,
            name=name,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            token_option=_token_option_name(token_file),
        )
        op.session.commit()
        result = _connected_result(op, connected, provider_slug)
    emit(result, as_json, _connected_text("Canvas", connected, provider_slug))


@lms.command("list")
@provider_option(required=False)
@json_option
def list_(provider_slug, as_json):
    """List LMS connections with their state and webhook URL."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug) if provider_slug else None
        rows = [
            connection_dict(op.bridge, connection)
            for connection in list_connections(op.session, found)
        ]
        audit(
            op.session,
            op.actor,
            "lms_connection.listed",
            provider_id=found.id if found else None,
        )
        op.session.commit()
    # The text table uses the admin page's words for the status, and --json the keys.
    labelled_rows = [
        {**row, "status": CONNECTION_STATUS_LABELS[row["status"]]} for row in rows
    ]
    text = table(
        labelled_rows, ["id", "kind", "name", "status", "url"], "no LMS connections"
    )
    # A connection that is not working says why below the table, as the admin page
    # does beside its status.
    details = [
        f"{row['id']}: {row['state_detail']}"
        for row in rows
        if row["status"] == "not_working" and row["state_detail"]
    ]
    if details:
        text = "\n".join([text, "", *details])
    emit({"connections": rows}, as_json, text)


@lms.command("test")
@click.argument("connection_id")
@click.option(
    "--course",
    "course_id",
    help="Canvas course id to test with (default: the first course that has a badge).",
)
@json_option
def test(connection_id, course_id, as_json):
    """Test a stored connection; exits 1 until the LMS grants everything needed."""
    with operator_session(as_json) as op:
        connection = find_connection(op.session, connection_id)
        result = test_lms_connection(
            op.session, op.bridge, op.actor, connection, course_id
        )
        op.session.commit()
    text = [f"{connection_id}: {'ok' if result['ok'] else 'FAILED'}"]
    if result.get("error"):
        text.append(f"  {result['error']}")
    if result.get("message"):
        text.append(f"  {result['message']}")
    text += [f"  to fix: {m['fix']}" for m in result.get("missing_functions", [])]
    emit(result, as_json, "\n".join(text))
    if not result["ok"]:
        sys.exit(EXIT_FAILURE)


@lms.command("activities")
@click.argument("connection_id")
@click.option("--course", "course_id", required=True, help="LMS course id.")
@json_option
def activities(connection_id, course_id, as_json):
    """List a course's activity ids, the ids an award rule names.

    Reads the course from the LMS: Moodle course modules or Canvas module items,
    then the course's AGS line items. KIND is the LMS's activity type. TRACKED is
    "no" for an activity without completion tracking, which no learner can complete.
    The LMS must respond within HPASS_LMS_CHECK_TIMEOUT_SECONDS.
    """
    with operator_session(as_json) as op:
        connection = find_connection(op.session, connection_id)
        rows = list_course_activities(
            op.bridge, op.session, op.actor, connection, course_id
        )
        op.session.commit()
    text_rows = [{**row, "tracked": "yes" if row["tracked"] else "no"} for row in rows]
    emit(
        {
            "connection": connection_id,
            "course_id": course_id.strip(),
            "activities": rows,
        },
        as_json,
        table(
            text_rows,
            ["id", "kind", "tracked", "section", "name"],
            "the course has no activities",
        ),
    )
