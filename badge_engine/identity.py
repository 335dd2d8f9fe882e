"""A learner's identities: every verified email address and LMS account they hold.

A learner record keeps its current `Learner.email`, and this table keeps the others.
So a learner who changes email keeps every badge issued to an earlier address, and a
search by any of their addresses finds them.

Email matching ignores case where the address allows it. The domain is always
case-insensitive (RFC 5321, section 2.4). The local part is case-sensitive by the
standard, but every large mail provider ignores its case, so it is lowercased too
unless it is a quoted string, where case can be meaningful.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, utcnow
from badge_engine.models import Learner

EMAIL = "email"
LMS_ACCOUNT = "lms_account"


class LearnerIdentity(Base):
    """One verified identity of a learner: an email address or an LMS account.

    `normalised` is the matching form (`normalise_email` for addresses); the unique
    constraint makes one address belong to one learner of a provider.
    """

    __tablename__ = "learner_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(320))
    normalised: Mapped[str] = mapped_column(String(320))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("provider_id", "kind", "normalised"),)


class IdentityConflict(ValueError):
    """The identity already belongs to another learner of the same provider."""


def normalise_email(address: str) -> str:
    """Return the form of an address used for matching (see the module docstring)."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    if local.startswith('"') and local.endswith('"'):
        return f"{local}@{domain.lower()}"
    return f"{local.lower()}@{domain.lower()}"


def add_identity(
    session: Session, learner: Learner, kind: str, value: str
) -> LearnerIdentity:
    """Record a verified identity of the learner; a repeat returns the stored row.

    Raises IdentityConflict when it belongs to another learner of the provider.
    """
    normalised = normalise_email(value) if kind == EMAIL else value.strip()
    existing = session.scalar(
        select(LearnerIdentity).where(
            LearnerIdentity.provider_id == learner.provider_id,
            LearnerIdentity.kind == kind,
            LearnerIdentity.normalised == normalised,
        )
    )
    if existing is not None:
        if existing.learner_id != learner.id:
            raise IdentityConflict(
                f"{kind} {value!r} already belongs to learner {existing.learner_id} "
                f"of provider {learner.provider_id}; merge the two learners first."
            )
        return existing

    identity = LearnerIdentity(
        provider_id=learner.provider_id,
        learner_id=learner.id,
        kind=kind,
        value=value.strip(),
        normalised=normalised,
    )
    session.add(identity)
    session.flush()
    return identity


def change_email(session: Session, learner: Learner, new_email: str) -> None:
    """Make `new_email` the learner's current address and keep the old one.

    Credentials belong to the learner row, not to an address, so every badge stays
    with the learner. The old address stays an identity, so a badge issued to it
    still matches this learner.
    """
    if learner.email:
        add_identity(session, learner, EMAIL, learner.email)
    add_identity(session, learner, EMAIL, new_email)
    learner.email = new_email.strip()


def find_learner_by_email(
    session: Session, provider_id: int, address: str
) -> Learner | None:
    """Find the provider's learner with `address`, ignoring case where allowed."""
    normalised = normalise_email(address)
    by_identity = select(LearnerIdentity.learner_id).where(
        LearnerIdentity.provider_id == provider_id,
        LearnerIdentity.kind == EMAIL,
        LearnerIdentity.normalised == normalised,
    )
    # lower() narrows the rows in SQL; the exact rule is applied in Python below.
    candidates = session.scalars(
        select(Learner)
        .where(
            Learner.provider_id == provider_id,
            or_(
                Learner.id.in_(by_identity),
                func.lower(func.trim(Learner.email)) == normalised.lower(),
            ),
        )
        .order_by(Learner.id)
    )
    for learner in candidates:
        if learner.email and normalise_email(learner.email) == normalised:
            return learner
        if session.scalar(by_identity.where(LearnerIdentity.learner_id == learner.id)):
            return learner
    return None


def learner_emails(session: Session, learner: Learner) -> list[str]:
    """Return every address of the learner, the current one first."""
    emails = [learner.email] if learner.email else []
    for identity in session.scalars(
        select(LearnerIdentity)
        .where(
            LearnerIdentity.provider_id == learner.provider_id,
            LearnerIdentity.learner_id == learner.id,
            LearnerIdentity.kind == EMAIL,
        )
        .order_by(LearnerIdentity.id)
    ):
        if identity.value not in emails:
            emails.append(identity.value)
    return emails


def identity_hash_matches(identity_hash: str, salt: str | None, value: str) -> bool:
    """Check an OB `identityHash` ("sha256$<hex>" or "md5$<hex>") against a value.

    The algorithm name and the hex digits are compared without regard to case,
    because issuers differ in how they print them. The value is tried as given and
    in its normalised email form.
    """
    algorithm, separator, digest = identity_hash.partition("$")
    if not separator:
        return False
    algorithm = algorithm.lower()
    if algorithm not in ("sha256", "md5"):
        return False

    for candidate in {
        value,
        value.strip(),
        normalise_email(value),
        value.strip().lower(),
    }:
        data = (candidate + (salt or "")).encode("utf-8")
        computed = hashlib.new(algorithm, data).hexdigest()
        if hmac.compare_digest(computed, digest.strip().lower()):
            return True
    return False
