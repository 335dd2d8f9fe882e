"""The OpenAPI 3.1 document of /api/v1, written by hand beside the routes.

A test compares its paths with the blueprint's routes, and schemathesis checks the
served API against it.
"""

from __future__ import annotations

from typing import Any

from badge_engine.alignments import FIELD_LIMITS as ALIGNMENT_FIELD_LIMITS
from badge_engine.alignments import MAX_ALIGNMENTS
from lti_tool import __version__

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
# The values of `connectors.models.ContactSource`, or null.
NULLABLE_CONTACT_SOURCE = {"enum": ["poll", "ags_poll", "reread", "test", None]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _closed_object(
    properties: dict[str, Any], required: list[str] | None = None
) -> dict:
    """Return an object schema that allows no property it does not list."""
    return {**_object(properties, required), "additionalProperties": False}


def _list_of(key: str, ref: str) -> dict:
    return _object({key: {"type": "array", "items": {"$ref": ref}}}, [key])


def _json(schema: dict, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


ERROR = {"$ref": "#/components/schemas/Error"}
ERRORS = {
    "400": _json(ERROR, "Invalid input; the message names the value and the fix."),
    "401": _json(ERROR, "Missing, invalid or revoked API token."),
    "404": _json(ERROR, "Not found for this token's provider."),
}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or STRING,
    }


def _path(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


LIMIT = _query(
    "limit",
    "Maximum number of rows to return, newest first.",
    {"type": "integer", "minimum": 1, "maximum": 1000},
)


def _operation(summary: str, responses: dict, **extra) -> dict:
    return {"summary": summary, "responses": {**responses, **ERRORS}, **extra}


SKIP_LMS_CHECK = {
    "type": "boolean",
    "default": False,
    "description": "Save without checking the course and the award rule's activity "
    "ids in the LMS, for when the LMS cannot be reached. The response then carries "
    "a warning.",
}
LMS_CHECK_ERROR = {
    "502": _json(
        ERROR,
        "The LMS could not be read to check the course and the rule's activity "
        "ids: error lms_timeout when it did not answer within the bridge's LMS check "
        "time limit (HPASS_LMS_CHECK_TIMEOUT_SECONDS, 5 s by default), otherwise "
        "lms_unreachable (connection failure or LMS error). Nothing was saved; "
        "retry, or send skip_lms_check.",
    ),
}


SCHEMAS = {
    "Error": _object(
        {
            "error": STRING,
            "message": STRING,
            "request_id": NULLABLE_STRING,
            # Only with error achievement_exists: the badge that has the name.
            "achievement": STRING,
        },
        ["error", "message"],
    ),
    "Provider": _object(
        {
            "slug": STRING,
            "name": STRING,
            "url": STRING,
            "email": NULLABLE_STRING,
            "certification": {"enum": ["certified", "not_certified"]},
            "slug_frozen": {"type": "boolean"},
            "created_at": TIMESTAMP,
        },
        ["slug", "name", "certification"],
    ),
    "LmsConnection": _object(
        {
            "id": STRING,
            "kind": {"enum": ["moodle", "canvas"]},
            "name": STRING,
            "url": STRING,
            "state": STRING,
            "status": {
                "enum": [
                    "connected",
                    "no_contact",
                    "not_responding",
                    "not_working",
                    "disconnected",
                ],
                "description": "What the admin page shows: state and the latest "
                "contact with the LMS combined.",
            },
            "state_detail": NULLABLE_STRING,
            "webhook_url": STRING,
            "created_at": TIMESTAMP,
            "disconnected_at": TIMESTAMP,
            "disconnected_by": NULLABLE_STRING,
            "last_contact": {
                "enum": ["succeeded", "failed", None],
                "description": "Outcome of the latest recorded poll, re-read or "
                "connection test; null when none is recorded yet.",
            },
            "last_success_at": TIMESTAMP,
            "last_success_source": NULLABLE_CONTACT_SOURCE,
            "last_failure_at": TIMESTAMP,
            "last_failure_source": NULLABLE_CONTACT_SOURCE,
            "last_failure_detail": NULLABLE_STRING,
            "last_event_at": TIMESTAMP,
        },
        ["id", "kind", "url", "state"],
    ),
    "DisconnectedLmsConnection": {
        "allOf": [
            {"$ref": "#/components/schemas/LmsConnection"},
            _object(
                {
                    "usage": _object(
                        {
                            "achievements": {"type": "integer", "minimum": 0},
                            "courses": {"type": "integer", "minimum": 0},
                            "lti_registrations": {"type": "integer", "minimum": 0},
                        },
                        ["achievements", "courses", "lti_registrations"],
                    )
                },
                ["usage"],
            ),
        ],
        "description": "The connection after the disconnect. `usage` counts the "
        "provider's badges on it, the courses that award them and the LTI "
        "registrations linked to it. They stay on the disconnected connection, and "
        "its badges can no longer be earned.",
    },
    "AwardRule": {
        "type": "object",
        "description": "An award rule document, see docs/award-rules.md.",
        "required": ["version", "rule"],
        "properties": {"version": {"const": 1}, "rule": {"type": "object"}},
    },
    "Alignments": {
        "type": "array",
        "description": "Skills or standards the badge points to, with the Open Badges "
        "3.0 Alignment field names; targetName and an http(s) targetUrl are required.",
        "maxItems": MAX_ALIGNMENTS,
        "items": {
            "type": "object",
            "required": ["targetName", "targetUrl"],
            "additionalProperties": False,
            "properties": {
                field: {"type": "string", "maxLength": limit}
                for field, limit in ALIGNMENT_FIELD_LIMITS.items()
            },
        },
    },
    "Achievement": _object(
        {
            "id": STRING,
            "lms_connection": NULLABLE_STRING,
            "course_id": STRING,
            "name": STRING,
            "description": STRING,
            "criteria": STRING,
            "image_url": NULLABLE_STRING,
            "alignments": {"$ref": "#/components/schemas/Alignments"},
            "award_rule": {"$ref": "#/components/schemas/AwardRule"},
            "created_at": TIMESTAMP,
        },
        ["id", "course_id", "name", "award_rule"],
    ),
    # The API rejects a field these do not list (error unknown_field).
    "NewAchievement": _closed_object(
        {
            "lms_connection": STRING,
            "course_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": {"type": "string", "minLength": 1, "maxLength": 4000},
            "criteria": {"type": "string", "minLength": 1, "maxLength": 4000},
            "alignments": {"$ref": "#/components/schemas/Alignments"},
            "award_rule": {"$ref": "#/components/schemas/AwardRule"},
            "skip_lms_check": SKIP_LMS_CHECK,
            "backfill": {
                "type": "boolean",
                "default": True,
                "description": "Queue a backfill that issues the new badge to "
                "enrolled learners who already meet its rule.",
            },
        },
        [
            "lms_connection",
            "course_id",
            "name",
            "description",
            "criteria",
            "award_rule",
        ],
    ),
    "AchievementChange": _closed_object(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": {"type": "string", "minLength": 1, "maxLength": 4000},
            "criteria": {"type": "string", "minLength": 1, "maxLength": 4000},
            "alignments": {"$ref": "#/components/schemas/Alignments"},
            "award_rule": {"$ref": "#/components/schemas/AwardRule"},
            "skip_lms_check": SKIP_LMS_CHECK,
            "backfill": {
                "type": "boolean",
                "default": True,
                "description": "When award_rule differs from the stored rule, queue "
                "a backfill that issues the badge to enrolled learners who meet the "
                "new rule. Credentials already issued are not changed.",
            },
        }
    ),
    "ChangedAchievement": {
        "allOf": [
            {"$ref": "#/components/schemas/CheckedAchievement"},
            _object(
                {
                    "backfill": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/Backfill"},
                            {"type": "null"},
                        ],
                        "description": "The backfill started because the badge "
                        "was added or its award rule changed, or null when the rule "
                        "did not change, the request sent backfill false, or the "
                        "backfill could not start (a warning then names the reason).",
                    }
                },
                ["backfill"],
            ),
        ]
    },
    "CheckedAchievement": {
        "allOf": [
            {"$ref": "#/components/schemas/Achievement"},
            _object(
                {
                    "warnings": {
                        "type": "array",
                        "items": STRING,
                        "description": "Set when the LMS check was skipped, and "
                        "when the badge's LMS connection was disconnected, so that "
                        "the badge can no longer be earned.",
                    }
                },
                ["warnings"],
            ),
        ]
    },
    "Delivery": _object(
        {
            "id": {"type": "integer"},
            "award": STRING,
            "achievement_name": STRING,
            "route": STRING,
            "status": STRING,
            "reason": NULLABLE_STRING,
            "last_error": NULLABLE_STRING,
            "attempts": {"type": "integer"},
            "updated_at": TIMESTAMP,
            "delivered_at": TIMESTAMP,
            "revocation_sent_at": TIMESTAMP,
            "remote_url": NULLABLE_STRING,
        },
        ["id", "route", "status"],
    ),
    "Award": _object(
        {
            "id": STRING,
            "url": STRING,
            "achievement": STRING,
            "achievement_name": STRING,
            "course_id": STRING,
            "learner": STRING,
            "status": {"enum": ["live", "revoked"]},
            "awarded_at": TIMESTAMP,
            "issued_at": TIMESTAMP,
            "revoked_at": TIMESTAMP,
            "revocation_reason": NULLABLE_STRING,
            "completion_reversed_at": TIMESTAMP,
            "deliveries": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Delivery"},
            },
        },
        ["id", "achievement", "learner", "status"],
    ),
    "CompletionFact": _object(
        {
            "id": {"type": "integer"},
            "course_id": STRING,
            "learner": STRING,
            "activity_id": NULLABLE_STRING,
            "state": STRING,
            "occurred_at": TIMESTAMP,
            "source": STRING,
            "source_event_id": NULLABLE_STRING,
            "outcome": STRING,
            "outcome_detail": NULLABLE_STRING,
            "received_at": TIMESTAMP,
        },
        ["id", "course_id", "learner", "state", "source"],
    ),
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


