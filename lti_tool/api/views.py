"""JSON API routes for providers' own automation.

Every request but the OpenAPI document carries `Authorization: Bearer <token>`
with one provider's API token, and every query filters on that provider, so a
token never reads or changes another provider's data: an id that belongs to
another provider returns 404, as if it did not exist. The routes call
the same actions as the `hpass-bridge` commands, with the same checks and audit
events (actor `api-token:<token id>`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from badge_engine.db import utcnow
from badge_engine.models import Provider
from lti_tool.api.openapi import openapi_document
from lti_tool.api.tokens import find_active_token
from lti_tool.backfill import BackfillTrigger, send_backfill
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import Unauthorized
from lti_tool.logs import get_logger
from lti_tool.operations import ActionError, InvalidInput, api_actor, audit
from lti_tool.operations import NotFound as OperationNotFound
from lti_tool.operations import achievements as achievement_ops
from lti_tool.operations import awards as award_ops
from lti_tool.operations import backfills as backfill_ops
from lti_tool.operations import deliveries as delivery_ops
from lti_tool.operations.course_check import skipped_check_warning
from lti_tool.operations.lms import (
    connection_dict,
    disconnected_badge_warning,
    list_connections,
)
from lti_tool.operations.next_steps import API_STEPS
from lti_tool.row_ids import parse_row_id, shortened
from lti_tool.operations.providers import provider_dict

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = get_logger(__name__)

PUBLIC_ENDPOINTS = ("api.openapi",)


@bp.before_request
def authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "").strip()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # The code stays token_missing in every case, which API clients branch on.
        raise Unauthorized(_authorization_problem(header), code="token_missing")
    row = find_active_token(db_session(), token.strip())
    if row is None:
        raise Unauthorized(
            "the API token is invalid or revoked; ask the operator for a new one",
            code="token_invalid",
        )
    row.last_used_at = utcnow()
    db_session().commit()
    g.api_provider = db_session().get(Provider, row.provider_id)
    g.api_actor = api_actor(row.public_id)


def _authorization_problem(header: str) -> str:
    """Return the error message for an Authorization header without a Bearer token.

    The message never repeats the header's value, which may be the token itself.
    """
    fix = (
        "the header must read `Authorization: Bearer <token>`, with a token from "
        "`hpass-bridge api-token create`"
    )
    if not header:
        return f"missing API token; {fix}"
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        return f"the Authorization header has no token after the word Bearer; {fix}"
    if rest and scheme.isalpha() and len(scheme) <= 20:
        return f"the Authorization header uses the {scheme!r} scheme, not Bearer; {fix}"
    return f"the Authorization header lacks the word Bearer before the token; {fix}"


# Audit action of each read route, named as the matching command records it. The
# key listing and the learner export record their own events in the operation.
READ_ACTIONS = {
    "api.show_provider": "provider.shown",
    "api.lms_connections": "lms_connection.listed",
    "api.list_achievements": "achievement.listed",
    "api.show_achievement": "achievement.shown",
    "api.preview_achievement": "achievement.previewed",
    "api.explain_achievement": "award.explained",
    "api.list_awards": "award.listed",
    "api.show_award": "award.shown",
    "api.list_deliveries": "delivery.listed",
    "api.list_facts": "fact.listed",
    "api.list_backfills": "backfill.listed",
    "api.show_backfill": "backfill.shown",
}


@bp.after_request
def audit_read(response):
    """Record a successful read in the audit log, as the commands do."""
    action = READ_ACTIONS.get(request.endpoint)
    if action is None or response.status_code >= 400:
        return response
    session = db_session()
    detail = {"query": request.args.to_dict()} if request.args else None
    try:
        audit(
            session,
            g.api_actor,
            action,
            provider_id=_provider().id,
            target=request.path,
            detail=detail,
        )
        session.commit()
    except SQLAlchemyError as error:
        # The response is already built, so the read still succeeds and the lost
        # audit event is logged with its ids.
        session.rollback()
        log.error(
            "api_read_audit_failed",
            error=type(error).__name__,
            action=action,
            provider_id=_provider().id,
        )
    return response


@bp.errorhandler(ActionError)
def handle_action_error(error: ActionError):
    log.info(
        "api_action_rejected",
        code=error.code,
        reason=error.api_message,
        provider_id=getattr(g.get("api_provider"), "id", None),
    )
    db_session().rollback()
    body = {
        "error": error.code,
        "message": error.api_message,
        "request_id": g.request_id,
    }
    if isinstance(error, achievement_ops.AchievementExists):
        body["achievement"] = error.existing_id
    return jsonify(body), error.http_status


@bp.errorhandler(SQLAlchemyError)
def handle_database_error(error: SQLAlchemyError):
    log.error("api_database_error", error=type(error).__name__)
    db_session().rollback()
    body = {
        "error": "database_error",
        "message": "the database rejected the change; nothing was saved, try again",
        "request_id": g.request_id,
    }
    return jsonify(body), 503


def _provider() -> Provider:
    return g.api_provider


def _commit():
    db_session().commit()


def _body() -> dict[str, Any]:
    """Return the request's JSON object, or raise InvalidInput saying what is wrong."""
    if not request.is_json:
        raise InvalidInput(
            "the request body must be a JSON object; send Content-Type: "
            "application/json",
            code="invalid_body",
        )
    try:
        body = json.loads(request.get_data(cache=True))
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"the request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno} (character {error.pos}); send one JSON object",
            code="invalid_body",
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            "the request body is not valid JSON: it is not UTF-8 text; send one "
            "JSON object in UTF-8",
            code="invalid_body",
        ) from None
    if not isinstance(body, dict):
        raise InvalidInput(
            f"the request body must be a JSON object, got a JSON "
            f"{_json_type_name(body)}; send one object with the route's fields",
            code="invalid_body",
        )
    return body


