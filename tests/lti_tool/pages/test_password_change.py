"""Changing the password of the signed-in account: checks, lockout, audit, and the
end of every other session of the account."""

from __future__ import annotations

import re

from sqlalchemy import select

from lti_tool.accounts import (
    MAX_FAILED_SIGN_INS,
    Account,
    AccountRole,
    AuditEvent,
)
from tests.support.account_cookie import account_session_transaction

from .conftest import PASSWORD, add_account, sign_in

COOKIE = "hpass_account"
EMAIL = "admin@alpha.org"
NEW_PASSWORD = "a brand new passphrase"


def change_password(client, current=PASSWORD, new=NEW_PASSWORD, repeated=None, **extra):
    data = {
        "csrf": "test-csrf",
        "current_password": current,
        "password": new,
        "password_repeat": new if repeated is None else repeated,
    }
    return client.post("/account/password", data=data, **extra)


def signed_in_admin(client, db, tenants) -> Account:
    alpha, _ = tenants
    account = add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    return account


def stored_account(db, account_id: int) -> Account:
    db.expire_all()
    return db.get(Account, account_id)


def test_password_change_succeeds(app, client, tenants, db):
    """The new password signs in and the old one no longer does."""
    account = signed_in_admin(client, db, tenants)

    response = change_password(client)
    other = app.test_client()
    old_password = sign_in(other, EMAIL, PASSWORD)
    new_password = sign_in(other, EMAIL, NEW_PASSWORD)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/account/password?changed=1")
    assert old_password.status_code == 401
    assert new_password.status_code == 303
    assert stored_account(db, account.id).session_generation == 1


def test_password_change_notice_shown(client, tenants, db):
    """The page after the change states that the other sessions ended."""
    signed_in_admin(client, db, tenants)

    response = change_password(client, follow_redirects=True)
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "Your password was changed." in page
    assert "other devices have ended" in page
    assert "This session stays signed in." in page


def test_password_change_keeps_own_session(client, tenants, db):
    """The session that changed the password still opens the admin pages."""
    signed_in_admin(client, db, tenants)

    change_password(client)

    assert client.get("/admin/audit").status_code == 200
    assert client.get("/account/password").status_code == 200


def test_password_change_ends_other_sessions(app, tenants, db):
    """Another browser's session, and a copy of the old cookie, are signed out."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    owner, laptop = app.test_client(), app.test_client()
    sign_in(owner, EMAIL)
    sign_in(laptop, EMAIL)
    old_cookie = owner.get_cookie(COOKIE).value

    change_password(owner)
    replay = app.test_client()
    replay.set_cookie(COOKIE, old_cookie)
    laptop_response = laptop.get("/admin/")
    replay_response = replay.get("/admin/")

    assert laptop_response.status_code == 303
    assert "/account/sign-in" in laptop_response.headers["Location"]
    assert replay_response.status_code == 303
    assert "/account/sign-in" in replay_response.headers["Location"]


def test_password_change_audited(client, tenants, db):
    """The change is in the provider's audit log, with no password in it."""
    account = signed_in_admin(client, db, tenants)

    change_password(client)
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "account.password_changed")
    )

    assert event is not None
    assert event.actor == f"account:{account.id}"
    assert event.target == f"account:{account.id}"
    assert event.provider_id == account.provider_id
    assert event.detail is None


def test_wrong_current_password_rejected(client, tenants, db):
    """A wrong current password changes nothing and counts as a failed sign-in."""
    account = signed_in_admin(client, db, tenants)

    response = change_password(client, current="not the password at all")
    page = response.get_data(as_text=True)
    stored = stored_account(db, account.id)

    assert response.status_code == 400
    assert "The current password is wrong." in page
    assert 'aria-describedby="current_password-error"' in page
    assert stored.failed_sign_ins == 1
    assert stored.session_generation == 0
    assert sign_in(client, EMAIL, PASSWORD).status_code == 303