PATHS = {
    "/api/v1/provider": {
        "get": _operation(
            "The token's provider",
            {"200": _json(_ref("Provider"), "The provider.")},
            operationId="getProvider",
        )
    },
    "/api/v1/lms-connections": {
        "get": _operation(
            "The provider's LMS connections",
            {
                "200": _json(
                    _list_of("connections", "#/components/schemas/LmsConnection"),
                    "Connections.",
                )
            },
            operationId="listLmsConnections",
        )
    },
    "/api/v1/achievements": {
        "get": _operation(
            "The provider's achievements",
            {
                "200": _json(
                    _list_of("achievements", "#/components/schemas/Achievement"),
                    "Achievements.",
                )
            },
            operationId="listAchievements",
            parameters=[_query("course_id", "Only this LMS course.")],
        ),
        "post": _operation(
            "Add an achievement with its award rule",
            {
                "201": _json(_ref("ChangedAchievement"), "Created."),
                "409": _json(
                    ERROR,
                    "Error achievement_exists: a badge of the same course already "
                    "has this name, ignoring letter case and runs of spaces. "
                    "Nothing was saved; the error's achievement field is that "
                    "badge's id, to change with PATCH.",
                ),
                **LMS_CHECK_ERROR,
            },
            operationId="addAchievement",
            requestBody=_body("NewAchievement"),
        ),
    },
    "/api/v1/achievements/{achievement_id}": {
        "get": _operation(
            "One achievement",
            {"200": _json(_ref("Achievement"), "The achievement.")},
            operationId="getAchievement",
            parameters=[_path("achievement_id")],
        ),
        "patch": _operation(
            "Change an achievement's texts or award rule",
            {
                "200": _json(_ref("ChangedAchievement"), "Changed."),
                "409": _json(
                    ERROR,
                    "Error achievement_exists: another badge of the course already "
                    "has the new name. Nothing was changed.",
                ),
                **LMS_CHECK_ERROR,
            },
            operationId="editAchievement",
            parameters=[_path("achievement_id")],
            requestBody=_body("AchievementChange"),
        ),
    },
    "/api/v1/awards": {
        "get": _operation(
            "The provider's awards, newest first",
            {"200": _json(_list_of("awards", "#/components/schemas/Award"), "Awards.")},
            operationId="listAwards",
            parameters=[
                _query("course_id", "Only this LMS course."),
                _query("learner", "Only this learner (LMS user id)."),
                _query("achievement", "Only this achievement id."),
                _query("status", "Only this status.", {"enum": ["live", "revoked"]}),
                LIMIT,
            ],
        )
    },
    "/api/v1/awards/{award_id}": {
        "get": _operation(
            "One award with its deliveries",
            {"200": _json(_ref("Award"), "The award.")},
            operationId="getAward",
            parameters=[_path("award_id")],
        )
    },
    "/api/v1/awards/{award_id}/revoke": {
        "post": _operation(
            "Revoke an award, with a reason verifiers show",
            {
                "200": _json(_ref("Award"), "Revoked."),
                "409": _json(ERROR, "Already revoked."),
            },
            operationId="revokeAward",
            parameters=[_path("award_id")],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _object(
                            {
                                "reason": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": 1000,
                                }
                            },
                            ["reason"],
                        )
                    }
                },
            },
        )
    },
    "/api/v1/deliveries": {
        "get": _operation(
            "The provider's deliveries to portfolios",
            {
                "200": _json(
                    _list_of("deliveries", "#/components/schemas/Delivery"),
                    "Deliveries.",
                )
            },
            operationId="listDeliveries",
            parameters=[
                _query(
                    "status",
                    "Only this status.",
                    {
                        "enum": [
                            "queued",
                            "delivered",
                            "retrying",
                            "needs_consent",
                            "failed",
                            "no_portfolio",
                            "revoked",
                        ]
                    },
                ),
                LIMIT,
            ],
        )
    },
    "/api/v1/deliveries/{delivery_id}/retry": {
        "post": _operation(
            "Queue a delivery again",
            {
                "202": _json(
                    _object({"status": STRING, "delivery": {"type": "integer"}}),
                    "Queued.",
                ),
                "409": _json(ERROR, "Already delivered."),
            },
            operationId="retryDelivery",
            parameters=[
                _path(
                    "delivery_id",
                    {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                )
            ],
        )
    },
    "/api/v1/facts": {
        "get": _operation(
            "Completion facts the LMSs reported, newest first",
            {
                "200": _json(
                    _list_of("facts", "#/components/schemas/CompletionFact"), "Facts."
                )
            },
            operationId="listFacts",
            parameters=[
                _query("course_id", "Only this LMS course."),
                _query("learner", "Only this learner (LMS user id)."),
                _query("source", "Only this source.", {"enum": ["event", "poll"]}),
                LIMIT,
            ],
        )
    },
}


