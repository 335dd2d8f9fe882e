"""Words for the audit log page: event labels, detail labels and known values.

The stored events keep their codes (`backfill.started`, `trigger: manual`), which
support staff and log searches use. The page shows a translated label beside each
code. A code without a label here is shown as stored.
"""

from __future__ import annotations

from lti_tool.i18n import LANGUAGES
from lti_tool.i18n import gettext as _

# Suffixes of the actions that only read: lists, views, previews, explanations,
# exports and connection tests. Every other action changes something.
READ_ACTION_SUFFIXES = (
    ".listed",
    "_listed",
    ".shown",
    ".previewed",
    ".explained",
    ".exported",
    ".tested",
)


def is_read_action(action: str) -> bool:
    return action.endswith(READ_ACTION_SUFFIXES)


def action_labels() -> dict[str, str]:
    """Return the translated label of each audit action the bridge records."""
    return {
        "account.created": _("Account created"),
        "account.invited": _("Admin invited"),
        "account.invitation_notice_sent": _("Invitation notice sent"),
        "account.password_reset": _("Password reset"),
        "account.password_changed": _("Password changed"),
        "account.language_changed": _("Account language changed"),
        "account.disabled": _("Account disabled"),
        "account.enabled": _("Account enabled"),
        "invitation.withdrawn": _("Invitation withdrawn"),
        "achievement.created": _("Badge created"),
        "achievement.updated": _("Badge changed"),
        "achievement.corrected": _("Badge corrected, new version issued"),
        "achievement.listed": _("Badges listed"),
        "achievement.shown": _("Badge viewed"),
        "achievement.previewed": _("Badge award previewed"),
        "award.listed": _("Awards listed"),
        "award.shown": _("Award viewed"),
        "award.explained": _("Award explained"),
        "credential.revoked": _("Badge revoked"),
        "credential.exported": _("Badges exported"),
        "backfill.started": _("Award backfill started"),
        "backfill.joined": _("Award backfill joined a running one"),
        "backfill.cancel_requested": _("Award backfill cancellation requested"),
        "backfill.listed": _("Award backfills listed"),
        "backfill.shown": _("Award backfill viewed"),
        "delivery.retried": _("Delivery retried"),
        "delivery.discarded": _("Delivery discarded"),
        "delivery.listed": _("Deliveries listed"),
        "fact.listed": _("Completions listed"),
        "outbox.retried": _("Failed delivery retried"),
        "learner.exported": _("Learner data exported"),
        "learner.forgotten": _("Learner data erased"),
        "lms_connection.created": _("LMS site connected"),
        "lms_connection.disconnected": _("LMS site disconnected"),
        "lms_connection.tested": _("LMS site connection tested"),
        "lms_connection.token_replaced": _("LMS site API token replaced"),
        "lms_connection.webhook_secret_issued": _("Webhook secret issued"),
        "lms_connection.listed": _("LMS sites listed"),
        "lms_connection.activities_listed": _("Course activities listed"),
        "lti_registration.created": _("LTI platform registered"),
        "lti_registration.updated": _("LTI registration changed"),
        "lti_registration.removed": _("LTI registration removed"),
        "lti_registration.url_issued": _("Dynamic registration URL issued"),
        "lti_registration.url_revoked": _("Dynamic registration URL revoked"),
        "deployment.approved": _("LTI deployment approved"),
        "key.rotated": _("Signing key rotated"),
        "key.listed": _("Signing keys listed"),
        "provider.created": _("Provider created"),
        "provider.removed": _("Provider removed"),
        "provider.listed": _("Providers listed"),
        "provider.shown": _("Provider viewed"),
        "api_token.created": _("API token created"),
        "api_token.revoked": _("API token revoked"),
        "api_token.listed": _("API tokens listed"),
    }


def detail_labels() -> dict[str, str]:
    """Return the translated label of each detail field with a known meaning."""
    return {
        "course_id": _("LMS course id"),
        "achievement": _("Badge"),
        "trigger": _("Started by"),
        "rule": _("Award rule"),
        "reason": _("Reason"),
        "email": _("Email address"),
        "status": _("Status"),
        "kind": _("Kind"),
        "name": _("Name"),
        "base_url": _("Site address"),
        "issuer": _("Issuer"),
        "client_id": _("Client id"),
        "changed": _("Changed fields"),
        "fields": _("Changed fields"),
        "new_versions": _("New versions"),
        "role": _("Role"),
        "invited_by": _("Invited by"),
        "invitations_withdrawn": _("Invitations withdrawn"),
        "withdrawn_because": _("Withdrawn because"),
        "registration_links_revoked": _("Registration links revoked"),
        "revoked_because": _("Revoked because"),
        "ok": _("Succeeded"),
        "token_tested": _("Token tested"),
        "lms_checked": _("Checked against the LMS"),
        "last_error": _("Last error"),
        "previous_state": _("Previous state"),
        "achievements": _("Badges"),
        "courses": _("Courses"),
        "lti_registrations": _("LTI registrations"),
        "backfills_cancelled": _("Award backfills cancelled"),
        "new_key": _("New key"),
        "query": _("Query"),
        "expires_at": _("Expires"),
        "created_by": _("Created by"),
        "locale": _("Language"),
        "previous_locale": _("Previous language"),
    }


def value_labels() -> dict[tuple[str, str], str]:
    """Return the translated label of each known (detail field, stored value) pair."""
    labels = {
        ("trigger", "manual"): _("an admin, by hand"),
        ("trigger", "achievement_created"): _("the creation of the badge"),
        ("trigger", "rule_changed"): _("a change of the award rule"),
        ("rule", "course_completed"): _("course completed"),
        ("rule", "activity_completed"): _("activity completed"),
        ("rule", "activities_completed_at_least"): _("enough activities completed"),
        ("rule", "grade_at_least"): _("minimum grade"),
        ("role", "provider_admin"): _("provider admin"),
        ("role", "operator"): _("HPass operator"),
        ("withdrawn_because", "inviter_disabled"): _(
            "the account that sent it was disabled"
        ),
        ("withdrawn_because", "replaced"): _(
            "a newer invitation to the same address replaced it"
        ),
        ("revoked_because", "creator_disabled"): _(
            "the account that created it was disabled"
        ),
        ("status", "pending"): _("waiting"),
        ("status", "running"): _("running"),
        ("status", "done"): _("finished"),
        ("status", "cancelled"): _("cancelled"),
        ("status", "failed"): _("failed"),
    }
    # Each language is named in itself, as the language switcher names it.
    for key in ("locale", "previous_locale"):
        for code, name in LANGUAGES.items():
            labels[(key, code)] = name

    return labels


def yes_no(value: bool) -> str:
    return _("yes") if value else _("no")
