"""Account rules: password hashing, lockout and one-time links."""

from __future__ import annotations

from datetime import timedelta

import pytest

from badge_engine.db import utcnow
from lti_tool.accounts import (
    LOCKOUT_MINUTES,
    MAX_FAILED_SIGN_INS,
    AccountRole,
    InvalidEmail,
    PasswordRejected,
    TokenPurpose,
    authenticate,
    check_email_address,
    create_account,
    find_usable_token,
    issue_token,
)

from .conftest import PASSWORD


def test_password_stored_as_argon2(db):
    """The stored hash is Argon2id and never the password itself."""
    account = create_account(
        db,
        email="Op@Example.org",
        password=PASSWORD,
        role=AccountRole.OPERATOR,
        provider_id=None,
    )

    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert account.email == "op@example.org"


@pytest.mark.parametrize(
    ("password", "fragment"),
    [("short", "at least 12"), ("x" * 257, "at most 256"), ("op@example.org", "email")],
)
def test_weak_password_rejected(db, password, fragment):
    """Short, huge and email-equal passwords are rejected with the rule broken."""
    with pytest.raises(PasswordRejected) as raised:
        create_account(
            db,
            email="op@example.org",
            password=password,
            role=AccountRole.OPERATOR,
            provider_id=None,
        )

    assert fragment in str(raised.value)


def test_authenticate_outcomes(db):
    """Sign-in outcomes distinguish ok, wrong password and unknown email."""
    create_account(
        db,
        email="op@example.org",
        password=PASSWORD,
        role=AccountRole.OPERATOR,
        provider_id=None,
    )

    assert authenticate(db, "OP@example.org", PASSWORD)[1] == "ok"
    assert authenticate(db, "op@example.org", "wrong password!")[1] == "wrong_password"
    assert authenticate(db, "nobody@example.org", PASSWORD) == (None, "unknown")


def test_lockout_after_failures(db):
    """Repeated wrong passwords lock the account, even against the right one."""
    account = create_account(
        db,
        email="op@example.org",
        password=PASSWORD,
        role=AccountRole.OPERATOR,
        provider_id=None,
    )
    now = utcnow()

    outcomes = [
        authenticate(db, "op@example.org", "wrong password!", now)[1]
        for _ in range(MAX_FAILED_SIGN_INS)
    ]

    assert outcomes[-1] == "locked"
    assert authenticate(db, "op@example.org", PASSWORD, now)[1] == "locked"
    later = now + timedelta(minutes=LOCKOUT_MINUTES, seconds=1)
    assert authenticate(db, "op@example.org", PASSWORD, later)[1] == "ok"
    assert account.failed_sign_ins == 0


def test_token_expires(db):
    """A reset token stops working after its lifetime."""
    token = issue_token(db, TokenPurpose.PASSWORD_RESET, email="a@example.org")

    assert find_usable_token(db, token, TokenPurpose.PASSWORD_RESET) is not None
    assert find_usable_token(db, token, TokenPurpose.INVITATION) is None
    later = utcnow() + timedelta(hours=2)
    assert find_usable_token(db, token, TokenPurpose.PASSWORD_RESET, later) is None


def test_token_stored_as_digest(db):
    """Only the token's SHA-256 digest is stored."""
    from sqlalchemy import select

    from lti_tool.accounts import AccountToken

    token = issue_token(db, TokenPurpose.INVITATION, email="a@example.org")
    row = db.scalar(select(AccountToken))

    assert token not in row.token_sha256
    assert len(row.token_sha256) == 64


@pytest.mark.parametrize(
    "email",
    [
        "admin@example",
        "admin@localhost",
        "admin@",
        "@example.org",
        "admin",
        "ad min@example.org",
        "a@b@example.org",
        "admin@example..org",
        "admin@-example.org",
        "admin@example.org-",
        "admin@exa_mple.org",
        "admin@192.168.0.1",
        "x" * 65 + "@example.org",
        "admin@" + "a" * 320 + ".org",
    ],
)
def test_email_address_rejected(email):
    """Addresses without a dotted domain name or with broken parts are rejected."""
    with pytest.raises(InvalidEmail):
        check_email_address(email)


@pytest.mark.parametrize(
    "email",
    ["admin@example.org", "first.last+tag@mail.example.co.uk", "élève@école.fr"],
)
def test_email_address_accepted(email):
    """Ordinary addresses, tags and internationalised names pass."""
    check_email_address(email)
