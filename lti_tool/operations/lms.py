"""LMS connection actions: connect Moodle or Canvas, list, test and disconnect.

Connecting tests the connection first and stores it only when the LMS responded and
accepted the credentials, so an unreachable LMS leaves nothing behind. Missing
Moodle functions or Canvas scopes are reported but do not stop the connection,
because the admin fixes them in the LMS and runs the test again.

Disconnecting keeps the row, because facts, learners, badges and deliveries refer
to it, and wipes its secrets. See `disconnect_connection`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import distinct, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.models import Achievement, Provider
from badge_engine.outbound import OutboundBlocked, OutboundConnectionFailed
from connectors.canvas.connection import ConnectionTestResult as CanvasTestResult
from connectors.canvas.connection import (
    connect_canvas,
    replace_access_token,
    test_canvas_connection,
)
from connectors.contacts import last_contact_outcome, record_failure, record_success
from connectors.models import (
    ConnectionState,
    ContactSource,
    LmsConnection,
    LmsContact,
    LmsKind,
    normalized_site_url,
)
from connectors.moodle.client import MoodleClient
from connectors.moodle.connection import ConnectionTestResult, test_connection
from lti_tool.bridge import Bridge
from lti_tool.config import is_loopback_host
from lti_tool.models import Registration
from lti_tool.operations import (
    ActionError,
    InvalidInput,
    LmsUnreachable,
    NotFound,
    audit,
    iso,
)
from lti_tool.operations.next_steps import CLI_STEPS, NextSteps
from lti_tool.urls_for import moodle_webhook_url
from lti_tool.webhook_connections import note_changed

NAME_MAX = 200
TOKEN_MAX = 500
# A connection test is a request an admin waits for, so it gets short (connect,
# read) timeouts in seconds and one retry.
MOODLE_TEST_TIMEOUT = (3.05, 10.0)
CANVAS_TEST_TIMEOUT = (3.05, 10.0)
# Maximum wait in seconds before the one retry of a throttled Canvas request.
CANVAS_TEST_MAX_BACKOFF = 5.0


@dataclass
class Connected:
    """A stored connection, its test outcome and the webhook secret, shown once."""

    connection: LmsConnection
    test: dict[str, Any]
    webhook_url: str
    webhook_secret: str


class InvalidLmsUrl(InvalidInput):
    """An LMS site address that `check_lms_url` rejects.

    `reason` is one of the LMS_URL_* constants, so a page can show its own
    translated text. `blocked` is the outbound guard's error for LMS_URL_BLOCKED.
    """

    def __init__(
        self, message: str, *, reason: str, blocked: OutboundBlocked | None = None
    ) -> None:
        super().__init__(message, code="invalid_url")
        self.reason = reason
        self.blocked = blocked


LMS_URL_NOT_A_URL = "not_a_url"
LMS_URL_QUERY = "query_or_fragment"
LMS_URL_NOT_PUBLIC_HTTPS = "not_public_https"
LMS_URL_BLOCKED = "blocked"


def check_lms_url(bridge: Bridge, url: str, option: str = "--url") -> str:
    """Return the LMS site address to store, or raise InvalidLmsUrl."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        # An unclosed "[" of an IPv6 host, for one.
        parts, hostname = None, None
    if parts is None or parts.scheme not in ("http", "https") or not hostname:
        raise InvalidLmsUrl(
            f"{option} must be the LMS site's root http(s) URL such as "
            f"https://moodle.example.org, got {url!r}",
            reason=LMS_URL_NOT_A_URL,
        )
    if parts.query or parts.fragment:
        raise InvalidLmsUrl(
            f"{option} must not contain a query or fragment, got {url!r}",
            reason=LMS_URL_QUERY,
        )
    loopback = is_loopback_host(hostname)
    if not bridge.settings.loopback_dev and (parts.scheme != "https" or loopback):
        raise InvalidLmsUrl(
            f"{option} must be an https:// address reachable from the bridge, "
            f"got {url!r}",
            reason=LMS_URL_NOT_PUBLIC_HTTPS,
        )
    # The bridge sends the LMS token to this URL and reports parts of the response,
    # so an address inside the bridge's own network would be a way to read it. The
    # guard checks every request again when it connects, and this check reports a
    # blocked address to the admin at once.
    try:
        bridge.outbound_policy.check_url_now(url)
    except OutboundBlocked as error:
        raise InvalidLmsUrl(
            f"{option} {url!r}: {error.message}; enter the LMS site's public "
            "https:// address",
            reason=LMS_URL_BLOCKED,
            blocked=error,
        ) from None
    except OutboundConnectionFailed:
        # A name that does not resolve yet is stored; each request then fails with
        # the guard's error naming the host.
        pass

    # The LMS clients accept only a lower-case scheme, and urlsplit lower-cases
    # parts.scheme, so an address typed as HTTPS://... is stored as https://...
    return parts.scheme + url[len(parts.scheme) :].rstrip("/")


def find_same_site(
    session: Session, provider_id: int, kind: str, url: str
) -> LmsConnection | None:
    """Return the provider's connection of this LMS kind to the same site, if any."""
    return session.scalar(
        select(LmsConnection)
        .where(
            LmsConnection.provider_id == provider_id,
            LmsConnection.kind == kind,
            LmsConnection.site_key == normalized_site_url(url),
        )
        .order_by(LmsConnection.id)
        .limit(1)
    )


def site_connected_error(provider: Provider, existing: LmsConnection) -> ActionError:
    return ActionError(
        f"provider {provider.slug} already has {existing.kind} connection "
        f"{existing.public_id} ({existing.name}) to {existing.base_url}; use it, "
        "or disconnect it before connecting the site again with `hpass-bridge "
        f"connection disconnect {existing.public_id} --provider {provider.slug}` "
        "(nothing was saved)",
        code="connection_exists",
    )


def check_site_not_connected(
    session: Session, provider: Provider, kind: str, url: str
) -> None:
    """Raise `ActionError` when the provider already connected this LMS site.

    Another provider may connect the same site: each has its own token and courses.
    """
    existing = find_same_site(session, provider.id, kind, url)
    if existing is not None:
        raise site_connected_error(provider, existing)


@contextmanager
def site_not_connected_on_insert(
    session: Session, provider: Provider, kind: str, url: str
) -> Iterator[None]:
    """Turn a violation of the one-connection-per-site index, raised by the flush of
    a new connection inside this block, into the `ActionError` of
    `check_site_not_connected`.

    The check in code runs first, but two concurrent requests can both pass it, and
    the unique index then rejects the second insert. The session's transaction is
    rolled back in that case, with any other change in it. A savepoint would keep
    those, but on SQLite the driver starts no transaction before a SAVEPOINT, so
    releasing it would commit the connection before its test.
    """
    try:
        yield
    except IntegrityError:
        session.rollback()
        existing = find_same_site(session, provider.id, kind, url)
        if existing is None:
            # Another constraint failed, so this is not a duplicate site.
            raise
        raise site_connected_error(provider, existing) from None


def check_secret_value(value: str, option: str) -> str:
    value = value.strip()
    if not value or len(value) > TOKEN_MAX or any(c.isspace() for c in value):
        raise InvalidInput(
            f"{option} must be one value without spaces, at most {TOKEN_MAX} "
            "characters; copy it again from the LMS",
            code="invalid_token",
            api_message=f'"token" must be one value without spaces, at most '
            f"{TOKEN_MAX} characters; copy it again from the LMS",
        )

    return value


# Canvas ids are 64-bit integers, so at most 20 digits.
CANVAS_ID_DIGITS_MAX = 20
_CANVAS_COURSE_PATH = re.compile(
    r"/courses/([0-9]{1,%d})(?:/|$)" % CANVAS_ID_DIGITS_MAX
)


def canvas_course_id(value: str) -> str | None:
    """Return the Canvas course id in `value`: digits, or a course address.

    A course address is an http(s) URL whose path contains /courses/<id>, such as
    https://canvas.example.org/courses/1234/modules. Anything else returns None.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        return value if len(value) <= CANVAS_ID_DIGITS_MAX else None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    found = _CANVAS_COURSE_PATH.search(parts.path)
    return found.group(1) if found else None


def check_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise InvalidInput(
            f"--name must be 1 to {NAME_MAX} characters, got {len(value)}",
            code="invalid_name",
            api_message=f'"name" must be 1 to {NAME_MAX} characters, got {len(value)}',
        )

    return value


def canvas_webhook_url(base: str, public_id: str, secret: str) -> str:
    """Return the Live Events URL; JSON events carry the secret in `?token=`."""
    return f"{base}/webhooks/canvas/{public_id}?token={secret}"


# The words the admin page and `lms list` show for each connection status.
CONNECTION_STATUS_LABELS = {
    "disconnected": "Disconnected",
    "not_working": "Not working",
    "not_responding": "Not responding",
    "connected": "Connected",
    "no_contact": "Connected, no contact recorded yet",
}


def connection_status(connection: LmsConnection) -> str:
    """Return the connection's status key, a key of CONNECTION_STATUS_LABELS.

    `state` records whether the bridge still uses the connection. The status adds
    how the latest contact with the LMS ended, which a person checks first.
    """
    if connection.disconnected:
        return "disconnected"
    if connection.state == ConnectionState.BROKEN.value:
        return "not_working"
    contact = connection.contact
    if contact is not None and contact.failing:
        return "not_responding"
    if contact is not None and contact.last_success_at is not None:
        return "connected"

    return "no_contact"


def connection_dict(bridge: Bridge, connection: LmsConnection) -> dict[str, Any]:
    webhook = connection_webhook_url(bridge, connection)
    return {
        "id": connection.public_id,
        "kind": connection.kind,
        "name": connection.name,
        "url": connection.base_url,
        "state": connection.state,
        "status": connection_status(connection),
        "state_detail": connection.state_detail,
        "webhook_url": webhook,
        "created_at": iso(connection.created_at),
        "disconnected_at": iso(connection.disconnected_at),
        "disconnected_by": connection.disconnected_by,
        **contact_fields(connection.contact),
    }


def contact_fields(contact: LmsContact | None) -> dict[str, Any]:
    """Return the outcome and times of the connection's latest recorded contacts."""
    return {
        "last_contact": last_contact_outcome(contact),
        "last_success_at": iso(contact.last_success_at) if contact else None,
        "last_success_source": contact.last_success_source if contact else None,
        "last_failure_at": iso(contact.last_failure_at) if contact else None,
        "last_failure_source": contact.last_failure_source if contact else None,
        "last_failure_detail": contact.last_failure_detail if contact else None,
        "last_event_at": iso(contact.last_event_at) if contact else None,
    }


def connect_moodle(
    session: Session,
    bridge: Bridge,
    actor: str,
    provider: Provider,
    *,
    url: str,
    token: str,
    name: str = "Moodle",
    token_option: str = "--token",  # noqa: S107 - an option name, not a token
    test_token: bool = True,
    url_field: str = "--url",
) -> Connected:
    """Test the Moodle site with the token and store the connection if it passes.

    `token_option` is the command-line option the token came from, which a failed
    test names, and `url_field` is the option or field an invalid URL is named by. With `test_token` False the connection is stored untested, and
    `Connected.test` is empty.
    """
    from lti_tool.views.webhooks import secret_digest

    url = check_lms_url(bridge, url.strip(), option=url_field)
    token = check_secret_value(token, token_option)
    name = check_name(name)
    check_site_not_connected(session, provider, LmsKind.MOODLE.value, url)
    webhook_secret = secrets.token_urlsafe(32)
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name=name,
        base_url=url,
        api_token_encrypted=bridge.vault.encrypt(token),
        webhook_secret_sha256=secret_digest(webhook_secret),
        state=ConnectionState.OK.value,
    )
    with site_not_connected_on_insert(session, provider, LmsKind.MOODLE.value, url):
        session.add(connection)
        session.flush()

    test: dict[str, Any] = {}
    if test_token:
        result = run_connection_test(bridge, session, connection)
        if result.error is not None:
            raise moodle_connect_failed(url, result, token_option)
        test = result.as_dict()
    audit(
        session,
        actor,
        "lms_connection.created",
        provider_id=provider.id,
        target=f"lms_connection:{connection.public_id}",
        detail={"kind": "moodle", "base_url": url, "token_tested": test_token},
    )

    return Connected(
        connection,
        test,
        moodle_webhook_url(bridge.settings.public_base_url, connection.public_id),
        webhook_secret,
    )


