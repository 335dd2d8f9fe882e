"""Saving a badge on the course page: the backfill a new or changed rule starts, the
audit event of the change, and the notice shown to the instructor afterwards."""

from __future__ import annotations

import re

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from badge_engine.models import Achievement, Credential, CredentialStatus
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.accounts import AuditEvent
from lti_tool.backfill import BackfillJob, BackfillStatus, BackfillTrigger

from .conftest import add_credential, launch_as
from .test_course_pages import badge_form

QUIZ = "4001"
PAGE = "4002"
QUIZ_RULE = {
    "version": 1,
    "rule": {"kind": "activities_completed", "activity_ids": [QUIZ], "match": "any"},
}
NOTICE = re.compile(
    r'<p class="notice" role="status" tabindex="-1" id="course-notice" '
    r"data-confirmation>(.*?)</p>"
)


def edit_url(tenant) -> str:
    return f"/course/{tenant.course_id}/achievements/{tenant.achievement_public_id}"


def quiz_rule_form(**overrides) -> MultiDict:
    fields = list(badge_form(rule_kind="activities_completed", **overrides).items())
    fields += [("activity_ids", QUIZ), ("match", "any")]
    return MultiDict(fields)


def same_texts_form(**overrides) -> dict:
    """Return the edit form of provider alpha's badge with its stored texts."""
    return badge_form(
        name="Badge of alpha",
        description="Finished the course.",
        criteria="Complete the course.",
        **overrides,
    )


def jobs_of(db, tenant) -> list[BackfillJob]:
    db.expire_all()
    return list(
        db.scalars(
            select(BackfillJob)
            .where(BackfillJob.provider_id == tenant.provider_id)
            .order_by(BackfillJob.id)
        )
    )


def audit_events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def page_notice(client, tenant) -> str | None:
    page = client.get(f"/course/{tenant.course_id}").get_data(as_text=True)
    found = NOTICE.search(page)
    return found.group(1) if found else None


def test_rule_change_starts_backfill(client, tenants, db):
    """A changed award rule adds a backfill job of the badge, audited with both rules."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(edit_url(alpha), data=quiz_rule_form(name="Badge of alpha"))

    assert response.status_code == 303
    [job] = jobs_of(db, alpha)
    assert job.achievement_ids == [alpha.achievement_id]
    assert job.trigger == BackfillTrigger.RULE_CHANGED.value
    assert job.requested_by == "lti:9"
    [updated] = audit_events(db, "achievement.updated")
    assert "award_rule" in updated.detail["changed"]
    assert updated.detail["old_rule"] == COURSE_COMPLETED_RULE
    assert updated.detail["new_rule"] == QUIZ_RULE
    [started] = audit_events(db, "backfill.started")
    assert started.target == f"backfill:{job.public_id}"
    assert started.detail["trigger"] == "rule_changed"
    assert started.actor == "lti:9"


def test_rule_change_notice_names_job(client, tenants, db):
    """After a rule change the page shows, once, that a backfill started, with its id."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    client.post(edit_url(alpha), data=quiz_rule_form(name="Badge of alpha"))

    [job] = jobs_of(db, alpha)
    notice = page_notice(client, alpha)
    assert notice is not None
    assert "Its award rule changed" in notice
    assert job.public_id in notice
    assert page_notice(client, alpha) is None


def test_rule_only_audit_lists_award_rule(client, tenants, db):
    """A rule change with the same texts records changed: ['award_rule']."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    client.post(
        edit_url(alpha),
        data=MultiDict(
            list(same_texts_form(rule_kind="activities_completed").items())
            + [("activity_ids", QUIZ), ("match", "any")]
        ),
    )

    [updated] = audit_events(db, "achievement.updated")
    assert updated.detail["changed"] == ["award_rule"]
    assert updated.detail["new_versions"] == []


def test_text_edit_starts_no_backfill(client, tenants, db):
    """Renaming a badge keeps its rule, so no job starts and no rule is recorded."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(edit_url(alpha), data=badge_form(name="Renamed badge"))

    assert response.status_code == 303
    assert jobs_of(db, alpha) == []
    [updated] = audit_events(db, "achievement.updated")
    assert "award_rule" not in updated.detail["changed"]
    assert "old_rule" not in updated.detail
    assert "new_rule" not in updated.detail
    assert audit_events(db, "backfill.started") == []
    assert (
        page_notice(client, alpha) == "The badge “<bdi>Renamed badge</bdi>” was saved."
    )


def _store_rule(db, tenant, rule: dict) -> None:
    db.get(Achievement, tenant.achievement_id).award_rule = rule
    db.commit()


def test_equivalent_rule_starts_nothing(client, tenants, db):
    """A rule that awards like the stored one starts no backfill and is not audited."""
    alpha, _ = tenants
    stored = {
        "rule": {
            "count": 1,
            "activity_ids": [PAGE, QUIZ],
            "kind": "activities_completed_at_least",
        },
        "version": 1,
    }
    _store_rule(db, alpha, stored)
    launch_as(client, alpha, "instructor")

    response = client.post(
        edit_url(alpha),
        data=MultiDict(
            list(same_texts_form(rule_kind="activities_completed").items())
            + [("activity_ids", QUIZ), ("activity_ids", PAGE), ("match", "any")]
        ),
    )

    assert response.status_code == 303
    assert jobs_of(db, alpha) == []
    assert audit_events(db, "achievement.updated") == []
    assert audit_events(db, "backfill.started") == []
    assert db.get(Achievement, alpha.achievement_id).award_rule == stored
    assert (
        page_notice(client, alpha) == "The badge “<bdi>Badge of alpha</bdi>” was saved."
    )


def test_activity_order_change_starts_nothing(client, tenants, db):
    """The same activities listed in another order are the same rule."""
    alpha, _ = tenants
    _store_rule(
        db,
        alpha,
        {
            "version": 1,
            "rule": {
                "kind": "activities_completed",
                "activity_ids": [PAGE, QUIZ],
                "match": "all",
            },
        },
    )
    launch_as(client, alpha, "instructor")

    client.post(
        edit_url(alpha),
        data=MultiDict(
            list(same_texts_form(rule_kind="activities_completed").items())
            + [("activity_ids", QUIZ), ("activity_ids", PAGE), ("match", "all")]
        ),
    )

    assert jobs_of(db, alpha) == []
    assert audit_events(db, "achievement.updated") == []


def test_match_change_starts_backfill(client, tenants, db):
    """Changing all to any over the same activities is a rule change."""
    alpha, _ = tenants
    _store_rule(
        db,
        alpha,
        {
            "version": 1,
            "rule": {
                "kind": "activities_completed",
                "activity_ids": [PAGE, QUIZ],
                "match": "all",
            },
        },
    )
    launch_as(client, alpha, "instructor")

    client.post(
        edit_url(alpha),
        data=MultiDict(
            list(same_texts_form(rule_kind="activities_completed").items())
            + [("activity_ids", QUIZ), ("activity_ids", PAGE), ("match", "any")]
        ),
    )

    [job] = jobs_of(db, alpha)
    assert job.trigger == BackfillTrigger.RULE_CHANGED.value
    [updated] = audit_events(db, "achievement.updated")
    assert updated.detail["changed"] == ["award_rule"]


def test_rule_change_keeps_issued_credentials(client, tenants, db):
    """A holder's credential is not corrected, revoked or reissued by a rule change."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    document = dict(credential.document)
    launch_as(client, alpha, "instructor")

    client.post(
        edit_url(alpha),
        data=MultiDict(
            list(same_texts_form(rule_kind="activities_completed").items())
            + [("activity_ids", QUIZ), ("match", "any")]
        ),
    )

    db.expire_all()
    credentials = db.scalars(
        select(Credential).where(Credential.achievement_id == alpha.achievement_id)
    ).all()
    assert [item.id for item in credentials] == [credential.id]
    assert credentials[0].status == CredentialStatus.LIVE.value
    assert credentials[0].document == document
    [updated] = audit_events(db, "achievement.updated")
    assert updated.detail["new_versions"] == []
    assert len(jobs_of(db, alpha)) == 1


def test_rule_change_supersedes_active_job(client, tenants, db):
    """A rule change while a backfill is pending asks it to stop and adds a job."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/backfill",
        data={"csrf": "test-csrf"},
    )

    client.post(edit_url(alpha), data=quiz_rule_form(name="Badge of alpha"))

    older, newer = jobs_of(db, alpha)
    assert older.cancel_requested
    assert newer.trigger == BackfillTrigger.RULE_CHANGED.value
    assert not newer.cancel_requested
    assert newer.public_id in page_notice(client, alpha)


def test_rule_change_on_disconnected_lms(client, tenants, db):
    """With the LMS disconnected, the rule is saved, no job starts, and the page shows why."""
    from connectors.models import LmsConnection
    from lti_tool.operations.lms import disconnect_connection

    alpha, _ = tenants
    achievement = db.get(Achievement, alpha.achievement_id)
    achievement.award_rule = QUIZ_RULE
    disconnect_connection(db, "admin:test", db.get(LmsConnection, alpha.connection_id))
    db.commit()
    launch_as(client, alpha, "instructor")

    response = client.post(edit_url(alpha), data=same_texts_form())

    assert response.status_code == 303
    db.expire_all()
    assert db.get(Achievement, alpha.achievement_id).award_rule == COURSE_COMPLETED_RULE
    assert jobs_of(db, alpha) == []
    notice = page_notice(client, alpha)
    assert notice is not None
    assert "could not be awarded" in notice


def test_create_notice_names_job(client, tenants, db):
    """Creating a badge shows that awarding it has started, with the job id."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(f"/course/{alpha.course_id}/achievements", data=badge_form())

    assert response.status_code == 303
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    [job] = jobs_of(db, alpha)
    assert job.achievement_ids == [created.id]
    assert job.trigger == BackfillTrigger.ACHIEVEMENT_CREATED.value
    notice = page_notice(client, alpha)
    assert notice is not None
    assert "“<bdi>First aid basics</bdi>” was created" in notice
    assert job.public_id in notice


def test_notice_is_translated(client, tenants, db):
    """The notice follows the launch's language, here French and Arabic."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")
    client.post(edit_url(alpha), data=badge_form(name="Badge renommé"))
    assert (
        page_notice(client, alpha)
        == "Le badge «\u00a0<bdi>Badge renommé</bdi>\u00a0» a été enregistré."
    )

    launch_as(client, alpha, "instructor", locale="ar")
    client.post(edit_url(alpha), data=quiz_rule_form(name="Badge renommé"))
    [job] = jobs_of(db, alpha)
    notice = page_notice(client, alpha)
    assert notice is not None
    assert "تغيّرت قاعدة منحها" in notice
    assert job.public_id in notice


def test_notice_of_other_course_not_shown(client, tenants, db):
    """A notice kept for one course does not appear on another course's page."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    with client.session_transaction() as session:
        session["course_notice"] = {
            "course_id": alpha.course_id + 100,
            "kind": "saved",
            "name": "Elsewhere",
        }

    assert page_notice(client, alpha) is None


def test_cancel_finished_job_notice(client, tenants, db):
    """Cancelling a finished job changes nothing, records nothing and shows why."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/backfill",
        data={"csrf": "test-csrf"},
    )
    [job] = jobs_of(db, alpha)
    job.status = BackfillStatus.DONE.value
    db.commit()

    response = client.post(
        f"/course/{alpha.course_id}/backfills/{job.public_id}/cancel",
        data={"csrf": "test-csrf"},
    )

    assert response.status_code == 303
    # The fragment names the notice, so the browser leaves the focus on it.
    assert response.headers["Location"].endswith("#course-notice")
    [job] = jobs_of(db, alpha)
    assert job.status == BackfillStatus.DONE.value
    assert not job.cancel_requested
    assert audit_events(db, "backfill.cancel_requested") == []
    notice = page_notice(client, alpha)
    assert notice == (
        f"Job {job.public_id} had already ended (Finished), so there was nothing "
        "to cancel."
    )


def test_cancel_finished_job_in_spanish(client, tenants, db):
    """The already-ended notice is translated with the job's status label."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="es")
    client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/backfill",
        data={"csrf": "test-csrf"},
    )
    [job] = jobs_of(db, alpha)
    job.status = BackfillStatus.FAILED.value
    db.commit()

    client.post(
        f"/course/{alpha.course_id}/backfills/{job.public_id}/cancel",
        data={"csrf": "test-csrf"},
    )

    notice = page_notice(client, alpha)
    assert notice is not None
    assert notice.startswith(f"La tarea {job.public_id} ya había terminado")
    assert "Failed" not in notice


def test_cancel_pending_job_is_audited(client, tenants, db):
    """Cancelling an active job still records the request with the job's status."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    # The browser follows the redirect, which shows the start's notice once.
    client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/backfill",
        data={"csrf": "test-csrf"},
        follow_redirects=True,
    )
    [job] = jobs_of(db, alpha)

    client.post(
        f"/course/{alpha.course_id}/backfills/{job.public_id}/cancel",
        data={"csrf": "test-csrf"},
    )

    [event] = audit_events(db, "backfill.cancel_requested")
    assert event.detail == {"status": BackfillStatus.CANCELLED.value}
    assert page_notice(client, alpha) is None
