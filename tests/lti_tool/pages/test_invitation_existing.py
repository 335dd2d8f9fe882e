"""Inviting an address that already has an account.

An admin learns nothing about accounts outside their provider: the invitation page
for such an address is the one a new address gets, and the account's owner gets an
email notice without a link. Inside their own provider, and for an operator, the
form states that the address has an account.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from sqlalchemy import func, select

from lti_tool import account_mail
from lti_tool.account_mail import SEND_INVITATION_NOTICE, send_invitation_notice
from badge_engine.db import utcnow
from badge_engine.models import Provider
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    issue_token,
)

from .conftest import add_account, sign_in

LINK = re.compile(r"http://127\.0\.0\.1:5999/account/invitation/[\w-]+")
NOTICE = re.compile(r'<div class="notice".*?</div>', re.DOTALL)


@pytest.fixture
def queued(app, monkeypatch):
    """The (task name, arguments) pairs the app hands to the broker."""
    sent = []
    monkeypatch.setattr(
        app.extensions["celery"],
        "send_task",
        lambda name, args=None, **_: sent.append((name, args)),
    )
    monkeypatch.delenv("HPASS_SMTP_URL", raising=False)
    return sent


@pytest.fixture
def accounts(db, tenants):
    alpha, beta = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    add_account(db, "second@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    add_account(db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id)
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    return alpha, beta


def _invite(client, address: str):
    return client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": address}
    )


def _notice_shape(page: str, address: str) -> str:
    """Return the page's invitation notice with the address and link blanked."""
    notice = NOTICE.search(page).group(0)
    return LINK.sub("LINK", notice).replace(address, "ADDRESS")


def _run_queued(app, queued) -> list[str]:
    outcomes = []
    for name, args in queued:
        assert name == SEND_INVITATION_NOTICE
        with app.app_context():
            outcomes.append(send_invitation_notice.run(*args))
    return outcomes


def _mails(settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((settings.instance_path / "mail").glob("*.eml"))
    ]


@pytest.mark.parametrize("existing", ["admin@beta.org", "op@hpass.org"])
def test_invite_elsewhere_looks_new(client, db, accounts, queued, existing):
    """An address with an account in another provider, or an operator's, gets the
    same status, notice and link as a new address, and the same database work."""
    alpha, _ = accounts
    sign_in(client, "admin@alpha.org")

    new = _invite(client, "new@alpha.org")
    tokens_after_new = db.scalar(select(func.count(AccountToken.id)))
    existing_response = _invite(client, existing)
    tokens_after_existing = db.scalar(select(func.count(AccountToken.id)))
    new_page = new.get_data(as_text=True)
    existing_page = existing_response.get_data(as_text=True)

    assert new.status_code == 200
    assert existing_response.status_code == 200
    assert LINK.search(existing_page) is not None
    assert _notice_shape(existing_page, existing) == _notice_shape(
        new_page, "new@alpha.org"
    )
    assert "already" not in existing_page
    assert "Beta" not in existing_page
    assert "operator" not in existing_page.lower()
    assert tokens_after_new == 1
    assert tokens_after_existing == 2
    assert [name for name, _ in queued] == [SEND_INVITATION_NOTICE] * 2
    invited_events = db.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.provider_id == alpha.provider_id,
            AuditEvent.action == "account.invited",
        )
    )
    assert invited_events == 2


def test_invite_elsewhere_emails_owner(app, client, db, settings, accounts, queued):
    """The owner of the existing account gets a notice with no link, audited in
    their own provider, and a new address gets no email."""
    alpha, beta = accounts
    sign_in(client, "admin@alpha.org")

    _invite(client, "new@alpha.org")
    _invite(client, "Admin@Beta.org")
    outcomes = _run_queued(app, queued)
    mails = _mails(settings)

    assert outcomes == ["no_account", "sent"]
    assert len(mails) == 1
    assert mails[0]["To"] == "admin@beta.org"
    body = mails[0].get_content()
    assert "Alpha" in body
    assert "already has an HPass badges account" in body
    assert "http" not in body
    assert "/account/" not in body
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.invitation_notice_sent")
    ).all()
    assert len(events) == 1
    assert events[0].provider_id == beta.provider_id
    assert events[0].detail is None
    assert events[0].actor == "bridge"


@pytest.mark.parametrize(
    ("locale", "subject", "line"),
    [
        (
            "fr",
            "Une invitation à Badges HPass pour votre adresse",
            "Si vous souhaitez administrer \u2068Alpha\u2069, demandez à ses "
            "administrateurs d’inviter une autre adresse.",
        ),
        (
            "es",
            "Una invitación a Insignias HPass para su dirección",
            "Si quiere administrar \u2068Alpha\u2069, pida a sus administradores que "
            "inviten a otra dirección.",
        ),
        (
            "ar",
            "دعوة إلى شارات HPass لعنوانك",
            "إذا أردت إدارة \u2068Alpha\u2069، فاطلب من مديريه دعوة عنوان آخر.",
        ),
    ],
)
def test_invite_notice_in_account_language(
    app, client, settings, accounts, queued, monkeypatch, locale, subject, line
):
    """The notice is in the language of the invited account, naming the provider."""
    monkeypatch.setattr(account_mail, "_email_locale", lambda account: locale)
    sign_in(client, "admin@alpha.org")

    _invite(client, "admin@beta.org")
    outcomes = _run_queued(app, queued)
    [mail] = _mails(settings)

    assert outcomes == ["sent"]
    assert mail["Subject"] == subject
    assert line in mail.get_content()


