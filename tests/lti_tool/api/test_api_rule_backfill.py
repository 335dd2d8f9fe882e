"""The API's backfill of a new badge and a changed award rule, and cancelling one that ended."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.accounts import AuditEvent
from lti_tool.backfill import BackfillJob, BackfillStatus, BackfillTrigger

from .test_api_actions import _auth, _seed

QUIZ_RULE = {
    "version": 1,
    "rule": {"kind": "activities_completed", "activity_ids": ["4001"], "match": "any"},
}


@pytest.fixture
def alpha(app, db):
    vault = app.extensions["hpass"].vault
    seeded = _seed(db, vault, "alpha")
    _seed(db, vault, "beta")
    return seeded


def patch(client, alpha, body: dict):
    return client.patch(
        f"/api/v1/achievements/{alpha['achievement']}",
        json=body,
        headers=_auth(alpha["token"]),
    )


def jobs(db) -> list[BackfillJob]:
    db.expire_all()
    return list(db.scalars(select(BackfillJob).order_by(BackfillJob.id)))


def audit_events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def test_rule_change_starts_backfill(client, db, alpha):
    """A PATCH with a new award rule queues a backfill and returns it."""
    response = patch(client, alpha, {"award_rule": QUIZ_RULE, "skip_lms_check": True})

    assert response.status_code == 200, response.json
    [job] = jobs(db)
    backfill = response.json["backfill"]
    assert backfill["id"] == job.public_id
    assert backfill["joined"] is False
    assert backfill["trigger"] == BackfillTrigger.RULE_CHANGED.value
    assert backfill["status"] == BackfillStatus.PENDING.value
    assert backfill["achievements"] == [alpha["achievement"]]
    assert job.requested_by.startswith("api-token:")


def test_rule_change_audits_both_rules(client, db, alpha):
    """The update event records the old and new rule; the start event its trigger."""
    patch(client, alpha, {"award_rule": QUIZ_RULE, "skip_lms_check": True})

    [updated] = audit_events(db, "achievement.updated")
    assert updated.detail["fields"] == ["award_rule"]
    assert updated.detail["old_rule"] == COURSE_COMPLETED_RULE
    assert updated.detail["new_rule"] == QUIZ_RULE
    [job] = jobs(db)
    [started] = audit_events(db, "backfill.started")
    assert started.target == f"backfill:{job.public_id}"
    assert started.detail["trigger"] == "rule_changed"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed"},
        {"award_rule": COURSE_COMPLETED_RULE},
        {"award_rule": QUIZ_RULE, "skip_lms_check": True, "backfill": False},
    ],
    ids=["name-only", "same-rule", "backfill-false"],
)
def test_patch_without_backfill(client, db, alpha, body):
    """A text edit, the stored rule or backfill false starts no job."""
    response = patch(client, alpha, body)

    assert response.status_code == 200, response.json
    assert response.json["backfill"] is None
    assert jobs(db) == []
    assert audit_events(db, "backfill.started") == []


def test_same_rule_records_nothing(client, db, alpha):
    """Sending only the stored rule changes nothing and adds no audit event."""
    response = patch(client, alpha, {"award_rule": COURSE_COMPLETED_RULE})

    assert response.status_code == 200
    assert audit_events(db, "achievement.updated") == []


def test_equivalent_rule_records_nothing(client, db, alpha):
    """A rule that awards like the stored one starts no job and adds no event."""
    patch(client, alpha, {"award_rule": QUIZ_RULE, "skip_lms_check": True})
    equivalent = {
        "rule": {
            "count": 1,
            "activity_ids": ["4001"],
            "kind": "activities_completed_at_least",
        },
        "version": 1,
    }

    response = patch(client, alpha, {"award_rule": equivalent, "skip_lms_check": True})

    assert response.status_code == 200, response.json
    assert response.json["backfill"] is None
    assert len(jobs(db)) == 1
    assert len(audit_events(db, "achievement.updated")) == 1
    assert db.get(Achievement, jobs(db)[0].achievement_ids[0]).award_rule == QUIZ_RULE


def test_grade_change_starts_backfill(client, db, alpha):
    """A new minimum grade is a rule change, 80 against 80.0 is not."""
    grade_rule = {
        "version": 1,
        "rule": {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 80},
    }
    raised = {"version": 1, "rule": {**grade_rule["rule"], "min_percent": 85.5}}
    as_float = {"version": 1, "rule": {**grade_rule["rule"], "min_percent": 80.0}}

    first = patch(client, alpha, {"award_rule": grade_rule, "skip_lms_check": True})
    same = patch(client, alpha, {"award_rule": as_float, "skip_lms_check": True})
    changed = patch(client, alpha, {"award_rule": raised, "skip_lms_check": True})

    assert first.json["backfill"] is not None
    assert same.json["backfill"] is None
    assert changed.json["backfill"] is not None
    assert len(audit_events(db, "achievement.updated")) == 2


def test_backfill_field_must_be_boolean(client, db, alpha):
    """A backfill field that is not true or false is rejected before any change."""
    response = patch(client, alpha, {"award_rule": QUIZ_RULE, "backfill": "no"})

    assert response.status_code == 400
    assert response.json["error"] == "invalid_field"
    assert "'backfill'" in response.json["message"]
    db.expire_all()
    assert db.scalar(select(func.count(BackfillJob.id))) == 0
    rules = {row.award_rule["rule"]["kind"] for row in db.scalars(select(Achievement))}
    assert rules == {"course_completed"}


def test_rule_change_on_disconnected_lms(client, db, alpha):
    """With the LMS disconnected, the rule is saved and a warning gives the reason no job started."""
    from connectors.models import LmsConnection
    from lti_tool.operations.lms import disconnect_connection

    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.public_id == alpha["connection"])
    )
    disconnect_connection(db, "admin:test", connection)
    db.commit()

    response = patch(client, alpha, {"award_rule": QUIZ_RULE, "skip_lms_check": True})

    assert response.status_code == 200, response.json
    assert response.json["award_rule"] == QUIZ_RULE
    assert response.json["backfill"] is None
    assert any(
        warning.startswith("no backfill was started")
        for warning in response.json["warnings"]
    )
    assert jobs(db) == []


@pytest.mark.parametrize("status", ["done", "cancelled", "failed"])
def test_cancel_ended_backfill_409(client, db, alpha, status):
    """Cancelling a job that ended returns 409 naming its status, and records nothing."""
    started = client.post(
        f"/api/v1/achievements/{alpha['achievement']}/backfills",
        headers=_auth(alpha["token"]),
    )
    [job] = jobs(db)
    job.status = status
    db.commit()

    response = client.post(
        f"/api/v1/backfills/{started.json['id']}/cancel",
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 409
    assert response.json["error"] == "backfill_not_active"
    assert f"already {status}" in response.json["message"]
    assert started.json["id"] in response.json["message"]
    [job] = jobs(db)
    assert job.status == status
    assert not job.cancel_requested
    assert audit_events(db, "backfill.cancel_requested") == []


def post(client, alpha, **fields):
    body = {
        "lms_connection": alpha["connection"],
        "course_id": "101",
        "name": "Quiz passed",
        "description": "Passed the quiz.",
        "criteria": "Pass the quiz.",
        "award_rule": QUIZ_RULE,
        "skip_lms_check": True,
        **fields,
    }
    return client.post("/api/v1/achievements", json=body, headers=_auth(alpha["token"]))


def test_new_achievement_starts_backfill(client, db, alpha):
    """A POST queues a backfill of the new badge and returns it."""
    response = post(client, alpha)

    assert response.status_code == 201, response.json
    [job] = jobs(db)
    backfill = response.json["backfill"]
    assert backfill["id"] == job.public_id
    assert backfill["trigger"] == BackfillTrigger.ACHIEVEMENT_CREATED.value
    assert backfill["achievements"] == [response.json["id"]]
    [started] = audit_events(db, "backfill.started")
    assert started.detail["trigger"] == "achievement_created"


def test_new_achievement_without_backfill(client, db, alpha):
    """backfill false adds the badge and starts no job."""
    response = post(client, alpha, backfill=False)

    assert response.status_code == 201, response.json
    assert response.json["backfill"] is None
    assert jobs(db) == []