LMS_ERROR = {
    "409": _json(ERROR, "The connection's LMS kind cannot be read on request."),
    "502": _json(
        ERROR,
        "The LMS did not respond in time or rejected the bridge's credentials. The "
        "message names what to check.",
    ),
}
ACHIEVEMENT_ID = _path("achievement_id")
BACKFILL_ID = _path("backfill_id")


def _string_field(max_length: int, min_length: int = 1) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _json_body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


SCHEMAS.update(
    {
        "PreviewLearner": _object(
            {
                "lms_user_id": STRING,
                "name": NULLABLE_STRING,
                "met": {"type": "boolean"},
                "met_at": TIMESTAMP,
                "missing": {"type": "array", "items": STRING},
                "completed_activities": {"type": "array", "items": STRING},
                "holds": {
                    "type": "boolean",
                    "description": "The learner holds a live credential of the "
                    "badge, so a backfill skips them.",
                },
            },
            ["lms_user_id", "met", "missing", "completed_activities", "holds"],
        ),
        "Preview": _object(
            {
                "achievement": STRING,
                "would_earn": {
                    "type": "integer",
                    "description": "Learners who meet the rule and do not hold the "
                    "badge yet: those a backfill would issue to.",
                },
                "already_hold": {
                    "type": "integer",
                    "description": "Learners who hold a live credential of the badge.",
                },
                "complete": {
                    "type": "boolean",
                    "description": "False when the course has more learners than "
                    "max_learners.",
                },
                "learners": {"type": "array", "items": _ref("PreviewLearner")},
            },
            ["achievement", "would_earn", "already_hold", "complete", "learners"],
        ),
        "Explanation": _object(
            {
                "achievement": STRING,
                "learner": STRING,
                "known_learner": {"type": "boolean"},
                "holds_award": NULLABLE_STRING,
                "rule_met": {"type": "boolean"},
                "met_at": TIMESTAMP,
                "missing": {"type": "array", "items": STRING},
                "award_rule": _ref("AwardRule"),
            },
            ["achievement", "learner", "holds_award", "rule_met", "missing"],
        ),
        "Backfill": _object(
            {
                "id": STRING,
                "course_id": STRING,
                "achievements": {"type": "array", "items": STRING},
                "trigger": STRING,
                "status": {
                    "enum": ["pending", "running", "done", "failed", "cancelled"]
                },
                "learners_seen": {"type": "integer"},
                "issued": {"type": "integer"},
                "already_held": {"type": "integer"},
                "not_met": {"type": "integer"},
                "rejected": {"type": "integer"},
                "failed_reads": {"type": "integer"},
                "cancel_requested": {"type": "boolean"},
                "last_error": NULLABLE_STRING,
                "created_at": TIMESTAMP,
                "finished_at": TIMESTAMP,
                "joined": {
                    "type": "boolean",
                    "description": "Only where a request started a backfill (a "
                    "backfill request, or an award rule change): true when the "
                    "badge's active backfill was returned instead of a new one.",
                },
            },
            ["id", "status", "learners_seen", "issued"],
        ),
        "Connected": _object(
            {
                "connection": _ref("LmsConnection"),
                "webhook_url": STRING,
                "webhook_secret": {
                    "type": "string",
                    "description": "Shown once; configure it in the LMS.",
                },
                "test": {"type": "object"},
            },
            ["connection", "webhook_url", "webhook_secret", "test"],
        ),
        "IssuedWebhookSecret": _object(
            {
                "connection": _ref("LmsConnection"),
                "webhook_url": STRING,
                "webhook_secret": {
                    "type": "string",
                    "description": "Shown once; configure it in the LMS.",
                },
            },
            ["connection", "webhook_url", "webhook_secret"],
        ),
        "ConnectionTest": {
            "type": "object",
            "required": ["ok"],
            "properties": {"ok": {"type": "boolean"}},
        },
        "Key": _object(
            {
                "kind": {"enum": ["lti", "signing"]},
                "provider": STRING,
                "id": STRING,
                "active": {"type": "boolean"},
                "owner": STRING,
                "created_at": TIMESTAMP,
            },
            ["kind", "id", "active"],
        ),
        "LearnerExport": _object(
            {
                "provider": STRING,
                "learners": {"type": "array", "items": {"type": "object"}},
            },
            ["provider", "learners"],
        ),
    }
)