def test_invite_notice_english_by_default(app, client, settings, accounts, queued):
    """An account with no known language gets the notice in English."""
    sign_in(client, "admin@alpha.org")

    _invite(client, "admin@beta.org")
    _run_queued(app, queued)
    [mail] = _mails(settings)

    assert mail["Subject"] == "An invitation to HPass badges for your address"
    assert (
        "If you want to administer \u2068Alpha\u2069, ask its admins"
        in mail.get_content()
    )


def test_invite_notice_arabic_isolates_values(
    app, client, settings, accounts, queued, monkeypatch
):
    """In an Arabic notice the address is isolated left to right (LRI ... PDI) and
    the provider's name in its own direction (FSI ... PDI), as on the admin pages."""
    monkeypatch.setattr(account_mail, "_email_locale", lambda account: "ar")
    sign_in(client, "admin@alpha.org")

    _invite(client, "admin@beta.org")
    _run_queued(app, queued)
    [mail] = _mails(settings)
    first_paragraph = mail.get_content().split("\n\n")[0]

    assert first_paragraph == (
        "دعا أحد مديري \u2068Alpha\u2069 على شارات HPass العنوان "
        "\u2066admin@beta.org\u2069 لإدارة \u2068Alpha\u2069 أيضًا."
    )


def test_invite_notice_strips_name_isolates(app, db, tenants, settings):
    """Isolate characters inside a provider's name are removed, so the isolate
    around the name closes where the name ends."""
    alpha, beta = tenants
    provider = db.get(Provider, alpha.provider_id)
    provider.name = "Alpha\u2067 Academy"
    db.commit()
    add_account(db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id)
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email="admin@beta.org",
        provider_id=alpha.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    invitation_id = db.scalar(
        select(AccountToken.id).where(AccountToken.email == "admin@beta.org")
    )
    db.commit()

    with app.app_context():
        outcome = send_invitation_notice.run(invitation_id)
    [mail] = _mails(settings)

    assert outcome == "sent"
    assert "\u2068Alpha Academy\u2069" in mail.get_content()
    assert "\u2067" not in mail.get_content()


def test_invite_notice_hidden_from_inviter(app, client, db, accounts, queued):
    """The inviting provider's audit page shows an ordinary invitation only."""
    sign_in(client, "admin@alpha.org")
    _invite(client, "admin@beta.org")
    _run_queued(app, queued)

    audit = client.get("/admin/audit").get_data(as_text=True)
    invitations = client.get("/admin/invitations").get_data(as_text=True)

    assert "Admin invited" in audit
    assert "Invitation notice sent" not in audit
    assert "Beta" not in audit
    assert "Beta" not in invitations


def test_invite_notice_skipped_when_withdrawn(app, client, settings, accounts, queued):
    """No notice goes out for an invitation withdrawn before the worker runs."""
    sign_in(client, "admin@alpha.org")
    _invite(client, "admin@beta.org")
    listed = client.get("/admin/invitations").get_data(as_text=True)
    number = re.search(r"/admin/invitations/(\d+)/withdraw", listed).group(1)
    client.post(f"/admin/invitations/{number}/withdraw", data={"csrf": "test-csrf"})

    outcomes = _run_queued(app, queued)

    assert outcomes == ["not_found"]
    assert _mails(settings) == []


def test_invite_disabled_account_skipped(app, client, db, settings, accounts, queued):
    """A disabled account elsewhere is not emailed, though the page is the same."""
    sign_in(client, "admin@alpha.org")
    beta_admin = db.scalar(select(Account).where(Account.email == "admin@beta.org"))
    beta_admin.disabled_at = utcnow()
    db.commit()

    response = _invite(client, "admin@beta.org")
    outcomes = _run_queued(app, queued)

    assert response.status_code == 200
    assert outcomes == ["disabled"]
    assert _mails(settings) == []


def test_invite_own_provider_account_told(client, db, accounts, queued):
    """Inviting an address of the admin's own provider shows that it has an account."""
    sign_in(client, "admin@alpha.org")

    response = _invite(client, "Second@Alpha.org")

    assert response.status_code == 400
    assert "This email already has an account." in response.get_data(as_text=True)
    assert db.scalar(select(func.count(AccountToken.id))) == 0
    assert queued == []


def test_invite_operator_told(client, db, accounts, queued):
    """An operator, who can view every account, is shown that an address has one."""
    alpha, _ = accounts
    sign_in(client, "op@hpass.org")
    client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": alpha.provider_id}
    )

    response = _invite(client, "admin@beta.org")

    assert response.status_code == 400
    assert "This email already has an account." in response.get_data(as_text=True)
    assert db.scalar(select(func.count(AccountToken.id))) == 0
    assert queued == []
