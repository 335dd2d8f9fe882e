"""JSON API routes for the admin actions that reach an LMS or change keys.

Preview, explain, connect and test read the LMS while the caller waits, with the
short timeouts of `lti_tool.operations.rosters.REQUEST_TIMEOUT` and the connection
tests. An activity listing reads it within the LMS check's time budget (see
`lti_tool.operations.course_check`). A backfill only adds a job here: the Celery
workers run it. Every lookup is filtered on the token's provider, so another
provider's id returns 404.
"""

from __future__ import annotations

from flask import g, jsonify, request

from lti_tool.api.views import (
    _body,
    _commit,
    _int_arg,
    _provider,
    _string,
    bp,
)
from lti_tool.bridge import current_bridge, db_session
from lti_tool.operations import InvalidInput
from lti_tool.operations import achievements as achievement_ops
from lti_tool.operations import backfills as backfill_ops
from lti_tool.operations import deployments as deployment_ops
from lti_tool.operations import keys as key_ops
from lti_tool.operations import learners as learner_ops
from lti_tool.operations import lms as lms_ops
from lti_tool.operations.awards import explain
from lti_tool.operations.course_check import list_course_activities
from lti_tool.operations.next_steps import API_STEPS

# Learners a preview reads by default and at most, because each one costs one to
# four LMS requests while the caller waits.
PREVIEW_DEFAULT = 100
PREVIEW_MAX = 500
LEARNER_ID_MAX = 64
# Activities an activity listing returns by default and at most. The LMS is read
# whole either way, and `complete` is false when the course has more.
ACTIVITIES_MAX = 1000


def _achievement(achievement_id: str):
    return achievement_ops.find_achievement(
        db_session(), achievement_id, _provider().id
    )


def _optional_body() -> dict:
    """Return the JSON object body, or {} when the request has no body."""
    if not request.get_data():
        return {}
    return _body()


@bp.get("/achievements/<achievement_id>/preview")
def preview_achievement(achievement_id: str):
    found = _achievement(achievement_id)
    max_learners = _int_arg("max_learners", PREVIEW_DEFAULT, PREVIEW_MAX)
    rows = achievement_ops.preview(
        db_session(), current_bridge(), found, max_learners=max_learners + 1
    )
    # Reading one learner more than requested shows whether the list is complete.
    complete = len(rows) <= max_learners
    rows = [row.__dict__ for row in rows[:max_learners]]
    # A Canvas token refresh during the reads updated the stored tokens.
    _commit()
    return jsonify(
        {
            "achievement": found.public_id,
            "would_earn": sum(1 for row in rows if row["met"] and not row["holds"]),
            "already_hold": sum(1 for row in rows if row["holds"]),
            "complete": complete,
            "learners": rows,
        }
    )


@bp.get("/achievements/<achievement_id>/explain")
def explain_achievement(achievement_id: str):
    found = _achievement(achievement_id)
    learner = (request.args.get("learner") or "").strip()
    if not learner or len(learner) > LEARNER_ID_MAX:
        raise InvalidInput(
            f"query parameter learner must be the learner's LMS user id (1 to "
            f"{LEARNER_ID_MAX} characters), got {learner[:40]!r}",
            code="invalid_learner",
        )
    result = explain(db_session(), current_bridge(), found, learner)
    _commit()
    return jsonify(result)


@bp.post("/achievements/<achievement_id>/backfills")
def start_backfill(achievement_id: str):
    from lti_tool.backfill import send_backfill

    found = _achievement(achievement_id)
    job = backfill_ops.start_achievement_backfill(db_session(), g.api_actor, found)
    _commit()
    if job.joined:
        # The badge's active backfill is returned instead of a second job.
        return jsonify(
            {**backfill_ops.backfill_dict(db_session(), job), "joined": True}
        )
    send_backfill(job.id)
    return jsonify(
        {**backfill_ops.backfill_dict(db_session(), job), "joined": False}
    ), 202


@bp.get("/backfills")
def list_backfills():
    jobs = backfill_ops.list_backfills(
        db_session(), _provider(), _int_arg("limit", 20, backfill_ops.LIST_LIMIT_MAX)
    )
    return jsonify(
        {"backfills": [backfill_ops.backfill_dict(db_session(), job) for job in jobs]}
    )


@bp.get("/backfills/<backfill_id>")
def show_backfill(backfill_id: str):
    job = backfill_ops.find_backfill(db_session(), backfill_id, _provider().id)
    return jsonify(backfill_ops.backfill_dict(db_session(), job))


@bp.post("/backfills/<backfill_id>/cancel")
def cancel_backfill(backfill_id: str):
    job = backfill_ops.find_backfill(db_session(), backfill_id, _provider().id)
    backfill_ops.cancel_backfill(db_session(), g.api_actor, job)
    _commit()
    return jsonify(backfill_ops.backfill_dict(db_session(), job))


def _connected(connected) -> dict:
    return {
        "connection": lms_ops.connection_dict(current_bridge(), connected.connection),
        "webhook_url": connected.webhook_url,
        "webhook_secret": connected.webhook_secret,
        "test": connected.test,
    }


