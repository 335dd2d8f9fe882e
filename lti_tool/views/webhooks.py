"""Webhook endpoints: LMS events are stored, with their follow-up work, before the 2xx."""

from __future__ import annotations

import hashlib
import hmac

import structlog
from flask import Blueprint, jsonify, request
from sqlalchemy import select

from badge_engine.facts import CompletionFact
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import enqueue
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.errors import MoodleEventInvalid
from connectors.moodle.events import parse_webhook_event
from lti_tool.bridge import db_session
from lti_tool.errors import BadRequest, NotFound, Unauthorized
from lti_tool.logs import get_logger
from lti_tool.pipeline import EVALUATE_FACT
from lti_tool.tasks import dispatch

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = get_logger(__name__)


def _connection_or_404(public_id: str, kind: LmsKind) -> LmsConnection:
    connection = db_session().scalar(
        select(LmsConnection).where(
            LmsConnection.public_id == public_id, LmsConnection.kind == kind.value
        )
    )
    if connection is None:
        raise NotFound(
            f"no {kind.value} connection {public_id!r} exists; copy the webhook URL "
            "again from the provider admin page",
            connection=public_id,
        )
    return connection


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_secret(connection: LmsConnection, presented: object) -> None:
    # Compare digests in constant time so the response time reveals nothing.
    expected = connection.webhook_secret_sha256 or ""
    given = secret_digest(presented) if isinstance(presented, str) and presented else ""
    if not expected or not hmac.compare_digest(expected, given):
        raise Unauthorized(
            "the webhook token is missing or wrong; paste the connection's webhook "
            "secret into the Moodle webhook settings (create a new secret if it is lost)",
            connection=connection.public_id,
            provider_id=connection.provider_id,
        )


def _json_body() -> dict:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise BadRequest(
            "the request body is not a JSON object; send the Moodle event as JSON "
            "with Content-Type: application/json",
            code="invalid_json",
        )
    return body


def store_fact(fact: CompletionFact) -> tuple[CompletionFactRecord, bool]:
    """Store a fact and its evaluation message in one transaction; repeats are no-ops."""
    db = db_session()
    existing = db.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.dedupe_key == fact.dedupe_key,
        )
    )
    if existing is not None:
        return existing, False

    record = CompletionFactRecord(
        provider_id=fact.provider_id,
        lms_connection_id=fact.lms_connection_id,
        lms_course_id=fact.lms_course_id,
        lms_user_id=fact.lms_user_id,
        activity_id=fact.activity_id,
        state=fact.state.value,
        occurred_at=fact.occurred_at,
        source=fact.source.value,
        source_event_id=fact.source_event_id,
        dedupe_key=fact.dedupe_key,
        raw_payload=fact.raw_payload,
    )
    db.add(record)
    db.flush()
    message = enqueue(
        db,
        provider_id=fact.provider_id,
        kind=EVALUATE_FACT,
        payload={"fact_id": record.id},
        idempotency_key=f"fact:{record.id}",
    )
    db.commit()
    dispatch([message.id])

    return record, True


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
        raise BadRequest(str(error), code="invalid_event") from None
    if fact is None:
        log.info("moodle_event_ignored", eventname=body.get("eventname"))
        return jsonify({"status": "ignored", "eventname": body.get("eventname")}), 202

    record, created = store_fact(fact)
    log.info(
        "moodle_event_accepted",
        fact_id=record.id,
        duplicate=not created,
        lms_user_id=fact.lms_user_id,
        lms_course_id=fact.lms_course_id,
    )
    status = "accepted" if created else "duplicate"
    return jsonify({"status": status, "fact_id": record.id}), 202 if created else 200