def moodle_connect_failed(
    url: str, result: ConnectionTestResult, token_option: str
) -> LmsUnreachable:
    """Return the error for a new Moodle connection whose test failed.

    A rejected token gets its own message: the test's own text addresses the admin
    of a stored connection, and nothing is stored yet.
    """
    if result.token_invalid:
        problem = (
            f"Moodle at {url} rejected the web service token (errorcode "
            "invalidtoken): the token does not exist, or it was deleted or expired"
        )
        fix = (
            "create a token for the bridge's Moodle user under Site administration "
            "> Server > Web services > Manage tokens, as step 1 of "
            "docs/moodle-setup.md describes"
        )
        return LmsUnreachable(
            f"{problem}; {fix}, then give it with {token_option} and run the "
            "command again (nothing was saved)",
            api_message=f'{problem}; {fix}, then send it as "token" again '
            "(nothing was saved)",
        )
    return LmsUnreachable(
        f"Moodle at {url} failed the connection test: {result.error}; check --url "
        f"and {token_option}, then run the command again (nothing was saved)",
        api_message=f"Moodle at {url} failed the connection test: {result.error}; "
        'check "url" and "token", then send the request again (nothing was saved)',
    )


class CanvasTestFailed(LmsUnreachable):
    """A new Canvas connection failed its test, so nothing was stored.

    `result` is the test's outcome, which the admin page turns into a message
    beside the field to correct.
    """

    def __init__(
        self, message: str, *, result: CanvasTestResult, api_message: str
    ) -> None:
        super().__init__(message, api_message=api_message)
        self.result = result


