"""Disabling and enabling admin accounts on the admin pages: who may, what a disabled
account can no longer do, and the audit entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lti_tool.account_access import (
    REASON_MAX,
    LastEnabledAdmin,
    OwnAccount,
    disable_account,
    enable_account,
)
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    issue_token,
)
from lti_tool.lti.registration_links import issue_registration_link
from lti_tool.models import RegistrationLink
from tests.support.account_cookie import account_session_transaction

from .conftest import PASSWORD, add_account, sign_in

COOKIE = "hpass_account"
ADMIN = "admin@alpha.org"
COLLEAGUE = "colleague@alpha.org"
BETA_ADMIN = "admin@beta.org"


@pytest.fixture
def alpha_admins(client, db, tenants):
    """Two admins of alpha, the first signed in on `client`, and one admin of beta."""
    alpha, beta = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    role = AccountRole.PROVIDER_ADMIN
    colleague = add_account(db, COLLEAGUE, role, alpha.provider_id)
    beta_admin = add_account(db, BETA_ADMIN, role, beta.provider_id)
    sign_in(client, ADMIN)
    return admin, colleague, beta_admin


def post_csrf(client, path: str, **extra):
    return client.post(path, data={"csrf": "test-csrf"}, **extra)


def stored(db, account_id: int) -> Account:
    db.expire_all()
    return db.get(Account, account_id)


def audit_actions(db, account_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target == f"account:{account_id}")
            .order_by(AuditEvent.id)
        )
    )


def test_accounts_page_lists_own_admins(client, alpha_admins):
    """The page lists the provider's admins and no other provider's."""
    page = client.get("/admin/accounts").get_data(as_text=True)

    assert ADMIN in page
    assert COLLEAGUE in page
    assert BETA_ADMIN not in page
    assert 'href="/admin/accounts"' in page


def test_arabic_button_isolates_email(client, alpha_admins):
    """On an Arabic accounts page, the screen-reader text of each button names the
    admin's email isolated left to right."""
    page = client.get("/admin/accounts?lang=ar").get_data(as_text=True)
    isolated = f'<span class="visually-hidden"> <bdi dir="ltr">{COLLEAGUE}</bdi></span>'

    assert '<html lang="ar" dir="rtl">' in page
    assert f"{isolated}</button>" in page
    assert f"{isolated}</label>" in page
    assert f'<span class="visually-hidden"> {COLLEAGUE}</span>' not in page


def test_disable_colleague(client, db, alpha_admins):
    """An admin disables another admin of the provider, with an audit entry."""
    admin, colleague, _ = alpha_admins

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))

    assert response.status_code == 303
    assert stored(db, colleague.id).disabled_at is not None
    assert f'<bdi dir="ltr">{COLLEAGUE}</bdi> is disabled.' in page
    assert event.actor == f"account:{admin.id}"
    assert event.target == f"account:{colleague.id}"
    assert event.provider_id == colleague.provider_id


def test_disabled_session_ends_at_once(app, client, db, alpha_admins):
    """The disabled admin's open session and a replayed cookie are signed out."""
    _, colleague, _ = alpha_admins
    browser = app.test_client()
    sign_in(browser, COLLEAGUE)
    cookie = browser.get_cookie(COOKIE).value
    assert browser.get("/admin/audit").status_code == 200

    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    open_session = browser.get("/admin/audit")
    replay = app.test_client()
    replay.set_cookie(COOKIE, cookie)
    replayed = replay.get("/admin/audit")

    assert open_session.status_code == 303
    assert "/account/sign-in" in open_session.headers["Location"]
    assert replayed.status_code == 303
    assert "/account/sign-in" in replayed.headers["Location"]


def test_disabled_cookie_replay_with_generation(app, client, db, alpha_admins):
    """A cookie edited to carry the new session generation is still signed out."""
    _, colleague, _ = alpha_admins
    browser = app.test_client()
    sign_in(browser, COLLEAGUE)

    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    with account_session_transaction(browser) as session:
        session["account_generation"] = stored(db, colleague.id).session_generation
    response = browser.get("/admin/audit")

    assert response.status_code == 303
    assert "/account/sign-in" in response.headers["Location"]


