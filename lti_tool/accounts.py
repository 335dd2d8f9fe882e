"""Accounts for provider admins and HPass operators, their one-time links, and the
audit log of who changed what.

Learners and instructors never have an account: they arrive through LTI launches.
Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second
recommended profile); an account locks for `LOCKOUT_MINUTES` after
`MAX_FAILED_SIGN_INS` wrong passwords in a row, whether typed at sign-in or as the
current password on the password change page. Invitation and password-reset links
carry a random token of which only the SHA-256 digest is stored, and work once.
A disabled account keeps its row and audit history but cannot sign in.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from badge_engine.db import Base, utcnow
from lti_tool.i18n import supported_locale

MAX_FAILED_SIGN_INS = 5
LOCKOUT_MINUTES = 15
INVITATION_DAYS = 7
RESET_HOURS = 1
PASSWORD_MIN = 12
PASSWORD_MAX = 256
EMAIL_MAX = 320
# RFC 5321 section 4.5.3.1 allows 64 octets before the "@" and 255 after it.
# The check counts characters, so it is looser for non-ASCII addresses.
EMAIL_LOCAL_MAX = 64
EMAIL_DOMAIN_MAX = 255

_hasher = PasswordHasher()


class AccountRole(str, enum.Enum):
    OPERATOR = "operator"
    PROVIDER_ADMIN = "provider_admin"


class TokenPurpose(str, enum.Enum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose name, not a password


class Account(Base):
    """A person who signs in with email and password; operators have no provider."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_sign_ins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]
    # Each signed-in session stores the value it started under, so raising it ends
    # them all (see `end_account_sessions`).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the account was disabled, or None while it is enabled.
    disabled_at: Mapped[datetime | None]
    # Language of the account's emails, a key of `lti_tool.i18n.LANGUAGES`, set by
    # `record_locale`. While it is None, the emails are in English.
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_operator(self) -> bool:
        return self.role == AccountRole.OPERATOR.value

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


class AccountToken(Base):
    """A one-time link: an invitation to create an account, or a password reset."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    # For invitations: the account to create. For resets: the account to change.
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    role: Mapped[str | None] = mapped_column(String(20))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One change a person made: who, in which provider, what, to which object."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id"), index=True
    )
    # "account:<id>" for signed-in admins, "lti:<lms user id>" for instructors.
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PasswordRejected(ValueError):
    """A new password breaks a password rule, which the message names."""


class InvalidEmail(ValueError):
    """An email address that mail cannot be sent to, for the reason in the message."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email_address(email: str) -> None:
    """Raise `InvalidEmail` unless `email` looks like a deliverable address.

    The check is syntactic (no DNS lookup): one "@", a local part without spaces,
    and a domain of at least two dot-separated labels of letters, digits and
    hyphens, so a host name such as "example" or "localhost" is rejected. Sign-up
    and invitations share it, so an invitation cannot name an account that the
    sign-up would refuse.
    """
    if not email or len(email) > EMAIL_MAX:
        raise InvalidEmail(
            f"the address has {len(email)} characters; use 1 to {EMAIL_MAX}"
        )
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("the address needs a name, an @ and a domain")
    if len(local) > EMAIL_LOCAL_MAX or len(domain) > EMAIL_DOMAIN_MAX:
        raise InvalidEmail("the part before or after the @ is too long")
    if "@" in local or any(char.isspace() or ord(char) < 32 for char in email):
        raise InvalidEmail(
            "the address contains a space, a control character or a second @"
        )
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidEmail(f"the domain {domain!r} has no dot, as in example.org")
    for label in labels:
        if not label or len(label) > 63:
            raise InvalidEmail(
                f"the domain {domain!r} has an empty part or one over 63 characters"
            )
        if label.startswith("-") or label.endswith("-"):
            raise InvalidEmail(
                f"a part of the domain {domain!r} starts or ends with a hyphen"
            )
        if not label.replace("-", "").isalnum():
            raise InvalidEmail(
                f"the domain {domain!r} contains a character other than letters, "
                "digits, hyphens and dots"
            )
    if labels[-1].isdigit():
        raise InvalidEmail(f"the domain {domain!r} ends in a number, not a name")


