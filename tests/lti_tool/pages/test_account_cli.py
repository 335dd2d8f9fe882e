"""`hpass-bridge account disable|enable`: operators disable and enable any account
from the command line."""

from __future__ import annotations

import json

from sqlalchemy import select

from lti_tool.account_mail import send_password_reset
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    issue_token,
)
from lti_tool.cli import main
from lti_tool.lti.registration_links import issue_registration_link
from lti_tool.models import RegistrationLink

from .conftest import add_account, sign_in
from .test_operator_cli import cli_env

ADMIN = "admin@alpha.org"


def run(app, settings, *arguments):
    runner = app.test_cli_runner()
    return runner.invoke(main, ["account", *arguments], env=cli_env(settings))


def stored(db, account_id: int) -> Account:
    db.expire_all()
    return db.get(Account, account_id)


def test_cli_disable_account(app, settings, db, tenants):
    """The command disables the account, ends its session and audits the reason."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    browser = app.test_client()
    sign_in(browser, ADMIN)

    result = run(
        app, settings, "disable", "Admin@Alpha.org", "--reason", "left", "--json"
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))

    assert result.exit_code == 0, result.output
    output = json.loads(result.output.splitlines()[-1])
    assert output["status"] == "disabled"
    assert output["changed"] is True
    assert stored(db, admin.id).disabled_at is not None
    assert browser.get("/admin/").status_code == 303
    assert event.actor.startswith("os:")
    assert event.provider_id == alpha.provider_id
    assert event.detail == {
        "email": ADMIN,
        "invitations_withdrawn": 0,
        "registration_links_revoked": 0,
        "reason": "left",
    }
    assert output["invitations_withdrawn"] == 0
    assert output["registration_links_revoked"] == 0


def test_cli_disable_sole_admin(app, settings, db, tenants):
    """From the command line the last enabled admin of a provider can be disabled."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    result = run(app, settings, "disable", ADMIN)

    assert result.exit_code == 0, result.output
    assert "disabled; its sessions have ended, 0 pending invitations" in (result.output)
    assert "and 0 open registration links it created were revoked" in result.output
    assert stored(db, admin.id).is_disabled


def test_cli_disable_operator(app, settings, db):
    """An operator account is disabled and its reset email is not sent."""
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)

    result = run(app, settings, "disable", "op@hpass.org")
    with app.app_context():
        outcome = send_password_reset.run(operator.id)

    assert result.exit_code == 0, result.output
    assert stored(db, operator.id).is_disabled
    assert outcome == "disabled"


def test_cli_disable_twice(app, settings, db, tenants):
    """A second disable reports no change and adds no audit entry."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    run(app, settings, "disable", ADMIN)
    again = run(app, settings, "disable", ADMIN)
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.target == f"account:{admin.id}")
    ).all()

    assert again.exit_code == 0, again.output
    assert "already disabled; nothing changed" in again.output
    assert len(events) == 1


def test_cli_enable_account(app, settings, db, tenants):
    """An enabled account signs in again with its old password."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    run(app, settings, "disable", ADMIN)

    result = run(app, settings, "enable", ADMIN, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["status"] == "enabled"
    assert stored(db, admin.id).disabled_at is None
    assert sign_in(app.test_client(), ADMIN).status_code == 303


def test_cli_overlong_reason_refused(app, settings, db, tenants):
    """A reason longer than the audit log keeps exits 2 and leaves the account as
    it was, as the admin page does."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    result = run(app, settings, "disable", ADMIN, "--reason", "r" * 501, "--json")

    assert result.exit_code == 2
    output = json.loads(result.output.splitlines()[0])
    assert output["error"] == "reason_too_long"
    assert "501 characters long, more than the 500" in output["message"]
    assert stored(db, admin.id).disabled_at is None


def test_cli_unknown_email(app, settings, db):
    """An unknown email exits 2 and names the value."""
    result = run(app, settings, "disable", "nobody@alpha.org", "--json")

    assert result.exit_code == 2
    output = json.loads(result.output.splitlines()[0])
    assert output["error"] == "account_not_found"
    assert "nobody@alpha.org" in output["message"]


def test_cli_disable_withdraws_invitations(app, settings, db, tenants):
    """The command withdraws the account's pending invitations and counts them."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    for email in ("one@alpha.org", "two@alpha.org"):
        issue_token(
            db,
            TokenPurpose.INVITATION,
            email=email,
            provider_id=alpha.provider_id,
            role=AccountRole.PROVIDER_ADMIN,
            created_by_account_id=admin.id,
        )
    db.commit()

    result = run(app, settings, "disable", ADMIN)
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn")
    ).all()

    assert result.exit_code == 0, result.output
    assert "2 pending invitations it sent were withdrawn" in result.output
    assert db.scalars(select(AccountToken)).all() == []
    assert len(events) == 2
    assert all(event.actor.startswith("os:") for event in events)


def test_cli_disable_json_counts_invitations(app, settings, db, tenants):
    """The JSON output carries the number of withdrawn invitations."""
    alpha, _ = tenants
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email="new@alpha.org",
        provider_id=alpha.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=operator.id,
    )
    db.commit()

    result = run(app, settings, "disable", "op@hpass.org", "--json")
    output = json.loads(result.output.splitlines()[-1])
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn")
    )

    assert result.exit_code == 0, result.output
    assert output["invitations_withdrawn"] == 1
    assert event.provider_id == alpha.provider_id


def test_cli_disable_revokes_links(app, settings, db, tenants):
    """The command revokes the account's open registration links and counts them,
    in the text and in the JSON output."""
    alpha, _ = tenants
    admin = add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    colleague = add_account(
        db, "colleague@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    issue_registration_link(
        db, provider_id=alpha.provider_id, actor=f"account:{admin.id}"
    )
    kept, _ = issue_registration_link(
        db, provider_id=alpha.provider_id, actor=f"account:{colleague.id}"
    )
    db.commit()

    result = run(app, settings, "disable", ADMIN)
    db.expire_all()
    open_links = db.scalars(
        select(RegistrationLink.id).where(RegistrationLink.revoked_at.is_(None))
    ).all()
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "lti_registration.url_revoked")
    )

    assert result.exit_code == 0, result.output
    assert "1 open registration link it created was revoked" in result.output
    assert open_links == [kept.id]
    assert event.actor.startswith("os:")
    assert event.detail == {
        "created_by": f"account:{admin.id}",
        "revoked_because": "creator_disabled",
    }


def test_cli_disable_json_counts_links(app, settings, db, tenants):
    """The JSON output carries the number of revoked registration links, and an
    operator's links are revoked in every provider."""
    alpha, beta = tenants
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    for provider_id in (alpha.provider_id, beta.provider_id):
        issue_registration_link(
            db, provider_id=provider_id, actor=f"account:{operator.id}"
        )
    db.commit()

    result = run(app, settings, "disable", "op@hpass.org", "--json")
    output = json.loads(result.output.splitlines()[-1])
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "lti_registration.url_revoked")
        .order_by(AuditEvent.id)
    ).all()

    assert result.exit_code == 0, result.output
    assert output["registration_links_revoked"] == 2
    assert [event.provider_id for event in events] == [
        alpha.provider_id,
        beta.provider_id,
    ]