def test_disabled_sign_in_message(app, client, db, alpha_admins):
    """The right password of a disabled account gets a message naming the fix."""
    _, colleague, _ = alpha_admins
    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    browser = app.test_client()

    right = sign_in(browser, COLLEAGUE, PASSWORD)
    wrong = sign_in(browser, COLLEAGUE, "not the password at all")
    page = right.get_data(as_text=True)

    assert right.status_code == 403
    assert "This account is disabled" in page
    assert "Ask an admin of your provider to enable it again." in page
    assert wrong.status_code == 401
    assert "disabled" not in wrong.get_data(as_text=True)
    assert browser.get("/admin/").status_code == 303


def test_disabled_sign_in_in_french(app, client, db, alpha_admins):
    """The disabled-account message follows the browser's language."""
    _, colleague, _ = alpha_admins
    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    browser = app.test_client()

    response = sign_in(browser, COLLEAGUE, accept_language="fr")

    assert "Ce compte est désactivé" in response.get_data(as_text=True)


def test_disabled_reset_sends_nothing(app, client, db, alpha_admins, monkeypatch):
    """A reset request for a disabled account queues no email."""
    _, colleague, _ = alpha_admins
    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    queued = []
    celery = app.extensions["celery"]
    monkeypatch.setattr(
        celery, "send_task", lambda name, args=None, **_: queued.append(args)
    )
    browser = app.test_client()
    with account_session_transaction(browser) as session:
        session["csrf"] = "test-csrf"

    response = browser.post(
        "/account/reset", data={"csrf": "test-csrf", "email": COLLEAGUE}
    )

    assert response.status_code == 200
    assert queued == []


def test_disabled_old_reset_link_rejected(app, client, db, alpha_admins):
    """A reset link issued before the account was disabled sets no password."""
    _, colleague, _ = alpha_admins
    token = issue_token(
        db,
        TokenPurpose.PASSWORD_RESET,
        email=COLLEAGUE,
        provider_id=colleague.provider_id,
        account_id=colleague.id,
    )
    db.commit()
    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    browser = app.test_client()
    with account_session_transaction(browser) as session:
        session["csrf"] = "test-csrf"

    form = browser.get(f"/account/reset/{token}")
    posted = browser.post(
        f"/account/reset/{token}",
        data={
            "csrf": "test-csrf",
            "password": "a brand new passphrase",
            "password_repeat": "a brand new passphrase",
        },
    )

    assert form.status_code == 403
    assert "This account is disabled" in form.get_data(as_text=True)
    assert posted.status_code == 403
    assert browser.get("/admin/").status_code == 303
    assert sign_in(browser, COLLEAGUE, "a brand new passphrase").status_code == 401


def test_enable_colleague(app, client, db, alpha_admins):
    """An enabled account signs in again with its old password, audited."""
    _, colleague, _ = alpha_admins
    post_csrf(client, f"/admin/accounts/{colleague.id}/disable")

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/enable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.status_code == 303
    assert f'<bdi dir="ltr">{COLLEAGUE}</bdi> is enabled' in page
    assert stored(db, colleague.id).disabled_at is None
    assert sign_in(app.test_client(), COLLEAGUE).status_code == 303
    assert audit_actions(db, colleague.id) == ["account.disabled", "account.enabled"]


def test_disable_own_account_rejected(client, db, alpha_admins):
    """An admin cannot disable the account they are signed in with."""
    admin, _, _ = alpha_admins

    response = post_csrf(client, f"/admin/accounts/{admin.id}/disable")

    assert response.status_code == 409
    assert "You cannot disable the account you are signed in with." in (
        response.get_data(as_text=True)
    )
    assert stored(db, admin.id).disabled_at is None
    assert client.get("/admin/").status_code == 200
    assert audit_actions(db, admin.id) == []