def check_new_password(password: str, email: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise PasswordRejected(
            f"the password has {len(password)} characters; use at least {PASSWORD_MIN}"
        )
    if len(password) > PASSWORD_MAX:
        raise PasswordRejected(
            f"the password has {len(password)} characters; use at most {PASSWORD_MAX}"
        )
    if password.strip().lower() == normalize_email(email):
        raise PasswordRejected("the password must not be the email address")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_account(
    session: Session,
    *,
    email: str,
    password: str,
    role: AccountRole,
    provider_id: int | None,
) -> Account:
    """Add an account after checking the password rules; the caller commits."""
    check_new_password(password, email)
    if role is AccountRole.PROVIDER_ADMIN and provider_id is None:
        raise ValueError("a provider admin account needs a provider")
    account = Account(
        email=normalize_email(email),
        role=role.value,
        provider_id=None if role is AccountRole.OPERATOR else provider_id,
        password_hash=hash_password(password),
    )
    session.add(account)
    session.flush()

    return account


def find_account(session: Session, email: str) -> Account | None:
    return session.scalar(
        select(Account).where(Account.email == normalize_email(email))
    )


def is_locked(account: Account, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return account.locked_until is not None and account.locked_until > now


def authenticate(
    session: Session, email: str, password: str, now: datetime | None = None
) -> tuple[Account | None, str]:
    """Check a sign-in; return the account (or None) and an outcome code.

    Outcomes: "ok", "unknown", "locked", "wrong_password", "disabled". The caller
    commits, because a failure changes the counter. An unknown email still costs one
    hash, so the response time does not tell which emails have accounts. "disabled"
    comes only after the right password, so a guesser cannot tell a disabled account
    from a wrong password.
    """
    now = now or utcnow()
    account = find_account(session, email)
    if account is None:
        _hasher.hash(password)
        return None, "unknown"
    outcome = verify_password(account, password, now)
    if outcome != "ok":
        return account, outcome
    if account.is_disabled:
        return account, "disabled"

    account.last_sign_in_at = now
    return account, "ok"


def verify_password(
    account: Account, password: str, now: datetime | None = None
) -> str:
    """Check `password` against the account's hash under the lockout rules.

    Returns "ok", "locked" or "wrong_password". A wrong password counts towards
    the lockout, and the `MAX_FAILED_SIGN_INS`-th one in a row locks the account
    for `LOCKOUT_MINUTES`. A locked account gets "locked" even for the right
    password. The caller commits, because every outcome can change the row.
    """
    now = now or utcnow()
    if is_locked(account, now):
        return "locked"
    try:
        _hasher.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        account.failed_sign_ins += 1
        if account.failed_sign_ins >= MAX_FAILED_SIGN_INS:
            account.locked_until = now + timedelta(minutes=LOCKOUT_MINUTES)
            account.failed_sign_ins = 0
            return "locked"
        return "wrong_password"

    account.failed_sign_ins = 0
    account.locked_until = None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return "ok"


def set_password(session: Session, account: Account, password: str) -> None:
    """Store a new password hash and end every session of the account.

    The caller has checked the password with `check_new_password` and commits.
    Anyone who knew the old password may hold a session, so all of them end. A
    caller that keeps its own session stores the new generation in it.
    """
    account.password_hash = hash_password(password)
    account.failed_sign_ins = 0
    account.locked_until = None
    end_account_sessions(session, account)


def end_account_sessions(session: Session, account: Account) -> None:
    """End every signed-in session of `account`, on every device. The caller commits.

    Sessions are signed cookies that the server cannot delete, so each one carries the
    account's `session_generation` from sign-in, and a request whose value differs is
    signed out. The increment runs in SQL, so two concurrent calls both count.
    """
    account.session_generation = Account.session_generation + 1
    session.flush()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    purpose: TokenPurpose,
    *,
    email: str,
    provider_id: int | None = None,
    role: AccountRole | None = None,
    account_id: int | None = None,
    created_by_account_id: int | None = None,
    now: datetime | None = None,
) -> str:
    """Store a one-time link's digest and return the token to put in the link."""
    now = now or utcnow()
    lifetime = (
        timedelta(days=INVITATION_DAYS)
        if purpose is TokenPurpose.INVITATION
        else timedelta(hours=RESET_HOURS)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            purpose=purpose.value,
            token_sha256=_digest(token),
            email=normalize_email(email),
            provider_id=provider_id,
            role=role.value if role else None,
            account_id=account_id,
            created_by_account_id=created_by_account_id,
            expires_at=now + lifetime,
        )
    )
    session.flush()

    return token


def find_usable_token(
    session: Session,
    token: str,
    purpose: TokenPurpose,
    now: datetime | None = None,
    *,
    for_update: bool = False,
) -> AccountToken | None:
    """Return the unused, unexpired token row for `token`, or None.

    With `for_update` the row stays locked until the caller's transaction ends, on
    databases with row locks (PostgreSQL, not SQLite).
    """
    now = now or utcnow()
    query = select(AccountToken).where(
        AccountToken.token_sha256 == _digest(token),
        AccountToken.purpose == purpose.value,
    )
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None

    return row


def claim_token(session: Session, row: AccountToken, now: datetime) -> bool:
    """Mark the one-time link `row` used at `now`; return whether this call did.

    The update matches only while the link is unused and unexpired, so of several
    requests that use one link at the same time exactly one claims it. SQLite runs
    one write transaction at a time, so a second update runs after the first
    commits and matches no row. PostgreSQL makes it wait for the first
    transaction, then match no row. The caller commits, or rolls back to leave the
    link unused.
    """
    claimed = session.execute(
        update(AccountToken)
        .where(
            AccountToken.id == row.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return False
    set_committed_value(row, "used_at", now)

    return True


def record_locale(account: Account, locale: str | None) -> bool:
    """Store `locale` as the account's email language when it is supported and new.

    Returns whether the account changed. An unsupported value is ignored, and an
    unchanged one writes nothing, so callers may pass the page's language on every
    sign-in. The caller commits.
    """
    chosen = supported_locale(locale)
    if chosen is None or chosen == account.locale:
        return False

    account.locale = chosen
    return True


def record_audit(
    session: Session,
    *,
    provider_id: int | None,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event in the caller's transaction, so it commits with the change."""
    event = AuditEvent(
        provider_id=provider_id,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
    )
    session.add(event)

    return event