def connect_canvas_site(
    session: Session,
    bridge: Bridge,
    actor: str,
    provider: Provider,
    *,
    url: str,
    token: str,
    course_id: str,
    name: str = "Canvas",
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    token_option: str = "--token",  # noqa: S107 - an option name, not a token
    url_field: str = "--url",
) -> Connected:
    from lti_tool.views.webhooks import secret_digest

    url = check_lms_url(bridge, url.strip(), option=url_field)
    token = check_secret_value(token, token_option)
    name = check_name(name)
    oauth = (client_id, client_secret, refresh_token)
    if any(oauth) and not all(oauth):
        raise InvalidInput(
            "--client-id, --client-secret and --refresh-token go together; give all "
            "three for a developer key, or none for an admin access token",
            code="incomplete_oauth",
            api_message='"client_id", "client_secret" and "refresh_token" go '
            "together; send all three for a developer key, or none for an admin "
            "access token",
        )
    parsed_course_id = canvas_course_id(course_id)
    if parsed_course_id is None:
        raise InvalidInput(
            f"--course must be a Canvas course id (digits) or the course's address "
            f"(https://canvas.example.org/courses/1234), got {course_id!r}",
            code="invalid_course",
            api_message=f'"course_id" must be a Canvas course id (digits), '
            f"got {course_id!r}",
        )
    course_id = parsed_course_id
    check_site_not_connected(session, provider, LmsKind.CANVAS.value, url)

    with site_not_connected_on_insert(session, provider, LmsKind.CANVAS.value, url):
        connection = connect_canvas(
            session,
            bridge.vault,
            provider_id=provider.id,
            name=name,
            base_url=url,
            access_token=token,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )
    webhook_secret = secrets.token_urlsafe(32)
    connection.webhook_secret_sha256 = secret_digest(webhook_secret)

    result = test_canvas_connection(
        session,
        bridge.vault,
        connection,
        course_id=course_id.strip(),
        policy=bridge.outbound_policy,
        timeout=CANVAS_TEST_TIMEOUT,
        max_retries=1,
        max_backoff=CANVAS_TEST_MAX_BACKOFF,
    )
    if not result.ok and (result.token_invalid or not result.missing):
        raise CanvasTestFailed(
            f"Canvas at {url} failed the connection test: {result.message} "
            f"Check --url, {token_option} and --course, then run the command again "
            "(nothing was saved).",
            result=result,
            api_message=f"Canvas at {url} failed the connection test: "
            f'{result.message} Check "url", "token" and "course_id", then send the '
            "request again (nothing was saved).",
        )
    audit(
        session,
        actor,
        "lms_connection.created",
        provider_id=provider.id,
        target=f"lms_connection:{connection.public_id}",
        detail={"kind": "canvas", "base_url": url},
    )

    return Connected(
        connection,
        result.as_dict(),
        canvas_webhook_url(
            bridge.settings.public_base_url, connection.public_id, webhook_secret
        ),
        webhook_secret,
    )