def test_disable_other_provider_rejected(client, db, alpha_admins):
    """Another provider's admin is a 404 and stays enabled."""
    _, _, beta_admin = alpha_admins

    disabled = post_csrf(client, f"/admin/accounts/{beta_admin.id}/disable")
    enabled = post_csrf(client, f"/admin/accounts/{beta_admin.id}/enable")

    assert disabled.status_code == 404
    assert enabled.status_code == 404
    assert BETA_ADMIN not in disabled.get_data(as_text=True)
    assert stored(db, beta_admin.id).disabled_at is None
    assert audit_actions(db, beta_admin.id) == []


def test_disable_operator_rejected(client, db, alpha_admins):
    """An operator's account is not on a provider's list and cannot be disabled."""
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)

    response = post_csrf(client, f"/admin/accounts/{operator.id}/disable")

    assert response.status_code == 404
    assert stored(db, operator.id).disabled_at is None


def test_disable_needs_csrf(client, db, alpha_admins):
    """A post without the form's token is rejected."""
    _, colleague, _ = alpha_admins

    response = client.post(f"/admin/accounts/{colleague.id}/disable")

    assert response.status_code == 400
    assert stored(db, colleague.id).disabled_at is None


def test_operator_keeps_last_admin(client, db, tenants):
    """An operator cannot disable the last enabled admin of a provider on the page."""
    alpha, _ = tenants
    only = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")
    client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": alpha.provider_id}
    )

    response = post_csrf(client, f"/admin/accounts/{only.id}/disable")

    assert response.status_code == 409
    assert "last enabled admin" in response.get_data(as_text=True)
    assert stored(db, only.id).disabled_at is None


def test_operator_disables_admin(client, db, alpha_admins):
    """An operator acting for the provider disables one of its admins."""
    _, colleague, _ = alpha_admins
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")
    provider_id = colleague.provider_id
    client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": provider_id}
    )

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))

    assert response.status_code == 303
    assert stored(db, colleague.id).disabled_at is not None
    assert event.actor == f"account:{operator.id}"


def test_disable_twice_changes_nothing(db, alpha_admins):
    """A second disable returns False and adds no audit entry."""
    admin, colleague, _ = alpha_admins

    first = disable_account(db, colleague, actor="test", acting_account=admin)
    second = disable_account(db, colleague, actor="test", acting_account=admin)
    db.commit()

    assert first.changed is True
    assert second.changed is False
    assert audit_actions(db, colleague.id) == ["account.disabled"]


def test_enable_enabled_changes_nothing(db, alpha_admins):
    """Enabling an enabled account returns False and adds no audit entry."""
    _, colleague, _ = alpha_admins

    assert enable_account(db, colleague, actor="test") is False
    assert audit_actions(db, colleague.id) == []


def test_rules_raise_named_errors(db, alpha_admins):
    """The own-account and last-admin rules raise their own error types."""
    admin, colleague, _ = alpha_admins
    disable_account(db, colleague, actor="test", acting_account=admin)

    with pytest.raises(OwnAccount):
        disable_account(db, admin, actor="test", acting_account=admin)
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    with pytest.raises(LastEnabledAdmin):
        disable_account(db, admin, actor="test", acting_account=operator)


def invite(db, inviter: Account, email: str, **extra) -> str:
    """Store an invitation to the inviter's provider and return its token."""
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email=email,
        provider_id=inviter.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=inviter.id,
        **extra,
    )
    db.commit()
    return token


def accept(app, token: str, headers: dict | None = None):
    """Open an invitation link in a new browser, then post its form."""
    browser = app.test_client()
    with account_session_transaction(browser) as session:
        session["csrf"] = "test-csrf"
    form = browser.get(f"/account/invitation/{token}", headers=headers)
    posted = browser.post(
        f"/account/invitation/{token}",
        data={"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD},
        headers=headers,
    )
    return form, posted


def test_disable_withdraws_invitations(app, client, db, alpha_admins):
    """Disabling withdraws the pending invitations the account sent, audited."""
    admin, colleague, _ = alpha_admins
    first = invite(db, colleague, "first@alpha.org")
    invite(db, colleague, "second@alpha.org")
    own = invite(db, admin, "kept@alpha.org")

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    remaining = db.scalars(select(AccountToken.email)).all()
    withdrawn = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "invitation.withdrawn")
        .order_by(AuditEvent.id)
    ).all()
    disabled = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "account.disabled")
    )
    form, posted = accept(app, first)

    assert response.status_code == 303
    assert "2 pending invitations it sent were withdrawn" in page
    assert remaining == ["kept@alpha.org"]
    assert [event.target for event in withdrawn] == [
        "email:first@alpha.org",
        "email:second@alpha.org",
    ]
    assert withdrawn[0].actor == f"account:{admin.id}"
    assert withdrawn[0].provider_id == colleague.provider_id
    assert withdrawn[0].detail == {
        "invited_by": colleague.id,
        "withdrawn_because": "inviter_disabled",
    }
    assert disabled.detail["invitations_withdrawn"] == 2
    assert form.status_code == 404
    assert posted.status_code == 404
    assert accept(app, own)[1].status_code == 303


