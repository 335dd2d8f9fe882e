"""Single-use LTI Dynamic Registration links of a provider.

A link is `{base}/lti/register/{token}`, where the token is 256 random bits. The
bridge stores only the token's SHA-256 digest, with who created the link and when,
so a copy of the database cannot register a platform. A link works for 7 days and
for one successful registration. A provider admin can revoke an open link.

Links issued before links had rows carried the provider id signed with the
secret key (itsdangerous, with a "." between the parts). They are rejected with a
message to create a new link, because they could have been used any number of
times already and no admin could see or revoke them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from lti_tool.accounts import record_audit
from lti_tool.lti.errors import (
    RegistrationFailed,
    RegistrationLinkClosed,
    RegistrationLinkExpired,
    RegistrationLinkOutdated,
    RegistrationLinkRevoked,
    RegistrationLinkUsed,
)
from lti_tool.models import RegistrationLink

LINK_LIFETIME = timedelta(days=7)
# The salt of the signed links issued before links had rows, to recognise them.
_OUTDATED_LINK_SALT = "lti-dynamic-registration"
_TOKEN_MAX_LENGTH = 200
NEW_LINK_CHECK = (
    "create a new registration link on the bridge's admin pages (Connect an LMS > "
    "Registration links) or with `hpass-bridge platform registration-url`, and paste "
    "that one"
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def registration_url(base_url: str, token: str) -> str:
    return f"{base_url}/lti/register/{token}"


def issue_registration_link(
    session: Session, *, provider_id: int, actor: str, now: datetime | None = None
) -> tuple[RegistrationLink, str]:
    """Add an open link, audit it and return the row and the token.

    The token is not stored, so the caller shows it once. The caller commits.
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    link = RegistrationLink(
        provider_id=provider_id,
        token_sha256=token_digest(token),
        created_by=actor,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    session.add(link)
    session.flush()
    # The link lets anyone holding it register a platform for the provider, so
    # issuing one is recorded. The token itself is not.
    record_audit(
        session,
        provider_id=provider_id,
        actor=actor,
        action="lti_registration.url_issued",
        target=f"lti_registration_link:{link.id}",
        detail={"expires_at": link.expires_at.isoformat()},
    )

    return link, token


def open_registration_links(
    session: Session, provider_id: int, now: datetime | None = None
) -> list[RegistrationLink]:
    """Return the provider's unused, unrevoked, unexpired links, newest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(RegistrationLink)
            .where(
                RegistrationLink.provider_id == provider_id,
                RegistrationLink.used_at.is_(None),
                RegistrationLink.revoked_at.is_(None),
                RegistrationLink.expires_at > now,
            )
            .order_by(RegistrationLink.created_at.desc(), RegistrationLink.id.desc())
        )
    )


def revoke_registration_link(
    session: Session,
    *,
    provider_id: int,
    link_id: int,
    actor: str,
    because: str | None = None,
    now: datetime | None = None,
) -> RegistrationLink | None:
    """Revoke the provider's open link `link_id` and audit it. The caller commits.

    Returns None, and changes nothing, when the provider has no open link with this
    id: an unknown id, another provider's link, or a link already used, revoked or
    expired. The update is conditional, so a link used meanwhile stays used.
    `because` is a reason code stored in the audit event, for a revocation that no
    person asked for directly.
    """
    now = now or utcnow()
    revoked = session.execute(
        update(RegistrationLink)
        .where(
            RegistrationLink.id == link_id,
            RegistrationLink.provider_id == provider_id,
            RegistrationLink.used_at.is_(None),
            RegistrationLink.revoked_at.is_(None),
            RegistrationLink.expires_at > now,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount != 1:
        return None
    link = session.get(RegistrationLink, link_id, populate_existing=True)
    detail = {"created_by": link.created_by}
    if because:
        detail["revoked_because"] = because
    record_audit(
        session,
        provider_id=provider_id,
        actor=actor,
        action="lti_registration.url_revoked",
        target=f"lti_registration_link:{link.id}",
        detail=detail,
    )

    return link


def find_registration_link(
    session: Session, secret_key: bytes, token: str, now: datetime | None = None
) -> RegistrationLink:
    """Return the open link of `token`, or raise the error that names why it is not.

    Raises `RegistrationFailed` for a token that no link has (cut, changed or
    forged), and a `RegistrationLinkClosed` subclass for a link that is used,
    revoked, expired or of the format issued before links had rows.
    """
    now = now or utcnow()
    if len(token) > _TOKEN_MAX_LENGTH:
        raise _invalid_link()
    link = session.scalar(
        select(RegistrationLink).where(
            RegistrationLink.token_sha256 == token_digest(token)
        )
    )
    if link is None:
        if _is_outdated_link(secret_key, token):
            raise RegistrationLinkOutdated(
                "this registration URL was issued before registration URLs became "
                "single-use, and such URLs are no longer accepted",
                check=NEW_LINK_CHECK,
            )
        raise _invalid_link()
    check_link_open(link, now)

    return link


def check_link_open(link: RegistrationLink, now: datetime | None = None) -> None:
    """Raise the `RegistrationLinkClosed` subclass that names why `link` is closed."""
    now = now or utcnow()
    ids = {"provider_id": link.provider_id, "registration_link_id": link.id}
    if link.used_at is not None:
        raise RegistrationLinkUsed(
            f"this registration URL was already used on {link.used_at:%Y-%m-%d %H:%M} "
            "UTC, and each registration URL works once",
            check=NEW_LINK_CHECK,
            **ids,
        )
    if link.revoked_at is not None:
        raise RegistrationLinkRevoked(
            f"this registration URL was revoked on {link.revoked_at:%Y-%m-%d %H:%M} UTC",
            check=NEW_LINK_CHECK,
            **ids,
        )
    if link.expires_at <= now:
        raise RegistrationLinkExpired(
            f"this registration URL expired on {link.expires_at:%Y-%m-%d %H:%M} UTC "
            "(registration URLs work for 7 days)",
            check=NEW_LINK_CHECK,
            **ids,
        )


def claim_registration_link(
    session: Session, link: RegistrationLink, now: datetime | None = None
) -> None:
    """Mark `link` used in the caller's transaction, or raise if it closed meanwhile.

    The update runs only while the link is still open, so of two registrations
    that use one link at the same time exactly one claims it. PostgreSQL makes the
    second update wait for the first transaction and then match no row. SQLite lets
    one writer at a time run, so the second update runs after the first commit. The
    caller stores the registration in the same transaction, so a registration that
    fails afterwards (and rolls back) leaves the link open.
    """
    now = now or utcnow()
    claimed = session.execute(
        update(RegistrationLink)
        .where(
            RegistrationLink.id == link.id,
            RegistrationLink.used_at.is_(None),
            RegistrationLink.revoked_at.is_(None),
            RegistrationLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 1:
        return
    session.refresh(link)
    # The platform has already created a client for this attempt, which no
    # registration on the bridge matches, so the admin deletes it there.
    cleanup = "; then delete the tool this attempt added in the platform"
    try:
        check_link_open(link, now)
    except RegistrationLinkClosed as error:
        raise type(error)(
            error.problem, check=error.check + cleanup, **error.ids
        ) from None
    # Not reached: a row that matched no update is closed for one of the reasons
    # that check_link_open names.
    raise RegistrationLinkUsed(
        "this registration URL was used meanwhile", check=NEW_LINK_CHECK + cleanup
    )


def _invalid_link() -> RegistrationFailed:
    return RegistrationFailed(
        "this registration URL is not valid",
        check="copy the registration URL again in full, because it was cut or "
        "changed; if it still fails, " + NEW_LINK_CHECK,
    )


def _is_outdated_link(secret_key: bytes, token: str) -> bool:
    """Return whether `token` is a signed link of the format used before rows."""
    if "." not in token:
        return False
    try:
        URLSafeTimedSerializer(secret_key, salt=_OUTDATED_LINK_SALT).loads(token)
    except BadSignature:
        return False

    return True