def run_connection_test(
    bridge: Bridge, session: Session, lms_connection: LmsConnection
) -> ConnectionTestResult:
    """Test a Moodle connection and record the outcome on it.

    A rejected token marks the connection broken, which stops its polls. A token
    that Moodle accepts marks a broken connection OK again. The caller commits.
    """
    check_connected(lms_connection)
    token = bridge.vault.decrypt(
        lms_connection.api_token_encrypted,
        what=f"API token of LMS connection {lms_connection.id}",
    ).decode()
    with MoodleClient(
        lms_connection.base_url,
        token,
        timeout=MOODLE_TEST_TIMEOUT,
        max_retries=1,
        policy=bridge.outbound_policy,
    ) as client:
        result = test_connection(client)

    if result.token_invalid:
        lms_connection.state = ConnectionState.BROKEN.value
        lms_connection.state_detail = result.error
    elif result.error is None:
        lms_connection.state = ConnectionState.OK.value
        lms_connection.state_detail = None
    if lms_connection.id is None:
        # Tested before it is inserted, so the caller records the outcome.
        return result
    if result.error is None:
        record_success(session, lms_connection, ContactSource.TEST)
    else:
        record_failure(session, lms_connection, ContactSource.TEST, result.error)
    return result


def list_connections(
    session: Session, provider: Provider | None
) -> list[LmsConnection]:
    query = select(LmsConnection).order_by(LmsConnection.id)
    if provider is not None:
        query = query.where(LmsConnection.provider_id == provider.id)

    return list(session.scalars(query))


