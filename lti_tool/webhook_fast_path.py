"""A WSGI path for valid completion events that skips Flask's request handling.

Building Flask's request and app contexts, running the before- and after-request
hooks and rendering through `jsonify` cost about as much CPU as storing the event
does. This middleware sits in front of the Flask app and takes only POSTs to
`/webhooks/moodle/<id>` and `/webhooks/canvas/<id>` that carry a JSON event. For
those it does what the Flask views do: it authenticates the event against its
connection, parses it, stores it by group commit and returns 202 (200 for a
duplicate) with the same JSON body and headers (`X-Request-ID`, nosniff, and HSTS
over HTTPS).

Every other request goes to the Flask app untouched, with the body it read handed
on. These are events that fail a check, events that are not completions (re-read
triggers and ignored events), signed Canvas events, and bodies over the size limit
or without a Content-Length. So every error response, and its log line, comes from the Flask
views and error handlers, and this path holds no second copy of them. Nothing is
written before every check has passed, so handing a request on never leaves
anything half-done.
"""

from __future__ import annotations

import hmac
import io
import itertools
import json
import logging
import os
import re
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs

import structlog

from connectors.canvas.errors import CanvasEventInvalid
from connectors.canvas.events import parse_live_event
from connectors.models import LmsKind
from connectors.moodle.errors import MoodleEventInvalid
from connectors.moodle.events import parse_webhook_event
from lti_tool.errors import BridgeRequestError
from lti_tool.fact_writer import FactNotStored
from lti_tool.intake import CONNECTIONS, WRITER, not_stored_error
from lti_tool.logs import get_logger
from lti_tool.views.headers import HSTS_VALUE
from lti_tool.views.webhooks import secret_digest

log = get_logger(__name__)
# The stdlib logger behind `log`. Its level check is cached, so when INFO is off an
# accepted event skips structlog's processing of a line that would be dropped.
_info_log = logging.getLogger(__name__)

_EVENT_PATH = re.compile(r"/webhooks/(moodle|canvas)/([^/]+)")
_INTERNAL_ERROR = (
    "The bridge failed to handle this request. Nothing was saved; try again, "
    "and if it keeps failing give the request id to your HPass contact."
)


class _HandOn(Exception):
    """The request is not a valid completion event; the Flask app handles it."""


