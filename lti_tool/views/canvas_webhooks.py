"""Canvas Live Events endpoint: events are stored, with their follow-up work, before the 2xx.

Canvas's Data Services subscription posts each event to the connection's URL, as
JSON or as a JWT signed with Canvas's keys. A JWT is verified against the
connection's JWKS URL. A JSON event carries no signature, so its URL must carry
the connection's webhook secret as `?token=`; Canvas cannot add headers.
"""

from __future__ import annotations

import hmac
import json
import threading

import structlog
from flask import Blueprint, jsonify, request

import lti_tool.canvas_tasks  # noqa: F401 - registers the poll tasks with Celery
from connectors.canvas.errors import CanvasEventInvalid, CanvasEventSignatureInvalid
from connectors.canvas.events import parse_live_event
from connectors.canvas.jwks import JwksCache, decode_signed_event
from connectors.models import LmsKind
from lti_tool.bridge import current_bridge
from lti_tool.errors import BadRequest, NotFound, Unauthorized
from lti_tool.intake import store_event_fact, webhook_connection
from lti_tool.logs import get_logger
from lti_tool.views.webhooks import reject_if_disconnected, secret_digest
from lti_tool.webhook_connections import WebhookConnection

bp = Blueprint("canvas_webhooks", __name__, url_prefix="/webhooks/canvas")
log = get_logger(__name__)

# One key cache per JWKS URL for the whole process, so keys are fetched once and
# refetched only for an unknown key id.
_jwks_caches: dict[str, JwksCache] = {}
_jwks_lock = threading.Lock()


def jwks_cache(url: str) -> JwksCache:
    with _jwks_lock:
        cache = _jwks_caches.get(url)
        if cache is None:
            bridge = current_bridge()
            timeout = bridge.settings.http_timeout_seconds
            cache = _jwks_caches[url] = JwksCache(
                url, policy=bridge.outbound_policy, timeout=(3.05, timeout)
            )
        return cache


def _connection_or_404(public_id: str) -> WebhookConnection:
    connection = webhook_connection(public_id, LmsKind.CANVAS.value)
    if connection is None:
        raise NotFound(
            f"no canvas connection {public_id!r} exists; copy the Live Events URL "
            "again from the Webhook URLs list on the provider admin page "
            "(/admin/connect), or from `hpass-bridge lms list --json`",
            connection=public_id,
        )
    reject_if_disconnected(connection, "Live Events subscription in Canvas")
    return connection


def _is_jwt(raw: bytes) -> bool:
    content_type = (request.mimetype or "").lower()
    return content_type == "application/jwt" or raw.lstrip()[:2] == b"ey"


def _signed_event(raw: bytes, connection: WebhookConnection) -> dict:
    if not connection.jwks_url:
        raise BadRequest(
            "this connection has no JWKS URL, so signed Live Events cannot be "
            "verified; set the Canvas JWKS URL in the connection settings",
            code="jwks_not_configured",
            connection=connection.public_id,
        )
    try:
        return decode_signed_event(
            raw.decode("ascii").strip(), jwks_cache(connection.jwks_url)
        )
    except (CanvasEventSignatureInvalid, UnicodeDecodeError) as error:
        log.warning("canvas_event_signature_rejected", error=str(error))
        raise Unauthorized(
            f"the Live Event signature was rejected: {error}",
            code="invalid_signature",
            connection=connection.public_id,
        ) from None


def _json_event(raw: bytes, connection: WebhookConnection) -> dict:
    expected = connection.webhook_secret_sha256 or ""
    presented = request.args.get("token", "")
    presented_digest = secret_digest(presented) if presented else ""
    # Compare digests in constant time so the response time reveals nothing.
    if not expected or not hmac.compare_digest(expected, presented_digest):
        raise Unauthorized(
            "the Live Events URL lacks the right ?token= secret; add the "
            "connection's webhook secret to the URL as ?token= in the Data Services "
            "subscription, or subscribe with signed (JWT) events. If the secret is "
            "lost, issue a new one with New webhook secret on the provider admin "
            "page (/admin/connect) or `hpass-bridge connection new-webhook-secret "
            f"{connection.public_id} --provider SLUG`",
            connection=connection.public_id,
            provider_id=connection.provider_id,
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the request body is neither JSON nor a JWT; send the Live Event as "
            "JSON with Content-Type: application/json",
            code="invalid_json",
        ) from None


@bp.post("/<public_id>")
def live_event(public_id: str):
    connection = _connection_or_404(public_id)
    structlog.contextvars.bind_contextvars(
        provider_id=connection.provider_id, connection_id=connection.id
    )
    raw = request.get_data(cache=False)
    if _is_jwt(raw):
        event = _signed_event(raw, connection)
    else:
        event = _json_event(raw, connection)

    try:
        result = parse_live_event(
            event,
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            home_shard=connection.home_shard,
        )
    except CanvasEventInvalid as error:
        log.warning("canvas_event_rejected", field=error.field, error=str(error))
        raise BadRequest(str(error), code="invalid_event") from None

    if result.fact is None:
        log.info(
            "canvas_event_skipped",
            event_name=result.event_name,
            reason=result.skip_reason,
        )
        body = {"status": "ignored", "event_name": result.event_name}
        return jsonify({**body, "reason": result.skip_reason}), 202

    stored = store_event_fact(result.fact)
    log.info(
        "canvas_event_accepted",
        event_name=result.event_name,
        fact_id=stored.fact_id,
        duplicate=not stored.created,
        lms_user_id=result.fact.lms_user_id,
        lms_course_id=result.fact.lms_course_id,
    )
    status = "accepted" if stored.created else "duplicate"
    return jsonify({"status": status, "fact_id": stored.fact_id}), (
        202 if stored.created else 200
    )