SCHEMAS.update(
    {
        "CourseActivity": _object(
            {
                "id": {
                    "type": "string",
                    "description": "The id an award rule names.",
                },
                "name": STRING,
                "kind": {
                    "type": "string",
                    "description": "The LMS's activity type: the Moodle module name "
                    "(quiz, page), the Canvas module item type (Assignment, Page), "
                    "or ags_line_item for a grade read through LTI AGS; empty when "
                    "the LMS sent none.",
                },
                "section": STRING,
                "tracked": {
                    "type": "boolean",
                    "description": "False when the activity has no completion "
                    "tracking, so no learner can complete it.",
                },
            },
            ["id", "name", "kind", "section", "tracked"],
        ),
        "CourseActivities": _object(
            {
                "connection": STRING,
                "course_id": STRING,
                "complete": {
                    "type": "boolean",
                    "description": "False when the course has more activities "
                    "than limit.",
                },
                "activities": {"type": "array", "items": _ref("CourseActivity")},
            },
            ["connection", "course_id", "complete", "activities"],
        ),
    }
)

PATHS.update(
    {
        "/api/v1/lms-connections/{connection_id}/courses/{course_id}/activities": {
            "get": _operation(
                "Read a course's activities from the LMS: the ids an award rule "
                "can name, in course order, then the course's AGS line items",
                {
                    "200": _json(_ref("CourseActivities"), "Activities read."),
                    "409": _json(ERROR, "The connection was disconnected."),
                    "502": _json(
                        ERROR,
                        "The LMS could not be read: error lms_timeout when it did "
                        "not answer within HPASS_LMS_CHECK_TIMEOUT_SECONDS, "
                        "otherwise lms_unreachable.",
                    ),
                },
                operationId="listCourseActivities",
                parameters=[
                    _path("connection_id"),
                    _path("course_id", _string_field(64)),
                    _query(
                        "limit",
                        "Activities to return at most (default 1000).",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                    ),
                ],
            )
        },
        "/api/v1/achievements/{achievement_id}/preview": {
            "get": _operation(
                "List enrolled learners who would earn the badge now; issues nothing",
                {"200": _json(_ref("Preview"), "Learners read."), **LMS_ERROR},
                operationId="previewAchievement",
                parameters=[
                    ACHIEVEMENT_ID,
                    _query(
                        "max_learners",
                        "Learners to read at most (default 100); each costs LMS "
                        "requests while the caller waits.",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                ],
            )
        },
        "/api/v1/achievements/{achievement_id}/explain": {
            "get": _operation(
                "Explain why a learner has or has not earned the badge",
                {"200": _json(_ref("Explanation"), "Explanation."), **LMS_ERROR},
                operationId="explainAward",
                parameters=[
                    ACHIEVEMENT_ID,
                    {
                        **_query(
                            "learner", "The learner's LMS user id.", _string_field(64)
                        ),
                        "required": True,
                    },
                ],
            )
        },
        "/api/v1/achievements/{achievement_id}/backfills": {
            "post": _operation(
                "Start a backfill: the workers issue the badge to every enrolled "
                "learner who already earned it. While the badge's backfill is "
                "pending or running, that job is returned instead of a new one",
                {
                    "202": _json(
                        _ref("Backfill"), "Queued for the workers; joined is false."
                    ),
                    "200": _json(
                        _ref("Backfill"), "The badge's active backfill; joined is true."
                    ),
                },
                operationId="startBackfill",
                parameters=[ACHIEVEMENT_ID],
            )
        },
        "/api/v1/backfills": {
            "get": _operation(
                "The provider's latest backfills, newest first",
                {
                    "200": _json(
                        _list_of("backfills", "#/components/schemas/Backfill"),
                        "Backfills.",
                    )
                },
                operationId="listBackfills",
                parameters=[
                    _query(
                        "limit",
                        "Rows to return at most (default 20).",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                    ),
                ],
            )
        },
        "/api/v1/backfills/{backfill_id}": {
            "get": _operation(
                "One backfill's progress",
                {"200": _json(_ref("Backfill"), "The backfill.")},
                operationId="getBackfill",
                parameters=[BACKFILL_ID],
            )
        },
        "/api/v1/backfills/{backfill_id}/cancel": {
            "post": _operation(
                "Stop a backfill after its current page; issued badges stay",
                {
                    "200": _json(_ref("Backfill"), "Cancel requested."),
                    "409": _json(
                        ERROR,
                        "Error backfill_not_active: the backfill has already ended "
                        "(done, cancelled or failed); the message names its status.",
                    ),
                },
                operationId="cancelBackfill",
                parameters=[BACKFILL_ID],
            )
        },
        "/api/v1/lms-connections/moodle": {
            "post": _operation(
                "Connect a Moodle site; saved only when the connection test passes",
                {"201": _json(_ref("Connected"), "Connected."), **LMS_ERROR},
                operationId="connectMoodle",
                requestBody=_json_body(
                    _object(
                        {
                            "url": _string_field(2000),
                            "token": _string_field(500),
                            "name": _string_field(200),
                        },
                        ["url", "token"],
                    )
                ),
            )
        },
        "/api/v1/lms-connections/canvas": {
            "post": _operation(
                "Connect a Canvas site; saved only when the connection test passes",
                {"201": _json(_ref("Connected"), "Connected."), **LMS_ERROR},
                operationId="connectCanvas",
                requestBody=_json_body(
                    _object(
                        {
                            "url": _string_field(2000),
                            "token": _string_field(500),
                            "course_id": {"type": "string", "pattern": "^[0-9]+$"},
                            "name": _string_field(200),
                            "client_id": _string_field(500),
                            "client_secret": _string_field(500),
                            "refresh_token": _string_field(500),
                        },
                        ["url", "token", "course_id"],
                    )
                ),
            )
        },
        "/api/v1/lms-connections/{connection_id}/test": {
            "post": _operation(
                "Test a stored connection and record the outcome on it",
                {"200": _json(_ref("ConnectionTest"), "The test report.")},
                operationId="testLmsConnection",
                parameters=[_path("connection_id")],
                requestBody=_json_body(
                    _object({"course_id": {"type": "string", "pattern": "^[0-9]+$"}}),
                    required=False,
                ),
            )
        },
        "/api/v1/lms-connections/{connection_id}/disconnect": {
            "post": _operation(
                "Disconnect a connection: its secrets are wiped, polls stop and its "
                "webhook events get 410; facts, badges and deliveries stay, and the "
                "site can be connected again as a new connection, which does not "
                "take over the badges or LTI registrations",
                {
                    "200": _json(
                        _ref("DisconnectedLmsConnection"),
                        "Disconnected, with the counts of what stays on it.",
                    ),
                    "409": _json(ERROR, "Already disconnected."),
                },
                operationId="disconnectLmsConnection",
                parameters=[_path("connection_id")],
            )
        },
        "/api/v1/lms-connections/{connection_id}/webhook-secret": {
            "post": _operation(
                "Issue a new webhook secret for a connection; the old secret stops "
                "working at once, and the new one is shown only in this response",
                {
                    "200": _json(
                        _ref("IssuedWebhookSecret"), "The new secret and its URL."
                    ),
                    "409": _json(ERROR, "The connection is disconnected."),
                },
                operationId="issueWebhookSecret",
                parameters=[_path("connection_id")],
            )
        },
        "/api/v1/deployments/approve": {
            "post": _operation(
                "Approve an LTI deployment held at its first launch",
                {
                    "200": _json(
                        _object(
                            {
                                "status": STRING,
                                "issuer": STRING,
                                "client_id": STRING,
                                "deployment_id": STRING,
                            }
                        ),
                        "Approved.",
                    )
                },
                operationId="approveDeployment",
                requestBody=_json_body(
                    _object(
                        {
                            "issuer": _string_field(2000),
                            "client_id": _string_field(255),
                            "deployment_id": _string_field(255),
                        },
                        ["issuer", "client_id", "deployment_id"],
                    )
                ),
            )
        },
        "/api/v1/keys": {
            "get": _operation(
                "The provider's LTI tool keys and signing keys (public ids only)",
                {"200": _json(_list_of("keys", "#/components/schemas/Key"), "Keys.")},
                operationId="listKeys",
                parameters=[
                    _query("kind", "Only this kind.", {"enum": ["lti", "signing"]})
                ],
            )
        },
        "/api/v1/keys/rotate": {
            "post": _operation(
                "Put a new LTI tool key or signing key in use; old public keys stay "
                "published",
                {"200": _json(_object({"status": STRING, "kind": STRING}), "Rotated.")},
                operationId="rotateKey",
                requestBody=_json_body(
                    _object({"kind": {"enum": ["lti", "signing"]}}, ["kind"])
                ),
            )
        },
        "/api/v1/learners/{lms_user_id}/export": {
            "get": _operation(
                "Everything the bridge stores about a learner",
                {"200": _json(_ref("LearnerExport"), "The learner's data.")},
                operationId="exportLearner",
                parameters=[_path("lms_user_id")],
            )
        },
        "/api/v1/learners/{lms_user_id}/forget": {
            "post": _operation(
                "Erase a learner's name, email, raw LMS payloads and portfolio "
                "tokens; issued badges stay valid",
                {
                    "200": _json(
                        _object({"status": STRING, "learner": STRING}), "Forgotten."
                    )
                },
                operationId="forgetLearner",
                parameters=[_path("lms_user_id")],
            )
        },
    }
)


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HPass bridge provider API",
            "version": __version__,
            "description": (
                "Each provider's own data, reached with that provider's API token "
                "(`hpass-bridge api-token create`). Ids of another provider return "
                "404."
            ),
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }
