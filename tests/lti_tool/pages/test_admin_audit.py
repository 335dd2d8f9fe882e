"""The audit log page: people, badges and courses by name, translated labels, filter."""

from __future__ import annotations

import html

from sqlalchemy import select

from lti_tool.accounts import AccountRole, AuditEvent, record_audit

from .conftest import (
    MOODLE_COURSE_ID,
    add_account,
    add_credential,
    launch_as,
    sign_in,
)

NBSP = "\u00a0"


def _audit_page(client, query: str = "", language: str = "en") -> str:
    response = client.get("/admin/audit" + query, headers={"Accept-Language": language})
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def _record(db, tenant, **event) -> None:
    record_audit(db, provider_id=tenant.provider_id, **event)
    db.commit()


def _sign_in_admin(client, db, tenant) -> None:
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, tenant.provider_id)
    sign_in(client, "admin@alpha.org")


def test_lti_actor_named_from_learner(client, tenants, db):
    """An LTI actor with a stored name and email is shown by them."""
    from badge_engine.models import Learner

    alpha, _ = tenants
    learner = db.get(Learner, alpha.learner_id)
    learner.email = "learner@alpha.org"
    _record(db, alpha, actor="lti:42", action="achievement.created")
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        '<td title="lti:42"><bdi>Learner of alpha</bdi> '
        '(<bdi dir="ltr">learner@alpha.org</bdi>)</td>'
    ) in page


def test_lti_actor_without_name_shows_course(client, tenants, db):
    """An instructor without a stored name is shown with the course and LMS user id."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="lti:9",
        action="achievement.created",
        target=f"achievement:{alpha.achievement_public_id}",
        detail={"course_id": MOODLE_COURSE_ID, "rule": "course_completed"},
    )
    _record(db, alpha, actor="lti:10", action="x.did")
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        "Instructor in course “<bdi>Course of alpha</bdi>” "
        '(LMS user id <bdi dir="ltr">9</bdi>)'
    ) in page
    assert 'Instructor (LMS user id <bdi dir="ltr">10</bdi>)' in page
    assert '<td title="lti:9">lti:9</td>' not in page


def test_lms_admin_actor_labelled_admin(client, tenants, db):
    """An LTI actor whose launch role was admin is labelled as an LMS
    administrator, and the stored role is not repeated as a detail."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="lti:11",
        action="achievement.created",
        target=f"achievement:{alpha.achievement_public_id}",
        detail={
            "course_id": MOODLE_COURSE_ID,
            "rule": "course_completed",
            "actor_role": "admin",
        },
    )
    _record(db, alpha, actor="lti:12", action="x.did", detail={"actor_role": "admin"})
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        "LMS administrator in course “<bdi>Course of alpha</bdi>” "
        '(LMS user id <bdi dir="ltr">11</bdi>)'
    ) in page
    assert 'LMS administrator (LMS user id <bdi dir="ltr">12</bdi>)' in page
    assert "Instructor" not in page
    assert "actor_role" not in page


def test_instructor_role_keeps_label(client, tenants, db):
    """An LTI actor whose launch role was instructor keeps the instructor label."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="lti:13",
        action="x.did",
        detail={"actor_role": "instructor"},
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert 'Instructor (LMS user id <bdi dir="ltr">13</bdi>)' in page
    assert "LMS administrator" not in page


LMS_ADMIN_IN_COURSE = {
    "fr": f"Administrateur du LMS dans le cours «{NBSP}<bdi>Course of alpha</bdi>{NBSP}»",
    "es": "Administrador del LMS en el curso «<bdi>Course of alpha</bdi>»",
    "ar": "مسؤول نظام إدارة التعلّم في المقرر «<bdi>Course of alpha</bdi>»",
}


def test_lms_admin_label_translated(client, tenants, db):
    """The LMS administrator label is translated, with the LMS user id isolated."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="lti:11",
        action="achievement.created",
        detail={"course_id": MOODLE_COURSE_ID, "actor_role": "admin"},
    )
    _sign_in_admin(client, db, alpha)

    for language, label in LMS_ADMIN_IN_COURSE.items():
        page = _audit_page(client, language=language)

        assert label in page, language
        assert '<bdi dir="ltr">11</bdi>' in page, language


def test_badge_target_named_and_linked(client, tenants, db):
    """A badge target shows the badge name, links its page and keeps the id."""
    alpha, beta = tenants
    _record(
        db,
        alpha,
        actor="lti:9",
        action="achievement.updated",
        target=f"achievement:{alpha.achievement_public_id}",
    )
    _record(
        db,
        alpha,
        actor="lti:9",
        action="achievement.updated",
        target=f"achievement:{beta.achievement_public_id}",
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        f'<a href="/achievements/{alpha.achievement_public_id}" dir="auto">'
        "Badge of alpha</a>"
    ) in page
    assert f"achievement:{alpha.achievement_public_id}</code>" in page
    assert "Badge of beta" not in page


def test_revocation_course_is_lms_course(client, tenants, db):
    """A revocation records the LMS course id, and older entries show it too."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _record(
        db,
        alpha,
        actor="lti:9",
        action="credential.revoked",
        target=f"credential:{credential.public_id}",
        detail={"reason": "Old entry", "course_id": alpha.course_id},
    )
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )
    new_event = db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "credential.revoked",
            AuditEvent.detail["reason"].as_string() == "Issued in error",
        )
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert new_event.detail["course_id"] == MOODLE_COURSE_ID
    assert page.count(f'LMS course id: <span dir="auto">{MOODLE_COURSE_ID}') == 2
    assert f"course_id: {alpha.course_id}" not in page
    assert "“<bdi>Badge of alpha</bdi>” of <bdi>Learner of alpha</bdi>" in page


def test_course_derived_from_badge(client, tenants, db):
    """An entry about a badge without a stored course shows the badge's LMS course."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="os:root",
        action="backfill.started",
        target="backfill:b1",
        detail={"achievement": alpha.achievement_public_id, "trigger": "manual"},
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert f'LMS course id: <span dir="auto">{MOODLE_COURSE_ID}</span>' in page
    assert 'Badge: <span dir="auto">Badge of alpha</span>' in page
    assert 'Started by: <span dir="auto">an admin, by hand</span>' in page
    assert 'Command on the bridge\'s server (user <bdi dir="ltr">root</bdi>)' in page


