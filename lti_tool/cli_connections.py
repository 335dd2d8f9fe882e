"""`hpass-bridge connection`: connect a provider's LMS, test and disconnect it."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Provider
from connectors.canvas.connection import ConnectionTestResult as CanvasTestResult
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.connection import ConnectionTestResult
from lti_tool.bridge import Bridge
from lti_tool.cli import (
    EXIT_FAILURE,
    EXIT_INVALID_INPUT,
    _instance_or_fail,
    emit,
    fail,
    json_option,
)
from lti_tool.cli_support import operator_session, provider_option, report_error
from lti_tool.config import is_loopback_host
from lti_tool.operations import (
    ActionError,
    InvalidInput,
    NotFound,
    operating_system_actor,
    provider_by_slug,
)
from lti_tool.operations.lms import (
    check_connected,
    check_lms_url,
    connect_moodle,
    connection_dict,
    connection_usage,
    disconnect_connection,
    disconnect_warning,
    find_connection,
    issue_webhook_secret,
    replace_api_token,
    run_connection_test,
    usage_summary,
)


@click.group()
def connection() -> None:
    """Connect a provider's LMS, test the connection or disconnect it."""


@connection.command("add-moodle")
@click.option("--provider", "provider_slug", required=True, help="Provider slug.")
@click.option("--url", "site_url", required=True, help="Moodle site root URL.")
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File that contains the Moodle web service token (kept out of the shell "
    "history and the process list).",
)
@click.option("--name", default="Moodle", show_default=True, help="Display name.")
@click.option(
    "--skip-lms-check",
    is_flag=True,
    help="Save the connection without testing the token on the Moodle site, for "
    "when the site cannot be reached yet; prints a warning.",
)
@json_option
def add_moodle(
    provider_slug: str,
    site_url: str,
    token_file: Path,
    name: str,
    skip_lms_check: bool,
    as_json: bool,
) -> None:
    """Connect a Moodle site, print its webhook URL and show the webhook secret once.

    The token is tested first, as `lms connect moodle` does, and nothing is saved
    when Moodle rejects it.
    """
    from lti_tool.cli_lms import connection_test_fixes

    token = _read_token(token_file, as_json)
    bridge = _bridge(as_json)
    site_url = _checked_site_url(bridge, site_url.strip(), as_json)

    with bridge.session() as session:
        provider = _provider_or_fail(session, provider_slug, as_json)
        try:
            connected = connect_moodle(
                session,
                bridge,
                operating_system_actor(),
                provider,
                url=site_url,
                token=token,
                name=name,
                token_option="--token-file",  # noqa: S106 - an option name
                test_token=not skip_lms_check,
            )
        except ActionError as error:
            session.rollback()
            report_error(error, as_json)
        session.commit()
        public_id = connected.connection.public_id

    webhook_url = connected.webhook_url
    webhook_secret = connected.webhook_secret
    warnings = []
    if skip_lms_check:
        warnings.append(
            "the token was not tested, so the bridge may not be able to read this "
            f"site; run `hpass-bridge connection test {public_id}` once it is reachable"
        )
    result = {
        "status": "created",
        "connection_id": public_id,
        "provider": provider_slug,
        "site_url": site_url,
        "webhook_url": webhook_url,
        "xapi_statements_url": f"{webhook_url}/xapi/statements",
        "webhook_secret": webhook_secret,
        "test": connected.test or None,
        "warnings": warnings,
    }
    lines = [
        f"Moodle connection {public_id} created for provider {provider_slug}.",
        f"Webhook URL: {webhook_url}",
        f"Webhook secret (shown once, paste it into the webhook plugin's token "
        f"field now): {webhook_secret}",
    ]
    lines += connection_test_fixes(connected.test)
    if skip_lms_check:
        lines.append(f"Next: hpass-bridge connection test {public_id}")
    emit(result, as_json, "\n".join(lines))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@connection.command("set-token")
@click.argument("connection_id")
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File that contains the new token: a Moodle web service token, or a "
    "Canvas access token.",
)
@click.option(
    "--course",
    "course_id",
    help="Canvas only: course id to test the token with (default: the first course "
    "that has a badge).",
)
@json_option
def set_token(
    connection_id: str, token_file: Path, course_id: str | None, as_json: bool
) -> None:
    """Save a new API token, test it, and resume polling if the LMS accepts it.

    For Canvas the access token also replaces developer-key credentials, and the
    test checks every scope the bridge needs.
    """
    token = _read_token(token_file, as_json, ANY_TOKEN_SOURCE)
    bridge = _bridge(as_json)
    with bridge.session() as session:
        lms_connection = _connection_or_fail(
            session, connection_id, as_json, kinds=(LmsKind.MOODLE, LmsKind.CANVAS)
        )
        if course_id is not None and lms_connection.kind != LmsKind.CANVAS.value:
            fail(
                "--course applies to Canvas connections only; run the command "
                "again without it",
                as_json,
                code="invalid_course",
                exit_code=EXIT_INVALID_INPUT,
            )
        try:
            result = replace_api_token(
                session,
                bridge,
                operating_system_actor(),
                lms_connection,
                token,
                course_id=course_id,
            )
        except ActionError as error:
            session.rollback()
            report_error(error, as_json)
        session.commit()
    if isinstance(result, CanvasTestResult):
        _report_canvas_test(connection_id, result, as_json)
    else:
        _report_test(result, as_json)