def test_disable_withdraws_one_invitation(client, db, alpha_admins):
    """The notice uses the singular for one withdrawn invitation."""
    _, colleague, _ = alpha_admins
    invite(db, colleague, "first@alpha.org")

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "1 pending invitation it sent was withdrawn" in page


def test_disable_without_invitations_notice(client, db, alpha_admins):
    """The notice states that no invitation was pending when none was."""
    _, colleague, _ = alpha_admins

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "It had no pending invitations to withdraw." in page


def test_disable_keeps_used_and_expired(db, alpha_admins):
    """Accepted and expired invitations are not counted nor deleted."""
    admin, colleague, _ = alpha_admins
    invite(db, colleague, "used@alpha.org")
    used = db.scalar(select(AccountToken).where(AccountToken.email == "used@alpha.org"))
    used.used_at = used.created_at
    invite(
        db,
        colleague,
        "expired@alpha.org",
        now=used.created_at - timedelta(days=30),
    )

    outcome = disable_account(db, colleague, actor="test", acting_account=admin)
    db.commit()

    assert outcome.invitations_withdrawn == 0
    assert len(db.scalars(select(AccountToken)).all()) == 2


def test_refused_disable_keeps_invitations(client, db, alpha_admins):
    """A rejected disable withdraws nothing."""
    admin, _, _ = alpha_admins
    invite(db, admin, "new@alpha.org")

    response = post_csrf(client, f"/admin/accounts/{admin.id}/disable")
    db.expire_all()

    assert response.status_code == 409
    assert db.scalars(select(AccountToken.email)).all() == ["new@alpha.org"]


def test_disabled_inviter_invitation_rejected(app, db, alpha_admins):
    """An invitation left pending by a disabled inviter cannot be accepted."""
    _, colleague, _ = alpha_admins
    token = invite(db, colleague, "new@alpha.org")
    # Disabled directly, as before disabling withdrew invitations.
    colleague.disabled_at = colleague.created_at
    db.commit()

    form, posted = accept(app, token)

    assert form.status_code == 403
    assert "sent by an account that has since been disabled" in (
        form.get_data(as_text=True)
    )
    assert posted.status_code == 403
    assert "Ask an admin of the provider to send you a new invitation." in (
        posted.get_data(as_text=True)
    )
    assert db.scalar(select(Account).where(Account.email == "new@alpha.org")) is None
    assert db.scalar(select(AccountToken)).used_at is None


def test_disabled_inviter_message_in_french(app, db, alpha_admins):
    """The disabled-inviter message follows the browser's language."""
    _, colleague, _ = alpha_admins
    token = invite(db, colleague, "new@alpha.org")
    colleague.disabled_at = colleague.created_at
    db.commit()

    form, _ = accept(app, token, headers={"Accept-Language": "fr"})

    assert "désactivé" in form.get_data(as_text=True)


def test_disable_form_stores_reason(client, db, alpha_admins):
    """The reason typed on the page is stored and shown on the audit log page."""
    _, colleague, _ = alpha_admins

    response = client.post(
        f"/admin/accounts/{colleague.id}/disable",
        data={"csrf": "test-csrf", "reason": "  Left the academy  "},
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))
    audit_page = client.get("/admin/audit").get_data(as_text=True)

    assert response.status_code == 303
    assert event.detail["reason"] == "Left the academy"
    assert "Left the academy" in audit_page