def test_event_labels_translated(client, tenants, db):
    """French and Arabic pages translate labels and values and keep the codes."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="os:root",
        action="backfill.started",
        detail={"trigger": "manual"},
    )
    _sign_in_admin(client, db, alpha)

    french = _audit_page(client, language="fr")
    arabic = _audit_page(client, language="ar")

    assert "Rattrapage des attributions lancé" in french
    assert '<code dir="ltr">backfill.started</code>' in french
    assert f'Lancé par{NBSP}: <span dir="auto">un administrateur, à la main' in french
    assert "بدأ استدراك المنح" in arabic
    assert "مسؤول، يدويًا" in arabic
    assert '<code dir="ltr">backfill.started</code>' in arabic


def test_reads_hidden_by_default(client, tenants, db):
    """Reads are hidden unless the filter includes them. Changes always show."""
    alpha, _ = tenants
    _record(db, alpha, actor="os:root", action="award.listed")
    _record(db, alpha, actor="os:root", action="lms_connection.activities_listed")
    _record(db, alpha, actor="os:root", action="backfill.started")
    _sign_in_admin(client, db, alpha)

    default = _audit_page(client)
    with_reads = _audit_page(client, "?reads=1")

    assert "award.listed" not in default
    assert "lms_connection.activities_listed" not in default
    assert "backfill.started" in default
    assert "Showing changes only, newest first." in default
    assert 'id="reads" name="reads" value="1" aria-describedby="reads-hint">' in default
    assert '<label for="reads">Show reads too</label>' in default
    assert "award.listed" in with_reads
    assert "lms_connection.activities_listed" in with_reads
    assert "Awards listed (read)" in with_reads
    assert 'aria-describedby="reads-hint" checked>' in with_reads


def test_only_reads_hidden_message(client, tenants, db):
    """A log with only reads explains that reads are hidden and how to show them."""
    alpha, _ = tenants
    _record(db, alpha, actor="os:root", action="award.listed")
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert "Reads, if any, are hidden" in page


def test_inviter_shown_by_email(client, tenants, db):
    """An `invited_by` account number is shown as the inviter's email."""
    alpha, _ = tenants
    inviter = add_account(
        db, "inviter@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    _record(
        db,
        alpha,
        actor="os:root",
        action="invitation.withdrawn",
        target="email:new@alpha.org",
        detail={"invited_by": inviter.id, "withdrawn_because": "inviter_disabled"},
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert 'Invited by: <span dir="auto">inviter@alpha.org</span>' in page


def test_inviter_gone_keeps_number(client, tenants, db):
    """An inviter that no longer exists, or belongs to another provider, keeps its
    number, and another provider's email is not shown."""
    alpha, beta = tenants
    outsider = add_account(
        db, "outsider@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id
    )
    for inviter_id in (outsider.id, 9999):
        _record(
            db,
            alpha,
            actor="os:root",
            action="account.created",
            target="account:1",
            detail={"invited_by": inviter_id},
        )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert f'Invited by: <span dir="auto">{outsider.id}</span>' in page
    assert 'Invited by: <span dir="auto">9999</span>' in page
    assert "outsider@beta.org" not in page


def test_operator_inviter_named(client, tenants, db):
    """An operator who invited is shown by email and marked as an operator."""
    alpha, _ = tenants
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    _record(
        db,
        alpha,
        actor="os:root",
        action="account.created",
        target="account:1",
        detail={"invited_by": operator.id},
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        'Invited by: <span dir="auto"><bdi dir="ltr">op@hpass.org</bdi> '
        "(HPass operator)"
    ) in page


def test_expiry_formatted_as_date(client, tenants, db):
    """A stored ISO expiry is shown in the page's date format and language, and a
    value that does not parse is shown as stored."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="os:root",
        action="lti_registration.url_issued",
        target="lti_registration_link:1",
        detail={"expires_at": "2026-03-21T09:30:00+00:00"},
    )
    _record(
        db,
        alpha,
        actor="os:root",
        action="lti_registration.url_issued",
        target="lti_registration_link:2",
        detail={"expires_at": "next week"},
    )
    _sign_in_admin(client, db, alpha)

    english = _audit_page(client)
    french = _audit_page(client, language="fr")

    assert "2026-03-21T09:30" not in english
    assert 'Expires: <span dir="auto">March 21, 2026' in english
    assert "9:30:00" in english
    assert "21 mars 2026" in french
    assert 'Expires: <span dir="auto">next week</span>' in english


def test_revoked_link_reason_labelled(client, tenants, db):
    """A link revoked because its creator was disabled shows that reason in words."""
    alpha, _ = tenants
    _record(
        db,
        alpha,
        actor="os:root",
        action="lti_registration.url_revoked",
        target="lti_registration_link:1",
        detail={"created_by": "account:3", "revoked_because": "creator_disabled"},
    )
    _sign_in_admin(client, db, alpha)

    page = _audit_page(client)

    assert (
        'Revoked because: <span dir="auto">the account that created it was '
        "disabled</span>"
    ) in page