class WebhookFastPath:
    """WSGI middleware that stores valid Moodle and Canvas JSON events directly."""

    def __init__(self, app, wsgi_app) -> None:
        self._wsgi_app = wsgi_app
        self._connections = app.extensions[CONNECTIONS]
        self._writer = app.extensions[WRITER]
        self._max_body = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST":
            return self._wsgi_app(environ, start_response)
        match = _EVENT_PATH.fullmatch(environ.get("PATH_INFO", ""))
        length = _content_length(environ)
        if match is None or length is None or length > self._max_body:
            return self._wsgi_app(environ, start_response)

        raw = environ["wsgi.input"].read(length)
        request_id = _request_id(environ)
        # A log line of this request must not carry the ids of the thread's last one.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if match.group(1) == LmsKind.MOODLE.value:
                status, body = self._moodle_event(match.group(2), raw)
            else:
                status, body = self._canvas_event(match.group(2), raw, environ)
        except _HandOn:
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._wsgi_app(environ, start_response)
        except BridgeRequestError as error:
            log.warning(
                "request_rejected",
                status=error.status,
                code=error.code,
                reason=error.message,
                path=environ.get("PATH_INFO"),
                **error.ids,
            )
            status = error.status
            body = {"error": error.code, "message": error.message}
            body["request_id"] = request_id
        except Exception:  # noqa: BLE001 - answered like Flask's handler of last resort
            log.exception("request_failed", path=environ.get("PATH_INFO"))
            status = 500
            body = {"error": "internal_error", "message": _INTERNAL_ERROR}
            body["request_id"] = request_id

        secure = environ.get("wsgi.url_scheme") == "https"
        return _respond(start_response, status, body, request_id, secure)

    def _moodle_event(self, public_id: str, raw: bytes):
        body = _json_object(raw)
        connection = self._authenticated(
            public_id, LmsKind.MOODLE.value, body.get("token")
        )
        try:
            fact = parse_webhook_event(
                body,
                provider_id=connection.provider_id,
                lms_connection_id=connection.id,
                copy_body=False,
            )
        except MoodleEventInvalid:
            raise _HandOn() from None
        if fact is None:
            raise _HandOn()

        stored = self._store(fact)
        if _info_log.isEnabledFor(logging.INFO):
            log.info(
                "moodle_event_accepted",
                fact_id=stored.fact_id,
                duplicate=not stored.created,
                lms_user_id=fact.lms_user_id,
                lms_course_id=fact.lms_course_id,
            )
        return _stored_response(stored)

    def _canvas_event(self, public_id: str, raw: bytes, environ):
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type == "application/jwt" or raw.lstrip()[:2] == b"ey":
            raise _HandOn()
        token = _query_token(environ.get("QUERY_STRING", ""))
        body = _json_object(raw)
        connection = self._authenticated(public_id, LmsKind.CANVAS.value, token)
        try:
            result = parse_live_event(
                body,
                provider_id=connection.provider_id,
                lms_connection_id=connection.id,
                home_shard=connection.home_shard,
            )
        except CanvasEventInvalid:
            raise _HandOn() from None
        if result.fact is None:
            raise _HandOn()

        stored = self._store(result.fact)
        if _info_log.isEnabledFor(logging.INFO):
            log.info(
                "canvas_event_accepted",
                event_name=result.event_name,
                fact_id=stored.fact_id,
                duplicate=not stored.created,
                lms_user_id=result.fact.lms_user_id,
                lms_course_id=result.fact.lms_course_id,
            )
        return _stored_response(stored)

    def _authenticated(self, public_id, kind, presented):
        """Return the connection whose webhook secret `presented` is, or hand on."""
        connection = self._connections.get(public_id, kind)
        if connection is None or not connection.webhook_secret_sha256:
            raise _HandOn()
        # Disconnecting clears the digest, so the check above already hands these
        # on. This one keeps the Flask view's 410 from depending on that.
        if connection.disconnected:
            raise _HandOn()
        if not isinstance(presented, str) or not presented:
            raise _HandOn()
        # The same constant-time digest comparison as the Flask views make.
        if not _digests_match(connection.webhook_secret_sha256, presented):
            raise _HandOn()

        structlog.contextvars.bind_contextvars(
            provider_id=connection.provider_id, connection_id=connection.id
        )
        return connection

    def _store(self, fact):
        try:
            return self._writer.write(fact)
        except FactNotStored:
            raise not_stored_error(fact) from None


def _digests_match(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected, secret_digest(presented))


def _content_length(environ) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _request_id(environ) -> str:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if incoming and incoming.isprintable():
        return incoming[:64]
    return _request_ids.next()


class _RequestIds:
    """Request ids of 32 hex digits: a random prefix per process and a counter.

    Unique like `uuid4().hex` for log correlation, without a call to os.urandom
    per request. The ids do not need to be unpredictable: they only label log
    lines and responses.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        # In CPython, next() on itertools.count runs under the GIL, so threads
        # never get the same number.
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_request_ids = _RequestIds()


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _HandOn() from None
    if not isinstance(body, dict):
        raise _HandOn()
    return body


def _query_token(query: str) -> str | None:
    if "token=" not in query:
        return None
    values = parse_qs(query).get("token")
    return values[0] if values else None


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


_STATUS_LINES = {status: _status_line(status) for status in (200, 202)}


def _stored_response(stored) -> tuple[int, bytes]:
    # The bytes json.dumps would write for {"status": ..., "fact_id": ...}, built
    # directly because this is the response to nearly every request of this path.
    if stored.created:
        return 202, b'{"status":"accepted","fact_id":%d}\n' % stored.fact_id
    return 200, b'{"status":"duplicate","fact_id":%d}\n' % stored.fact_id


def _respond(start_response, status, body: dict | bytes, request_id, secure):
    if isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        ("X-Request-ID", request_id),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if secure:
        headers.append(("Strict-Transport-Security", HSTS_VALUE))
    start_response(_STATUS_LINES.get(status) or _status_line(status), headers)
    return [payload]