def test_wrong_current_password_locks(app, client, tenants, db):
    """Repeated wrong current passwords lock the account, as at sign-in."""
    account = signed_in_admin(client, db, tenants)

    for _ in range(MAX_FAILED_SIGN_INS):
        response = change_password(client, current="not the password at all")
    right_password = change_password(client)
    other_sign_in = sign_in(app.test_client(), EMAIL, PASSWORD)
    stored = stored_account(db, account.id)

    assert response.status_code == 400
    assert "This account is locked" in response.get_data(as_text=True)
    assert right_password.status_code == 400
    assert "This account is locked" in right_password.get_data(as_text=True)
    assert stored.locked_until is not None
    assert other_sign_in.status_code == 401
    assert sign_in(app.test_client(), EMAIL, NEW_PASSWORD).status_code == 401


def test_new_passwords_mismatch_rejected(client, tenants, db):
    """Two different new passwords are rejected with the error on the second field."""
    account = signed_in_admin(client, db, tenants)

    response = change_password(client, repeated="another new passphrase")
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "The two passwords differ." in page
    assert 'aria-describedby="password_repeat-error"' in page
    assert stored_account(db, account.id).session_generation == 0


def test_weak_new_password_rejected(client, tenants, db):
    """A new password that breaks a password rule names the rule."""
    signed_in_admin(client, db, tenants)

    short = change_password(client, new="short")
    email = change_password(client, new=EMAIL.upper())

    assert short.status_code == 400
    assert "use at least 12" in short.get_data(as_text=True)
    assert email.status_code == 400
    assert "must not be the email address" in email.get_data(as_text=True)
    assert sign_in(client, EMAIL, PASSWORD).status_code == 303


def test_same_new_password_rejected(client, tenants, db):
    """A new password equal to the current one is rejected."""
    signed_in_admin(client, db, tenants)

    response = change_password(client, new=PASSWORD)

    assert response.status_code == 400
    assert "same as the current one" in response.get_data(as_text=True)


def test_missing_fields_each_named(client, tenants, db):
    """Empty fields each get an error linked from the summary."""
    signed_in_admin(client, db, tenants)

    response = change_password(client, current="", new="")
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "Enter your current password." in page
    assert "Enter the new password." in page
    assert 'href="#current_password"' in page
    assert 'href="#password"' in page


def test_password_change_needs_csrf(client, tenants, db):
    """A post without the form's token is rejected and changes nothing."""
    account = signed_in_admin(client, db, tenants)

    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "password_repeat": NEW_PASSWORD,
        },
    )

    assert response.status_code == 400
    assert stored_account(db, account.id).session_generation == 0


def test_password_change_needs_sign_in(client, tenants):
    """Without a session the page sends the browser to sign-in."""
    page = client.get("/account/password")
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    post = change_password(client)

    assert page.status_code == 303
    assert "/account/sign-in" in page.headers["Location"]
    assert post.status_code == 303
    assert "/account/sign-in" in post.headers["Location"]


def test_password_form_accessible(client, tenants, db):
    """Each field has a label and the autocomplete value password managers read."""
    signed_in_admin(client, db, tenants)

    page = client.get("/account/password").get_data(as_text=True)

    for name, autocomplete in (
        ("current_password", "current-password"),
        ("password", "new-password"),
        ("password_repeat", "new-password"),
    ):
        assert f'<label for="{name}">' in page
        field = re.search(rf'<input id="{name}"[^>]*>', page)
        assert field is not None, name
        assert f'autocomplete="{autocomplete}"' in field.group(0)
    assert 'autocomplete="username"' in page


def test_password_link_in_navigation(client, tenants, db):
    """The admin navigation links the password page."""
    signed_in_admin(client, db, tenants)

    page = client.get("/admin/").get_data(as_text=True)

    assert 'href="/account/password"' in page


def test_password_change_for_operator(client, db, tenants):
    """An operator without a chosen provider changes the password too."""
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")

    form = client.get("/account/password")
    response = change_password(client)

    assert form.status_code == 200
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 200


def test_password_page_in_arabic(client, tenants, db):
    """The page and its errors follow the browser's language."""
    signed_in_admin(client, db, tenants)

    page = change_password(
        client, current="not the password", headers={"Accept-Language": "ar"}
    ).get_data(as_text=True)

    assert 'dir="rtl"' in page
    assert "Change your password" not in page
    assert "The current password is wrong." not in page