@bp.post("/lms-connections/moodle")
def connect_moodle():
    body = _body()
    connected = lms_ops.connect_moodle(
        db_session(),
        current_bridge(),
        g.api_actor,
        _provider(),
        url=_string(body, "url"),
        token=_string(body, "token"),
        name=_string(body, "name", required=False) or "Moodle",
        url_field="url",
    )
    _commit()
    return jsonify(_connected(connected)), 201


@bp.post("/lms-connections/canvas")
def connect_canvas():
    body = _body()
    connected = lms_ops.connect_canvas_site(
        db_session(),
        current_bridge(),
        g.api_actor,
        _provider(),
        url=_string(body, "url"),
        token=_string(body, "token"),
        course_id=_string(body, "course_id"),
        name=_string(body, "name", required=False) or "Canvas",
        client_id=_string(body, "client_id", required=False),
        client_secret=_string(body, "client_secret", required=False),
        refresh_token=_string(body, "refresh_token", required=False),
        url_field="url",
    )
    _commit()
    return jsonify(_connected(connected)), 201


def _connection(connection_id: str):
    return lms_ops.find_connection(
        db_session(), connection_id, _provider().id, steps=API_STEPS
    )


@bp.get("/lms-connections/<connection_id>/courses/<course_id>/activities")
def list_activities(connection_id: str, course_id: str):
    limit = _int_arg("limit", ACTIVITIES_MAX, ACTIVITIES_MAX)
    connection = _connection(connection_id)
    rows = list_course_activities(
        current_bridge(),
        db_session(),
        g.api_actor,
        connection,
        course_id,
        steps=API_STEPS,
    )
    # The audit event, and a Canvas token refresh during the read, are stored.
    _commit()
    return jsonify(
        {
            "connection": connection.public_id,
            "course_id": course_id.strip(),
            "complete": len(rows) <= limit,
            "activities": rows[:limit],
        }
    )


@bp.post("/lms-connections/<connection_id>/test")
def test_lms_connection(connection_id: str):
    body = _optional_body()
    connection = _connection(connection_id)
    result = lms_ops.test_lms_connection(
        db_session(),
        current_bridge(),
        g.api_actor,
        connection,
        _string(body, "course_id", required=False),
    )
    _commit()
    return jsonify(result)


@bp.post("/lms-connections/<connection_id>/disconnect")
def disconnect_lms_connection(connection_id: str):
    connection = _connection(connection_id)
    usage = lms_ops.disconnect_connection(db_session(), g.api_actor, connection)
    _commit()
    return jsonify(
        {
            **lms_ops.connection_dict(current_bridge(), connection),
            "usage": usage.as_dict(),
        }
    )


@bp.post("/lms-connections/<connection_id>/webhook-secret")
def issue_webhook_secret(connection_id: str):
    connection = _connection(connection_id)
    issued = lms_ops.issue_webhook_secret(
        db_session(), current_bridge(), g.api_actor, connection
    )
    _commit()
    return jsonify(
        {
            "connection": lms_ops.connection_dict(current_bridge(), connection),
            "webhook_url": issued.webhook_url,
            "webhook_secret": issued.webhook_secret,
        }
    )


@bp.post("/deployments/approve")
def approve_deployment():
    body = _body()
    registration = deployment_ops.find_registration(
        db_session(),
        _string(body, "issuer"),
        _string(body, "client_id"),
        provider_id=_provider().id,
    )
    deployment_id = _string(body, "deployment_id")
    deployment_ops.approve_deployment(
        db_session(), g.api_actor, registration, deployment_id
    )
    _commit()
    return jsonify(
        {
            "status": "active",
            "issuer": registration.issuer,
            "client_id": registration.client_id,
            "deployment_id": deployment_id,
        }
    )


@bp.get("/keys")
def list_keys():
    kind = request.args.get("kind")
    key_ops.check_kind(kind, key_ops.PROVIDER_KINDS)
    rows = key_ops.list_keys(
        db_session(),
        current_bridge(),
        g.api_actor,
        kind=kind,
        provider=_provider(),
        include_encryption=False,
    )
    _commit()
    return jsonify({"keys": rows})


@bp.post("/keys/rotate")
def rotate_key():
    body = _body()
    kind = _string(body, "kind")
    result = key_ops.rotate_provider_key(
        db_session(), current_bridge(), g.api_actor, _provider(), kind
    )
    _commit()
    return jsonify({"status": "rotated", "kind": kind, **result})


@bp.get("/learners/<lms_user_id>/export")
def export_learner(lms_user_id: str):
    document = learner_ops.export_learner(
        db_session(), current_bridge(), g.api_actor, _provider(), lms_user_id
    )
    _commit()
    return jsonify(document)


@bp.post("/learners/<lms_user_id>/forget")
def forget_learner(lms_user_id: str):
    learner_ops.forget_learner(db_session(), g.api_actor, _provider(), lms_user_id)
    _commit()
    return jsonify({"status": "forgotten", "learner": lms_user_id})
