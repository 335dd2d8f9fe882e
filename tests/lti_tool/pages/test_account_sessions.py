"""Ending account sessions: a copied session cookie stops working after sign-out or a
password reset, because sessions are signed cookies the server cannot delete."""

from __future__ import annotations

from sqlalchemy import select

from lti_tool.accounts import (
    Account,
    AccountRole,
    TokenPurpose,
    end_account_sessions,
    issue_token,
)
from tests.support.account_cookie import account_session_transaction

from .conftest import PASSWORD, add_account, sign_in

COOKIE = "hpass_account"
EMAIL = "admin@alpha.org"
NEW_PASSWORD = "a brand new passphrase"


def saved_cookie(client) -> str:
    return client.get_cookie(COOKIE).value


def restore_cookie(client, value: str) -> None:
    client.set_cookie(COOKIE, value)


def assert_sent_to_sign_in(response) -> None:
    assert response.status_code == 303
    assert "/account/sign-in" in response.headers["Location"]


def reset_password(client, db, account: Account, password: str = NEW_PASSWORD):
    token = issue_token(
        db,
        TokenPurpose.PASSWORD_RESET,
        email=account.email,
        provider_id=account.provider_id,
        account_id=account.id,
    )
    db.commit()
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    return client.post(
        f"/account/reset/{token}",
        data={"csrf": "test-csrf", "password": password, "password_repeat": password},
    )


def test_sign_out_ends_replayed_cookie(client, tenants, db):
    """A cookie saved before sign-out is sent to sign-in when replayed."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    cookie = saved_cookie(client)
    assert client.get("/admin/audit").status_code == 200

    signed_out = client.post("/account/sign-out", data={"csrf": "test-csrf"})
    restore_cookie(client, cookie)
    replayed = client.get("/admin/audit")

    assert signed_out.status_code == 303
    assert_sent_to_sign_in(replayed)


def test_sign_out_ends_other_sessions(app, tenants, db):
    """Signing out in one browser ends the account's session in another."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    office, laptop = app.test_client(), app.test_client()
    sign_in(office, EMAIL)
    sign_in(laptop, EMAIL)

    office.post("/account/sign-out", data={"csrf": "test-csrf"})

    assert_sent_to_sign_in(laptop.get("/admin/"))


def test_sign_out_notice_shown(client, tenants, db):
    """The sign-in page after sign-out states that other sessions ended too."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)

    response = client.post(
        "/account/sign-out", data={"csrf": "test-csrf"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "You are signed out." in page
    assert "other devices have ended too" in page


def test_sign_out_page_in_french(client, tenants, db):
    """The sign-out notice follows the browser's language."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    client.post("/account/sign-out", data={"csrf": "test-csrf"})

    page = client.get(
        "/account/sign-in?signed_out=1", headers={"Accept-Language": "fr"}
    ).get_data(as_text=True)

    assert "Vous êtes déconnecté." in page


def test_sign_out_without_session(client, tenants, db):
    """Signing out with no account session changes no account."""
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    response = client.post("/account/sign-out", data={"csrf": "test-csrf"})
    db.refresh(account)

    assert_sent_to_sign_in(response)
    assert "signed_out" not in response.headers["Location"]
    assert account.session_generation == 0


def test_sign_in_after_sign_out_works(client, tenants, db):
    """A fresh sign-in after signing out opens the admin pages again."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    client.post("/account/sign-out", data={"csrf": "test-csrf"})

    signed_in = sign_in(client, EMAIL)

    assert signed_in.status_code == 303
    assert client.get("/admin/audit").status_code == 200


def test_reset_ends_older_sessions(app, tenants, db):
    """A password reset ends a session started with the old password."""
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    thief, owner = app.test_client(), app.test_client()
    sign_in(thief, EMAIL)
    cookie = saved_cookie(thief)

    changed = reset_password(owner, db, account)
    restore_cookie(thief, cookie)
    replayed = thief.get("/admin/audit")

    assert changed.status_code == 303
    assert_sent_to_sign_in(replayed)
    assert "expired=1" in replayed.headers["Location"]


def test_reset_keeps_new_session(app, tenants, db):
    """The session the reset starts, and a sign-in with the new password, both work."""
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    owner, other = app.test_client(), app.test_client()

    reset_password(owner, db, account)
    old_password = sign_in(other, EMAIL, PASSWORD)
    new_password = sign_in(other, EMAIL, NEW_PASSWORD)

    assert owner.get("/admin/audit").status_code == 200
    assert old_password.status_code == 401
    assert new_password.status_code == 303
    assert other.get("/admin/audit").status_code == 200


def test_invitation_session_works(client, tenants, db):
    """The session an accepted invitation starts opens the admin pages."""
    alpha, _ = tenants
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email=EMAIL,
        provider_id=alpha.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    db.commit()
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    accepted = client.post(
        f"/account/invitation/{token}",
        data={"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD},
    )

    assert accepted.status_code == 303
    assert client.get("/admin/audit").status_code == 200


def test_session_without_generation_ended(client, tenants, db):
    """A session from before generations existed is sent to sign-in."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    with account_session_transaction(client) as session:
        del session["account_generation"]

    assert_sent_to_sign_in(client.get("/admin/"))


def test_session_of_deleted_account_ended(client, tenants, db):
    """A session whose account row is gone is sent to sign-in."""
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    db.delete(account)
    db.commit()

    assert_sent_to_sign_in(client.get("/admin/"))


def test_end_sessions_counts_each_call(db, tenants):
    """Each call raises the stored generation by one."""
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    end_account_sessions(db, account)
    end_account_sessions(db, account)
    db.commit()
    stored = db.scalar(
        select(Account.session_generation).where(Account.id == account.id)
    )

    assert stored == 2
    assert account.session_generation == 2
