"""Webhook endpoints: LMS events are stored, with their follow-up work, before the 2xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import structlog
from flask import Blueprint, jsonify, request

from badge_engine.outbox import enqueue
from connectors.models import LmsKind
from connectors.moodle.errors import MoodleEventInvalid
from connectors.moodle.events import (
    RereadTrigger,
    parse_reread_trigger,
    parse_webhook_event,
    parse_xapi_hints,
)
from lti_tool.bridge import db_session
from lti_tool.errors import BadRequest, Gone, NotFound, Unauthorized
from lti_tool.intake import store_event_fact, webhook_connection
from lti_tool.logs import get_logger
from lti_tool.pipeline import REREAD_MOODLE_LEARNER
from lti_tool.tasks import dispatch
from lti_tool.webhook_connections import WebhookConnection

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = get_logger(__name__)


def _connection_or_404(public_id: str, kind: LmsKind) -> WebhookConnection:
    connection = webhook_connection(public_id, kind.value)
    if connection is None:
        raise NotFound(
            f"no {kind.value} connection {public_id!r} exists; copy the webhook URL "
            "again from the Webhook URLs list on the provider admin page "
            "(/admin/connect), or from `hpass-bridge lms list --json`",
            connection=public_id,
        )
    reject_if_disconnected(connection, "webhook in Moodle")
    return connection


def reject_if_disconnected(connection: WebhookConnection, subscription: str) -> None:
    """Raise 410 for the events of a disconnected connection.

    The check comes before the secret's, because a disconnected connection has no
    secret left and the sender needs to learn why its events are rejected.
    """
    if connection.disconnected:
        raise Gone(
            f"LMS connection {connection.public_id} was disconnected in the HPass "
            f"bridge, so its events are no longer accepted; remove this "
            f"{subscription}, or ask the provider admin to connect the site again "
            "and use the new connection's URL and secret",
            code="connection_disconnected",
            connection=connection.public_id,
            provider_id=connection.provider_id,
        )


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# The settings field in which each route's sender takes the webhook secret.
_MOODLE_WEBHOOK_FIELD = "the token field of the Moodle webhook settings"
_LOGSTORE_XAPI_FIELD = (
    "the LRS password field of Moodle's logstore_xapi settings (with any username), "
    "sent as HTTP Basic auth"
)


def _check_secret(
    connection: WebhookConnection,
    presented: object,
    field_name: str = _MOODLE_WEBHOOK_FIELD,
) -> None:
    # Compare digests in constant time so the response time reveals nothing.
    expected = connection.webhook_secret_sha256 or ""
    given = secret_digest(presented) if isinstance(presented, str) and presented else ""
    if not expected or not hmac.compare_digest(expected, given):
        raise Unauthorized(
            "the webhook token is missing or wrong; paste the connection's webhook "
            f"secret into {field_name}. If the secret is lost, issue a "
            "new one with New webhook secret on the provider admin page "
            "(/admin/connect) or `hpass-bridge connection new-webhook-secret "
            f"{connection.public_id} --provider SLUG`",
            connection=connection.public_id,
            provider_id=connection.provider_id,
        )


def _json_body() -> dict:
    body = request.get_json(silent=True, force=True)
    if body is None:
        _reject_overlong_number()
    if not isinstance(body, dict):
        raise BadRequest(
            "the request body is not a JSON object; send the Moodle event as JSON "
            "with Content-Type: application/json",
            code="invalid_json",
        )
    return body


def _reject_overlong_number() -> None:
    """Raise 400 naming the cause when the body contains an integer too long to parse.

    Python's json module raises ValueError for an integer of more digits than
    sys.get_int_max_str_digits() (4,300 by default), which get_json reports as no
    JSON at all.
    """
    try:
        json.loads(request.get_data(cache=True))
    except ValueError as error:
        if "integer string conversion" not in str(error):
            return
        raise BadRequest(
            "the request body contains a number too long to read (more than "
            f"{sys.get_int_max_str_digits()} digits); send the Moodle event "
            "unchanged, with its ids as Moodle gives them",
            code="invalid_json",
        ) from None
    except RecursionError:
        return


def store_reread(connection: WebhookConnection, trigger: RereadTrigger) -> int:
    """Store a request to re-read one learner from Moodle; a repeat is a no-op."""
    db = db_session()
    key = (
        f"moodle-reread:{connection.provider_id}:{connection.id}:"
        f"{trigger.lms_course_id}:{trigger.lms_user_id}:{trigger.occurred_at}"
    )
    message = enqueue(
        db,
        provider_id=connection.provider_id,
        kind=REREAD_MOODLE_LEARNER,
        payload={
            "connection_id": connection.id,
            "course_id": trigger.lms_course_id,
            "user_id": trigger.lms_user_id,
            "reason": trigger.reason,
        },
        idempotency_key=key,
    )
    db.commit()
    dispatch([message.id])
    return message.id


def _invalid_event(error: MoodleEventInvalid) -> BadRequest:
    problems = [
        {"field": problem.field, "message": str(problem)} for problem in error.problems
    ]
    return BadRequest(str(error), code="invalid_event", problems=problems)


@bp.post("/moodle/<public_id>")
def moodle_event(public_id: str):
    connection = _connection_or_404(public_id, LmsKind.MOODLE)
    structlog.contextvars.bind_contextvars(
        provider_id=connection.provider_id, connection_id=connection.id
    )
    body = _json_body()
    _check_secret(connection, body.get("token"))

    try:
        fact = parse_webhook_event(
            body, provider_id=connection.provider_id, lms_connection_id=connection.id
        )
    except MoodleEventInvalid as error:
        raise _invalid_event(error) from None
    if fact is None:
        return _moodle_trigger_or_ignore(connection, body)

    stored = store_event_fact(fact)
    log.info(
        "moodle_event_accepted",
        fact_id=stored.fact_id,
        duplicate=not stored.created,
        lms_user_id=fact.lms_user_id,
        lms_course_id=fact.lms_course_id,
    )
    status = "accepted" if stored.created else "duplicate"
    body = {"status": status, "fact_id": stored.fact_id}
    return jsonify(body), 202 if stored.created else 200


def _moodle_trigger_or_ignore(connection: WebhookConnection, body: dict):
    eventname = body.get("eventname")
    try:
        trigger = parse_reread_trigger(body)
    except MoodleEventInvalid as error:
        raise _invalid_event(error) from None
    if trigger is None:
        log.info("moodle_event_ignored", eventname=eventname)
        return jsonify({"status": "ignored", "eventname": eventname}), 202

    message_id = store_reread(connection, trigger)
    log.info(
        "moodle_reread_queued",
        eventname=eventname,
        outbox_message_id=message_id,
        lms_user_id=trigger.lms_user_id,
        lms_course_id=trigger.lms_course_id,
    )
    return jsonify({"status": "reread_queued", "eventname": eventname}), 202


@bp.post("/moodle/<public_id>/xapi/statements")
def moodle_xapi_statements(public_id: str):
    """Accept xAPI statements from Moodle's logstore_xapi as hints to re-read.

    The plugin authenticates like an LRS client, with HTTP Basic auth. The password
    is the connection's webhook secret, and the username is not checked.
    """
    connection = _connection_or_404(public_id, LmsKind.MOODLE)
    structlog.contextvars.bind_contextvars(
        provider_id=connection.provider_id, connection_id=connection.id
    )
    authorization = request.authorization
    _check_secret(
        connection,
        authorization.password if authorization else None,
        field_name=_LOGSTORE_XAPI_FIELD,
    )
    body = request.get_json(silent=True, force=True)
    try:
        triggers, ignored = parse_xapi_hints(body)
    except MoodleEventInvalid as error:
        raise BadRequest(str(error), code="invalid_statement") from None

    for trigger in triggers:
        store_reread(connection, trigger)
    log.info("moodle_xapi_hints", hints=len(triggers), ignored=ignored)
    result = {"status": "accepted_as_hints", "hints": len(triggers), "ignored": ignored}
    return jsonify(result), 200