@connection.command("disconnect")
@click.argument("connection_id")
@provider_option()
@click.option(
    "--yes",
    "confirmed",
    is_flag=True,
    help="Disconnect without asking for confirmation.",
)
@json_option
def disconnect(connection_id: str, provider_slug: str, confirmed: bool, as_json: bool):
    """Disconnect the provider's LMS connection CONNECTION_ID.

    Its API token and webhook secret are wiped, polls stop, and its webhook events
    are rejected. Facts, badges and deliveries stay, and its badges can no longer
    be earned. The prompt counts them first. The site can then be connected again
    as a new connection, which does not take over the badges.
    """
    with operator_session(as_json) as op:
        provider = provider_by_slug(op.session, provider_slug)
        found = find_connection(op.session, connection_id, provider.id)
        check_connected(found)
        warning = "\n".join(disconnect_warning(connection_usage(op.session, found)))
        question = (
            f"{warning}\n"
            f"Disconnect {found.kind} connection {found.public_id} ({found.name}, "
            f"{found.base_url}) of provider {provider_slug}? Its token and webhook "
            "secret are deleted and cannot be restored"
        )
        if not confirmed and not _confirm(question):
            raise ActionError(
                f"connection {connection_id} was not disconnected because the "
                "confirmation was not given; answer y, or pass --yes",
                code="not_confirmed",
            )
        usage = disconnect_connection(op.session, op.actor, found)
        op.session.commit()
        result = {
            "status": "disconnected",
            "provider": provider_slug,
            "connection": connection_dict(op.bridge, found),
            "usage": usage.as_dict(),
        }
    message = (
        f"{found.kind} connection {connection_id} of {provider_slug} disconnected. "
        f"Remove its webhook in the LMS at {found.base_url}; the bridge now "
        "rejects its events."
    )
    if usage.achievements or usage.registrations:
        message += (
            f" Its {usage_summary(usage)} stay on it, and its badges can no longer "
            "be earned."
        )
    emit(result, as_json, message)


@connection.command("new-webhook-secret")
@click.argument("connection_id")
@provider_option()
@click.option(
    "--yes",
    "confirmed",
    is_flag=True,
    help="Issue the new secret without asking for confirmation.",
)
@json_option
def new_webhook_secret(
    connection_id: str, provider_slug: str, confirmed: bool, as_json: bool
):
    """Issue a new webhook secret for the provider's LMS connection CONNECTION_ID.

    Use it when the secret is lost or may have leaked. The new secret is shown
    once and only its digest is stored. The old secret stops working at once, so
    the LMS's events get HTTP 401 until the new secret is pasted into the LMS. A
    running web server may accept the old secret for up to 5 more seconds, the
    lifetime of its connection cache.
    """
    with operator_session(as_json) as op:
        provider = provider_by_slug(op.session, provider_slug)
        found = find_connection(op.session, connection_id, provider.id)
        check_connected(found)
        question = (
            f"Issue a new webhook secret for {found.kind} connection "
            f"{found.public_id} ({found.name}, {found.base_url}) of provider "
            f"{provider_slug}? The old secret stops working at once, and the LMS's "
            "events are rejected until you paste the new secret into the LMS"
        )
        if not confirmed and not _confirm(question):
            raise ActionError(
                f"no new webhook secret was issued for connection {connection_id} "
                "because the confirmation was not given; answer y, or pass --yes",
                code="not_confirmed",
            )
        issued = issue_webhook_secret(op.session, op.bridge, op.actor, found)
        op.session.commit()
        result = {
            "status": "issued",
            "provider": provider_slug,
            "connection": connection_dict(op.bridge, found),
            "webhook_url": issued.webhook_url,
            "webhook_secret": issued.webhook_secret,
        }
    where = (
        "the webhook plugin's token field"
        if found.kind == LmsKind.MOODLE.value
        else "the Live Events subscription URL"
    )
    emit(
        result,
        as_json,
        f"New webhook secret issued for {found.kind} connection {connection_id} of "
        f"{provider_slug}. The old secret no longer works: the LMS's events get "
        "HTTP 401 until the new secret is in the LMS.\n"
        f"Webhook URL: {issued.webhook_url}\n"
        f"Webhook secret (shown once, paste it into {where} now): "
        f"{issued.webhook_secret}",
    )