def find_connection(
    session: Session,
    public_id: str,
    provider_id: int | None = None,
    *,
    steps: NextSteps = CLI_STEPS,
) -> LmsConnection:
    """Return a connection by id; with `provider_id`, only that provider's.

    Another provider's connection raises the same NotFound as an unknown id.
    """
    query = select(LmsConnection).where(LmsConnection.public_id == public_id)
    if provider_id is not None:
        query = query.where(LmsConnection.provider_id == provider_id)
    connection = session.scalar(query)
    if connection is None:
        raise NotFound(
            f"no LMS connection {public_id!r}; see {steps.list_connections}",
            code="connection_not_found",
        )

    return connection


def test_lms_connection(
    session: Session,
    bridge: Bridge,
    actor: str,
    connection: LmsConnection,
    course_id: str | None = None,
) -> dict[str, Any]:
    """Test a stored connection, record the outcome on it and return the report."""
    check_connected(connection)
    if connection.kind == LmsKind.MOODLE.value:
        result = run_connection_test(bridge, session, connection).as_dict()
    else:
        result = _test_stored_canvas(session, bridge, connection, course_id).as_dict()
    audit(
        session,
        actor,
        "lms_connection.tested",
        provider_id=connection.provider_id,
        target=f"lms_connection:{connection.public_id}",
        detail={"ok": result["ok"]},
    )

    return result