def _json_type_name(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# The body fields each achievement route takes.
_ACHIEVEMENT_FIELDS = (
    "name",
    "description",
    "criteria",
    "alignments",
    "award_rule",
    "skip_lms_check",
)
_ACHIEVEMENT_EDIT_FIELDS = (*_ACHIEVEMENT_FIELDS, "backfill")
_ACHIEVEMENT_ADD_FIELDS = ("lms_connection", "course_id", *_ACHIEVEMENT_EDIT_FIELDS)


def _known_fields(body: dict, fields: tuple[str, ...]) -> dict:
    """Return the body when it has no field outside `fields`.

    A misspelt field would otherwise be ignored, and the change the client meant
    would silently not happen.
    """
    unknown = sorted(name for name in body if name not in fields)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; this route takes {', '.join(fields)}",
            code="unknown_field",
        )
    return body


def _string(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if value is None:
        # The code stays invalid_field, which API clients already branch on.
        raise InvalidInput(
            f"field {name!r} is required; send it as a JSON string",
            code="invalid_field",
        )
    if not isinstance(value, str):
        raise InvalidInput(
            f"field {name!r} must be a string, not {type(value).__name__}",
            code="invalid_field",
        )
    return value


def _limit() -> int:
    return _int_arg("limit", 100, 1000)


def _int_arg(name: str, default: int, maximum: int) -> int:
    """Return a whole-number query parameter from 1 to `maximum`."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # parse_row_id also bounds the digits int() reads, so a long number fails here.
    value = parse_row_id(raw) if raw.isascii() and raw.isdigit() else None
    if value is None or not 1 <= value <= maximum:
        raise InvalidInput(
            f"{name} must be a whole number from 1 to {maximum}, got {raw[:40]!r}",
            code=f"invalid_{name}",
        )
    return value


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.get("/provider")
def show_provider():
    return jsonify(provider_dict(db_session(), _provider()))


@bp.get("/lms-connections")
def lms_connections():
    rows = list_connections(db_session(), _provider())
    return jsonify(
        {"connections": [connection_dict(current_bridge(), row) for row in rows]}
    )


@bp.get("/achievements")
def list_achievements():
    rows = achievement_ops.list_achievements(
        db_session(), _provider(), request.args.get("course_id")
    )
    return jsonify(
        {
            "achievements": [
                achievement_ops.achievement_dict(db_session(), r) for r in rows
            ]
        }
    )


def _alignments(body: dict) -> list | None:
    """Return the body's alignments list; JSON text is not accepted here."""
    value = body.get("alignments")
    if value is not None and not isinstance(value, list):
        raise InvalidInput(
            "alignments must be a JSON array of objects", code="invalid_alignments"
        )
    return value


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(
            f"field {name!r} must be true or false", code="invalid_field"
        )
    return value


def _skip_lms_check(body: dict) -> bool:
    return _flag(body, "skip_lms_check", False)


def _checked_achievement(achievement, skipped: bool) -> dict[str, Any]:
    """Return the achievement document with the warnings of a skipped LMS check
    and of a disconnected LMS connection."""
    result = achievement_ops.achievement_dict(db_session(), achievement)
    result["warnings"] = []
    connection = achievement_ops.achievement_connection(
        db_session(), achievement, API_STEPS
    )
    if skipped:
        result["warnings"].append(
            skipped_check_warning(connection, achievement.lms_course_id, API_STEPS)
        )
    if connection.disconnected:
        result["warnings"].append(disconnected_badge_warning(connection))
    return result


@bp.post("/achievements")
def add_achievement():
    body = _known_fields(_body(), _ACHIEVEMENT_ADD_FIELDS)
    skip = _skip_lms_check(body)
    start_backfill = _flag(body, "backfill", True)
    created = achievement_ops.add_achievement(
        db_session(),
        g.api_actor,
        _provider(),
        bridge=current_bridge(),
        connection_id=_string(body, "lms_connection"),
        course_id=_string(body, "course_id"),
        name=_string(body, "name"),
        description=_string(body, "description"),
        criteria=_string(body, "criteria"),
        rule=body.get("award_rule"),
        alignments=_alignments(body),
        skip_lms_check=skip,
        steps=API_STEPS,
    )
    job = backfill_error = None
    if start_backfill:
        job, backfill_error = backfill_ops.start_automatic_backfill(
            db_session(),
            g.api_actor,
            created,
            trigger=BackfillTrigger.ACHIEVEMENT_CREATED,
        )
    _commit()
    result = _checked_achievement(created, skip)
    return jsonify(_with_backfill(result, job, backfill_error)), 201


@bp.get("/achievements/<achievement_id>")
def show_achievement(achievement_id: str):
    found = achievement_ops.find_achievement(
        db_session(), achievement_id, _provider().id
    )
    return jsonify(achievement_ops.achievement_dict(db_session(), found))


@bp.patch("/achievements/<achievement_id>")
def edit_achievement(achievement_id: str):
    body = _known_fields(_body(), _ACHIEVEMENT_EDIT_FIELDS)
    skip = _skip_lms_check(body)
    start_backfill = _flag(body, "backfill", True)
    found = achievement_ops.find_achievement(
        db_session(), achievement_id, _provider().id
    )
    fields = achievement_ops.edit_achievement(
        db_session(),
        g.api_actor,
        found,
        bridge=current_bridge(),
        name=_string(body, "name", required=False),
        description=_string(body, "description", required=False),
        criteria=_string(body, "criteria", required=False),
        rule=body.get("award_rule"),
        alignments=_alignments(body),
        skip_lms_check=skip,
        steps=API_STEPS,
    )
    job = backfill_error = None
    if "award_rule" in fields and start_backfill:
        job, backfill_error = backfill_ops.start_automatic_backfill(
            db_session(), g.api_actor, found
        )
    _commit()
    result = _checked_achievement(found, skip and "award_rule" in fields)
    return jsonify(_with_backfill(result, job, backfill_error))


def _with_backfill(
    result: dict[str, Any], job, error: ActionError | None
) -> dict[str, Any]:
    """Add the backfill a badge change started, or why none started, to `result`.

    Called after the commit: a job this request added is sent to the workers here.
    """
    result["backfill"] = None
    if error is not None:
        result["warnings"].append(f"no backfill was started: {error.api_message}")
    if job is not None:
        result["backfill"] = {
            **backfill_ops.backfill_dict(db_session(), job),
            "joined": job.joined,
        }
        if not job.joined:
            send_backfill(job.id)
    return result


@bp.get("/awards")
def list_awards():
    rows = award_ops.list_awards(
        db_session(),
        _provider().id,
        course_id=request.args.get("course_id"),
        learner=request.args.get("learner"),
        achievement_id=request.args.get("achievement"),
        status=request.args.get("status"),
        limit=_limit(),
    )
    return jsonify(
        {"awards": [award_ops.award_dict(current_bridge(), r) for r in rows]}
    )


@bp.get("/awards/<award_id>")
def show_award(award_id: str):
    credential = award_ops.find_award(db_session(), award_id, _provider().id)
    result = award_ops.award_dict(current_bridge(), credential)
    result["deliveries"] = [
        award_ops.delivery_dict(item)
        for item in award_ops.award_deliveries(db_session(), credential)
    ]
    return jsonify(result)


@bp.post("/awards/<award_id>/revoke")
def revoke_award(award_id: str):
    body = _body()
    credential = award_ops.find_award(db_session(), award_id, _provider().id)
    message_ids = award_ops.revoke_award(
        db_session(), g.api_actor, credential, _string(body, "reason", required=False)
    )
    _commit()
    _dispatch(message_ids)
    return jsonify(award_ops.award_dict(current_bridge(), credential))


@bp.get("/deliveries")
def list_deliveries():
    rows = delivery_ops.list_deliveries(
        db_session(), _provider().id, request.args.get("status"), _limit()
    )
    return jsonify({"deliveries": rows})


@bp.post("/deliveries/<delivery_id>/retry")
def retry_delivery(delivery_id: str):
    # Taken as text, because the app's int converter stops at the largest database
    # id, and a larger id here is an unknown delivery like any other.
    if not (delivery_id.isascii() and delivery_id.isdigit()):
        raise InvalidInput(
            f"delivery id {delivery_id[:40]!r} is not a number; use the numeric id "
            "of a delivery from GET /api/v1/deliveries",
            code="invalid_delivery_id",
        )
    number = parse_row_id(delivery_id)
    if number is None:
        # More digits than any row id has, so no delivery has this id.
        raise OperationNotFound(
            f"no delivery {shortened(delivery_id)} for this provider; see GET "
            "/api/v1/deliveries",
            code="delivery_not_found",
        )
    delivery = delivery_ops.find_delivery(db_session(), number, _provider().id)
    message_id = delivery_ops.retry_delivery(db_session(), g.api_actor, delivery)
    _commit()
    _dispatch([message_id])
    return jsonify({"status": "queued", "delivery": number}), 202


@bp.get("/facts")
def list_facts():
    rows = delivery_ops.list_facts(
        db_session(),
        _provider().id,
        course_id=request.args.get("course_id"),
        learner=request.args.get("learner"),
        source=request.args.get("source"),
        limit=_limit(),
    )
    return jsonify({"facts": rows})


def _dispatch(message_ids: list[int]) -> None:
    from lti_tool.tasks import dispatch

    dispatch(message_ids)


# The action routes register themselves on `bp`.
from lti_tool.api import actions  # noqa: E402, F401