@connection.command("test")
@click.argument("connection_id")
@json_option
def test(connection_id: str, as_json: bool) -> None:
    """Call core_webservice_get_site_info and name each missing web service function."""
    bridge = _bridge(as_json)
    with bridge.session() as session:
        lms_connection = _connection_or_fail(session, connection_id, as_json)
        result = run_connection_test(bridge, session, lms_connection)
        session.commit()
    _report_test(result, as_json)


def _confirm(question: str) -> bool:
    """Ask on stderr, so stdout stays one JSON document. Empty input means no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        return False


def _report_test(result: ConnectionTestResult, as_json: bool) -> None:
    lines = [f"Moodle at {result.site_url}:"]
    if result.error:
        lines.append(f"  connection failed: {result.error}")
    else:
        lines.append(f"  reached {result.site_name!r}, Moodle {result.release}")
    for missing in result.missing_functions:
        lines.append(f"  missing function {missing.fix}")
    lines.extend(f"  {advice}" for advice in result.advice)
    if result.ok:
        lines.append("  every required web service function is enabled")

    emit(result.as_dict(), as_json, "\n".join(lines))
    if not result.ok:
        sys.exit(EXIT_FAILURE)


def _report_canvas_test(
    connection_id: str, result: CanvasTestResult, as_json: bool
) -> None:
    status = "token saved, test passed" if result.ok else "token saved, test FAILED"
    emit(result.as_dict(), as_json, f"{connection_id}: {status}\n  {result.message}")
    if not result.ok:
        sys.exit(EXIT_FAILURE)


def _bridge(as_json: bool) -> Bridge:
    return Bridge.from_settings(_instance_or_fail(as_json))


MOODLE_TOKEN_SOURCE = (
    "Moodle web service token",
    "copy it from Site administration > Server > Web services > Manage tokens",
)
ANY_TOKEN_SOURCE = (
    "API token",
    "copy the Moodle web service token (Site administration > Server > Web "
    "services > Manage tokens) or the Canvas access token again",
)


def _read_token(
    path: Path, as_json: bool, source: tuple[str, str] = MOODLE_TOKEN_SOURCE
) -> str:
    """Read the token file; `source` names the token and where to copy it from."""
    token_name, copy_hint = source
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        fail(
            f"cannot read the token file {str(path)!r}: {error.strerror}; write the "
            f"{token_name} into a file readable by this user",
            as_json,
            code="invalid_token_file",
        )
    if not token or any(character.isspace() for character in token):
        fail(
            f"the token file {str(path)!r} must contain one {token_name} without "
            f"spaces; {copy_hint}",
            as_json,
            code="invalid_token_file",
        )
    return token


def _checked_site_url(bridge: Bridge, site_url: str, as_json: bool) -> str:
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(
            f"--url must be the Moodle site's root URL such as "
            f"https://moodle.example.org, got {site_url!r}",
            as_json,
            code="invalid_url",
        )
    if parts.query or parts.fragment:
        fail(
            f"--url must not contain a query or fragment, got {site_url!r}",
            as_json,
            code="invalid_url",
        )
    loopback = is_loopback_host(parts.hostname)
    if not bridge.settings.loopback_dev and (parts.scheme != "https" or loopback):
        fail(
            f"--url must be an https:// address of a Moodle site reachable from the "
            f"bridge, got {site_url!r}",
            as_json,
            code="invalid_url",
        )
    try:
        return check_lms_url(bridge, site_url)
    except InvalidInput as error:
        fail(error.message, as_json, code=error.code)


def _provider_or_fail(session: Session, slug: str, as_json: bool) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        report_error(
            NotFound(
                f"no provider with slug {slug!r} exists; check the slug on the "
                "provider's admin page or run `hpass-bridge provider list`",
                code="provider_not_found",
            ),
            as_json,
        )
    return provider


def _connection_or_fail(
    session: Session,
    connection_id: str,
    as_json: bool,
    kinds: tuple[LmsKind, ...] = (LmsKind.MOODLE,),
) -> LmsConnection:
    lms_connection = session.scalar(
        select(LmsConnection).where(LmsConnection.public_id == connection_id)
    )
    if lms_connection is None or lms_connection.kind not in {k.value for k in kinds}:
        if kinds == (LmsKind.MOODLE,):
            message = (
                f"no Moodle connection {connection_id!r} exists; use the connection "
                "id that `hpass-bridge connection add-moodle` printed"
            )
        else:
            message = (
                f"no LMS connection {connection_id!r} exists; use an id that "
                "`hpass-bridge lms list` prints"
            )
        report_error(NotFound(message, code="connection_not_found"), as_json)
    try:
        check_connected(lms_connection)
    except ActionError as error:
        report_error(error, as_json)
    return lms_connection