test_lms_connection.__test__ = False


def _test_stored_canvas(
    session: Session, bridge: Bridge, connection: LmsConnection, course_id: str | None
) -> CanvasTestResult:
    if course_id is not None:
        parsed_course_id = canvas_course_id(course_id)
        if parsed_course_id is None:
            raise InvalidInput(
                f"--course must be a Canvas course id (digits) or the course's "
                f"address (https://canvas.example.org/courses/1234), got {course_id!r}",
                code="invalid_course",
                api_message=f'"course_id" must be a Canvas course id (digits), '
                f"got {course_id!r}",
            )
        course_id = parsed_course_id
    return test_canvas_connection(
        session,
        bridge.vault,
        connection,
        course_id=course_id,
        policy=bridge.outbound_policy,
        timeout=CANVAS_TEST_TIMEOUT,
        max_retries=1,
        max_backoff=CANVAS_TEST_MAX_BACKOFF,
    )


def replace_api_token(
    session: Session,
    bridge: Bridge,
    actor: str,
    connection: LmsConnection,
    token: str,
    *,
    course_id: str | None = None,
    token_option: str = "--token-file",  # noqa: S107 - an option name, not a token
) -> ConnectionTestResult | CanvasTestResult:
    """Store a new REST API token on a connection, encrypted, then test and audit it.

    Moodle gets a web service token and Canvas an access token, which replaces
    developer-key credentials too. The test records its outcome on the connection
    as `test_lms_connection` does, so a passing test marks a broken connection OK
    again. `course_id` is the Canvas course to test with. The caller commits.
    """
    check_connected(connection)
    token = check_secret_value(token, token_option)
    if connection.kind == LmsKind.MOODLE.value:
        connection.api_token_encrypted = bridge.vault.encrypt(token)
        result = run_connection_test(bridge, session, connection)
    else:
        replace_access_token(session, bridge.vault, connection, token)
        result = _test_stored_canvas(session, bridge, connection, course_id)
    audit(
        session,
        actor,
        "lms_connection.token_replaced",
        provider_id=connection.provider_id,
        target=f"lms_connection:{connection.public_id}",
        detail={"kind": connection.kind, "ok": result.ok},
    )

    return result


def disconnected_error(connection: LmsConnection) -> ActionError:
    return ActionError(
        f"LMS connection {connection.public_id} ({connection.name}, "
        f"{connection.base_url}) was disconnected at "
        f"{iso(connection.disconnected_at)} by {connection.disconnected_by}, so its "
        "badges can no longer be earned. Connecting the site again creates a new, "
        "empty connection that does not take over this connection's badges or LTI "
        "registrations: register the LTI platform with the new connection and add "
        "the badges again on it",
        code="connection_disconnected",
    )


def disconnected_badge_warning(connection: LmsConnection) -> str:
    """Return the warning for a change saved on a badge of a disconnected connection."""
    return (
        f"LMS connection {connection.public_id} ({connection.name}, "
        f"{connection.base_url}) was disconnected at "
        f"{iso(connection.disconnected_at)}, so learners can no longer earn this "
        "badge. The change was saved. A new connection to the same site does not "
        "take over this badge, so add the badge again on the new connection to "
        "award it"
    )