def test_disable_form_blank_reason(client, db, alpha_admins):
    """A blank reason stores no reason."""
    _, colleague, _ = alpha_admins

    client.post(
        f"/admin/accounts/{colleague.id}/disable",
        data={"csrf": "test-csrf", "reason": "   "},
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))

    assert "reason" not in event.detail


def test_disable_form_reason_field(client, alpha_admins):
    """Each disable form has a labelled, optional reason field with its hint."""
    _, colleague, _ = alpha_admins

    page = client.get("/admin/accounts").get_data(as_text=True)
    field = f"reason-{colleague.id}"

    assert f'<label for="{field}">Reason (optional)' in page
    assert f'id="{field}" name="reason"' in page
    assert f'aria-describedby="{field}-hint"' in page
    assert "At most 500 characters." in page


def test_disable_form_reason_max_length(client, db, alpha_admins):
    """A reason of exactly the maximum length is accepted."""
    _, colleague, _ = alpha_admins

    response = client.post(
        f"/admin/accounts/{colleague.id}/disable",
        data={"csrf": "test-csrf", "reason": "r" * REASON_MAX},
    )

    assert response.status_code == 303
    assert stored(db, colleague.id).is_disabled


def test_disable_form_reason_too_long(client, db, alpha_admins):
    """A reason over the maximum is rejected beside its field and nothing changes."""
    _, colleague, _ = alpha_admins
    reason = "r" * (REASON_MAX + 1)

    response = client.post(
        f"/admin/accounts/{colleague.id}/disable",
        data={"csrf": "test-csrf", "reason": reason},
    )
    page = response.get_data(as_text=True)
    field = f"reason-{colleague.id}"

    assert response.status_code == 400
    assert "The reason has 501 characters, more than the maximum of 500." in page
    assert f'id="{field}-error"' in page
    assert f'aria-describedby="{field}-hint {field}-error" aria-invalid="true"' in page
    assert f'href="#{field}"' in page
    assert f'Reason for disabling <bdi dir="ltr">{COLLEAGUE}</bdi>' in page
    assert f'value="{reason}"' in page
    assert stored(db, colleague.id).disabled_at is None
    assert audit_actions(db, colleague.id) == []


def test_disable_form_reason_in_arabic(client, alpha_admins):
    """The reason field's label and error follow the browser's language."""
    _, colleague, _ = alpha_admins
    arabic = {"Accept-Language": "ar"}

    page = client.get("/admin/accounts", headers=arabic).get_data(as_text=True)
    rejected = client.post(
        f"/admin/accounts/{colleague.id}/disable",
        data={"csrf": "test-csrf", "reason": "r" * (REASON_MAX + 1)},
        headers=arabic,
    ).get_data(as_text=True)

    assert "Reason (optional)" not in page
    assert "The reason has" not in rejected
    assert "501" in rejected


def add_link(db, provider_id: int, creator: Account) -> tuple[RegistrationLink, str]:
    """Store an open registration link created by `creator`; return it and its token."""
    link, token = issue_registration_link(
        db, provider_id=provider_id, actor=f"account:{creator.id}"
    )
    db.commit()
    return link, token


def test_disable_revokes_registration_links(client, db, alpha_admins):
    """Disabling revokes the open registration links the account created, audited,
    and their URLs return 410 Gone afterwards."""
    admin, colleague, beta_admin = alpha_admins
    first, first_token = add_link(db, colleague.provider_id, colleague)
    second, _ = add_link(db, colleague.provider_id, colleague)
    own, own_token = add_link(db, admin.provider_id, admin)
    beta, beta_token = add_link(db, beta_admin.provider_id, beta_admin)

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    db.expire_all()
    revoked = db.scalars(
        select(RegistrationLink.id)
        .where(RegistrationLink.revoked_at.is_not(None))
        .order_by(RegistrationLink.id)
    ).all()
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "lti_registration.url_revoked")
        .order_by(AuditEvent.id)
    ).all()
    disabled = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "account.disabled")
    )
    gone = client.get(f"/lti/register/{first_token}")

    assert response.status_code == 303
    assert "2 open registration links it created were revoked" in page
    assert revoked == [first.id, second.id]
    assert [event.target for event in events] == [
        f"lti_registration_link:{first.id}",
        f"lti_registration_link:{second.id}",
    ]
    assert events[0].actor == f"account:{admin.id}"
    assert events[0].provider_id == colleague.provider_id
    assert events[0].detail == {
        "created_by": f"account:{colleague.id}",
        "revoked_because": "creator_disabled",
    }
    assert disabled.detail["registration_links_revoked"] == 2
    assert gone.status_code == 410
    assert "was revoked" in gone.get_data(as_text=True)
    # The other admin's link and the other provider's link stay open: without the
    # platform's parameters they get 400, not 410.
    assert client.get(f"/lti/register/{own_token}").status_code == 400
    assert client.get(f"/lti/register/{beta_token}").status_code == 400
    assert db.get(RegistrationLink, own.id).revoked_at is None
    assert db.get(RegistrationLink, beta.id).revoked_at is None