@dataclass(frozen=True)
class ConnectionUsage:
    """Counts of the provider's badges on an LMS connection, the courses that award
    them and the LTI registrations linked to it. All of them stay on the connection
    after a disconnect."""

    achievements: int
    courses: int
    registrations: int

    def as_dict(self) -> dict[str, int]:
        return {
            "achievements": self.achievements,
            "courses": self.courses,
            "lti_registrations": self.registrations,
        }


def connection_usage(session: Session, connection: LmsConnection) -> ConnectionUsage:
    """Count the connection's badges, their courses and its LTI registrations.

    Every count is limited to the connection's provider.
    """
    achievements, courses = session.execute(
        select(
            func.count(Achievement.id),
            func.count(distinct(Achievement.lms_course_id)),
        ).where(
            Achievement.provider_id == connection.provider_id,
            Achievement.lms_connection_id == connection.id,
        )
    ).one()
    registrations = session.scalar(
        select(func.count(Registration.id)).where(
            Registration.provider_id == connection.provider_id,
            Registration.lms_connection_id == connection.id,
        )
    )
    return ConnectionUsage(achievements, courses, registrations)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def usage_summary(usage: ConnectionUsage) -> str:
    """Return the counts in English, such as "3 badges in 2 courses and 1 LTI
    registration"."""
    if usage.achievements:
        badges = (
            f"{_counted(usage.achievements, 'badge')} in "
            f"{_counted(usage.courses, 'course')}"
        )
    else:
        badges = "no badge"
    if usage.registrations:
        registrations = _counted(usage.registrations, "LTI registration")
    else:
        registrations = "no LTI registration"
    return f"{badges} and {registrations}"


def disconnect_warning(usage: ConnectionUsage) -> list[str]:
    """Describe in English what a disconnect means for the connection's badges, for
    the command line's confirmation prompt. The admin page shows the same facts in
    the page language."""
    lines = [f"This connection has {usage_summary(usage)}."]
    if usage.achievements:
        lines.append(
            "After the disconnect these badges can no longer be earned, because the "
            "bridge stops reading completions from the site and rejects its events."
        )
    lines.append("Credentials already issued stay valid.")
    if usage.achievements:
        lines.append(
            "A new connection to the same site does not take over these badges or "
            "LTI registrations, because moving them could award a badge twice. To "
            "award the badges again, connect the site again, register the LTI "
            "platform with the new connection on /admin/connect, and add the badges "
            "again in each course. Tell the courses' instructors: their course "
            "pages will say that the badges cannot be earned at the moment."
        )
    elif usage.registrations:
        lines.append(
            "A new connection to the same site does not take over these LTI "
            "registrations. To add badges from their courses again, connect the "
            "site again and register the LTI platform with the new connection on "
            "/admin/connect."
        )
    return lines


@dataclass
class IssuedSecret:
    """A connection's new webhook secret, shown once, and the URL to use it with."""

    connection: LmsConnection
    webhook_url: str
    webhook_secret: str


def connection_webhook_url(
    bridge: Bridge, connection: LmsConnection, secret: str | None = None
) -> str:
    """Return the URL the LMS sends the connection's events to.

    A Canvas URL carries `secret` as `?token=` when it is given, because Canvas
    sends JSON Live Events with no other place for it.
    """
    base = bridge.settings.public_base_url
    if connection.kind == LmsKind.MOODLE.value:
        return moodle_webhook_url(base, connection.public_id)
    if secret is None:
        return f"{base}/webhooks/canvas/{connection.public_id}"
    return canvas_webhook_url(base, connection.public_id, secret)


def issue_webhook_secret(
    session: Session, bridge: Bridge, actor: str, connection: LmsConnection
) -> IssuedSecret:
    """Replace the connection's webhook secret with a new one. The caller commits.

    Only the new secret's SHA-256 digest is stored, so the secret is returned this
    once. After the commit the old secret no longer matches: this process's
    webhook cache is cleared, and other bridge processes read the new digest
    within `webhook_connections.CACHE_SECONDS`.
    """
    from lti_tool.views.webhooks import secret_digest

    check_connected(connection)
    webhook_secret = secrets.token_urlsafe(32)
    # A conditional UPDATE, so a disconnect that commits first is not undone by
    # giving the disconnected connection a secret again.
    changed = session.execute(
        update(LmsConnection)
        .where(
            LmsConnection.id == connection.id,
            LmsConnection.provider_id == connection.provider_id,
            LmsConnection.state != ConnectionState.DISCONNECTED.value,
        )
        .values(webhook_secret_sha256=secret_digest(webhook_secret))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(connection)
    if changed != 1:
        raise disconnected_error(connection)
    note_changed(session)
    audit(
        session,
        actor,
        "lms_connection.webhook_secret_issued",
        provider_id=connection.provider_id,
        target=f"lms_connection:{connection.public_id}",
        detail={"kind": connection.kind, "name": connection.name},
    )
    session.flush()

    return IssuedSecret(
        connection,
        connection_webhook_url(bridge, connection, webhook_secret),
        webhook_secret,
    )


def check_connected(connection: LmsConnection) -> None:
    """Raise `ActionError` when the connection was disconnected."""
    if connection.disconnected:
        raise disconnected_error(connection)


def disconnect_connection(
    session: Session, actor: str, connection: LmsConnection
) -> ConnectionUsage:
    """Disconnect an LMS connection and return what stays on it. The caller commits.

    The row stays, because facts, learners, badges and deliveries refer to it. The
    API token, the Canvas credentials and the webhook secret's digest are wiped, so
    no request can use them again. Polls and re-reads skip the connection, its
    webhook events get 410, and its active backfills stop after their current page.
    `site_key` is cleared, so the unique index lets the provider connect the same
    site again as a new connection.

    NOTE: LTI registrations linked to the connection stay linked to it, and no
    action moves them to a new connection.
    """
    from connectors.canvas.models import CanvasCredential
    from lti_tool.backfill import ACTIVE, BackfillJob, request_cancel

    check_connected(connection)
    previous_state = connection.state
    usage = connection_usage(session, connection)
    # A conditional UPDATE, so of two requests that both passed the check above
    # only one disconnects and records the audit event.
    changed = session.execute(
        update(LmsConnection)
        .where(
            LmsConnection.id == connection.id,
            LmsConnection.provider_id == connection.provider_id,
            LmsConnection.state != ConnectionState.DISCONNECTED.value,
        )
        .values(
            state=ConnectionState.DISCONNECTED.value,
            state_detail=None,
            disconnected_at=utcnow(),
            disconnected_by=actor,
            api_token_encrypted=None,
            webhook_secret_sha256=None,
            site_key=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(connection)
    if changed != 1:
        raise disconnected_error(connection)
    note_changed(session)
    credential = session.scalar(
        select(CanvasCredential).where(
            CanvasCredential.provider_id == connection.provider_id,
            CanvasCredential.lms_connection_id == connection.id,
        )
    )
    if credential is not None:
        session.delete(credential)

    backfills = session.scalars(
        select(BackfillJob.public_id).where(
            BackfillJob.provider_id == connection.provider_id,
            BackfillJob.lms_connection_id == connection.id,
            BackfillJob.status.in_(ACTIVE),
        )
    ).all()
    for public_id in backfills:
        request_cancel(
            session, provider_id=connection.provider_id, job_public_id=public_id
        )
    audit(
        session,
        actor,
        "lms_connection.disconnected",
        provider_id=connection.provider_id,
        target=f"lms_connection:{connection.public_id}",
        detail={
            "kind": connection.kind,
            "name": connection.name,
            "base_url": connection.base_url,
            "previous_state": previous_state,
            "backfills_cancelled": list(backfills),
            **usage.as_dict(),
        },
    )
    session.flush()

    return usage