def test_disable_revokes_one_link(client, db, alpha_admins):
    """The notice uses the singular for one revoked registration link."""
    _, colleague, _ = alpha_admins
    add_link(db, colleague.provider_id, colleague)

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "1 open registration link it created was revoked" in page


def test_disable_without_links_notice(client, db, alpha_admins):
    """The notice states that no registration link was open when none was."""
    _, colleague, _ = alpha_admins

    response = post_csrf(client, f"/admin/accounts/{colleague.id}/disable")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "It had no open registration links to revoke." in page


def test_disable_keeps_closed_links(db, alpha_admins):
    """Used, revoked and expired links are neither counted nor changed."""
    admin, colleague, _ = alpha_admins
    used, _ = add_link(db, colleague.provider_id, colleague)
    used.used_at = used.created_at
    revoked, _ = add_link(db, colleague.provider_id, colleague)
    revoked.revoked_at = revoked.created_at
    expired, _ = issue_registration_link(
        db,
        provider_id=colleague.provider_id,
        actor=f"account:{colleague.id}",
        now=used.created_at - timedelta(days=30),
    )
    db.commit()

    outcome = disable_account(db, colleague, actor="test", acting_account=admin)
    db.commit()
    db.expire_all()

    assert outcome.registration_links_revoked == 0
    assert db.get(RegistrationLink, used.id).revoked_at is None
    assert db.get(RegistrationLink, expired.id).revoked_at is None
    assert db.get(RegistrationLink, revoked.id).revoked_at == revoked.created_at


def test_refused_disable_keeps_links(client, db, alpha_admins):
    """A rejected disable revokes nothing."""
    admin, _, _ = alpha_admins
    link, _ = add_link(db, admin.provider_id, admin)

    response = post_csrf(client, f"/admin/accounts/{admin.id}/disable")
    db.expire_all()

    assert response.status_code == 409
    assert db.get(RegistrationLink, link.id).revoked_at is None


def sign_in_operator_for(client, db, provider_id: int) -> None:
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")
    client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": provider_id}
    )


def test_accounts_page_without_admins(client, db, tenants):
    """A provider without admin accounts gets a line that states it and links to the
    invitation page, instead of an empty table."""
    alpha, _ = tenants
    sign_in_operator_for(client, db, alpha.provider_id)

    response = client.get("/admin/accounts")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "<bdi>Alpha</bdi> has no admin account yet." in page
    assert "create an invitation link" in page
    assert '<a href="/admin/invitations">Invite an admin</a></p>' in page
    assert "<table>" not in page


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "<bdi>Alpha</bdi> n’a encore"),
        ("es", "<bdi>Alpha</bdi> aún no tiene"),
        ("ar", "أي حساب مسؤول بعد"),
    ],
)
def test_accounts_page_without_admins_translated(
    client, db, tenants, language, expected
):
    """The line for a provider without admins follows the browser's language."""
    alpha, _ = tenants
    sign_in_operator_for(client, db, alpha.provider_id)

    response = client.get("/admin/accounts", headers={"Accept-Language": language})
    page = response.get_data(as_text=True)

    assert 'id="no-admins"' in page
    assert expected in page
    assert "has no admin account yet" not in page
