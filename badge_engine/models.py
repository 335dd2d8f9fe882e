"""Tables of the badge engine: providers, their keys, achievements, learners, facts and
credentials. Every row carries the provider it belongs to, and every query filters on it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from badge_engine.db import Base, utcnow


def new_public_id() -> str:
    return str(uuid.uuid4())


def achievement_name_key(name: str | None) -> str | None:
    """Return the form of a badge name that two names of one badge share.

    Names that differ only in letter case or in runs of whitespace give the same key.
    """
    if name is None:
        return None
    return " ".join(name.split()).casefold()


class Provider(Base):
    """A learning provider: one tenant of the bridge and one Open Badges issuer."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320))
    # The slug appears in every credential id and DID; it may not change afterwards.
    slug_frozen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """An issuer key pair. The private half is encrypted with the bridge's vault key."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    algorithm: Mapped[str] = mapped_column(String(20), default="Ed25519")
    # Fragment of the verification method in the provider's DID document, e.g. key-1.
    key_name: Mapped[str] = mapped_column(String(40))
    public_key_multibase: Mapped[str] = mapped_column(String(200))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("provider_id", "key_name"),)


class Achievement(Base):
    """A badge a course awards (BadgeClass in Open Badges 2.0) with its award rule."""

    __tablename__ = "achievements"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=new_public_id
    )
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    criteria_narrative: Mapped[str] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(500))
    # Skills and standards the badge points to, checked by
    # badge_engine.alignments.validate_alignments; None and [] mean none.
    alignments: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    award_rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Days a credential stays valid after its award date (its validUntil); None
    # means it never expires.
    valid_for_days: Mapped[int | None]
    # `achievement_name_key(name)`, kept in step with `name`. It is unique within a
    # course, so a course cannot have two badges of one name. Rows that were
    # already duplicates before this column existed keep NULL, which the unique
    # index does not compare. Case folding makes at most three characters of one,
    # hence three times the name's length.
    name_key: Mapped[str | None] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    provider: Mapped[Provider] = relationship()

    __table_args__ = (
        Index(
            "ix_achievements_course",
            "provider_id",
            "lms_connection_id",
            "lms_course_id",
        ),
        UniqueConstraint(
            "provider_id",
            "lms_connection_id",
            "lms_course_id",
            "name_key",
            name="uq_achievements_course_name",
        ),
    )

    @validates("name")
    def _set_name_key(self, _key: str, name: str | None) -> str | None:
        self.name_key = achievement_name_key(name)
        return name


class Learner(Base):
    """A person as one provider's LMS identifies them; at another provider the same
    person is another row."""

    __tablename__ = "learners"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_user_id: Mapped[str] = mapped_column(String(64))
    # The LTI 1.3 `sub` of the latest launch; AGS results name learners by it, and it
    # differs from `lms_user_id` where the launch sends the LMS's own user id.
    lti_sub: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider_id", "lms_connection_id", "lms_user_id"),
        Index("ix_learners_lti_sub", "provider_id", "lms_connection_id", "lti_sub"),
    )


class FactOutcome(str, enum.Enum):
    PENDING = "pending"
    AWARDED = "awarded"
    ALREADY_AWARDED = "already_awarded"
    NOT_CONFIRMED = "not_confirmed"
    NO_RULE_MET = "no_rule_met"
    REVERSAL = "reversal"


class CompletionFactRecord(Base):
    """A stored `CompletionFact` with its raw payload (secrets stripped) and outcome."""

    __tablename__ = "completion_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    lms_user_id: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    # A grade fact's score as a percentage of its maximum; None for completions.
    grade_percent: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(10))
    source_event_id: Mapped[str | None] = mapped_column(String(200))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    raw_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(20), default=FactOutcome.PENDING.value)
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("provider_id", "dedupe_key"),
        # One learner's facts, read to evaluate rules and to show progress. Its
        # leading column also serves the queries by provider alone.
        Index(
            "ix_completion_facts_learner",
            "provider_id",
            "lms_connection_id",
            "lms_user_id",
            "lms_course_id",
        ),
    )


class CredentialStatus(str, enum.Enum):
    LIVE = "live"
    REVOKED = "revoked"
    # Replaced by a newer version (a correction or a renewal); still valid as issued.
    SUPERSEDED = "superseded"


class Credential(Base):
    """An issued, signed OpenBadgeCredential for one learner and one achievement.

    `live_key` is "<achievement id>:<learner id>" while the credential is live and NULL
    once revoked; its unique constraint makes a second live credential impossible on
    every database, even when two workers race.
    """

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=new_public_id
    )
    achievement_id: Mapped[int] = mapped_column(
        ForeignKey("achievements.id"), index=True
    )
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"), index=True)
    live_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=CredentialStatus.LIVE.value)
    # Revocation is final: revoked_at and revocation_reason are set once, together.
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    # This credential's bit in the provider's BitstringStatusList (NULL for
    # credentials issued before status lists, which only the OB 2.0 revocation list
    # and the 1EdTech revocation list report).
    status_list_index: Mapped[int | None]
    awarded_at: Mapped[datetime]
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_fact_id: Mapped[int | None] = mapped_column(
        ForeignKey("completion_facts.id")
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set when the LMS reported, after the award, that the completion behind it was
    # reversed (a teacher set it back to incomplete). The credential stays live
    # until an instructor revokes it; the bridge never revokes it by itself.
    completion_reversed_at: Mapped[datetime | None]
    completion_reversal_detail: Mapped[str | None] = mapped_column(Text)
    completion_reversal_fact_id: Mapped[int | None] = mapped_column(
        ForeignKey("completion_facts.id")
    )
    # Versions (badge_engine/corrections.py and renewal.py): each new version
    # points at the one it replaces, and the replaced one at its successor.
    valid_until: Mapped[datetime | None]
    previous_credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id")
    )
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    superseded_at: Mapped[datetime | None]
    # "correction" or "renewal".
    supersede_reason: Mapped[str | None] = mapped_column(String(20))

    achievement: Mapped[Achievement] = relationship()
    learner: Mapped[Learner] = relationship()


class StatusListAllocation(Base):
    """The next free BitstringStatusList index of one provider.

    Issuing takes an index with one UPDATE of this row, which the database
    serialises, so two workers never take the same index.
    """

    __tablename__ = "status_list_allocations"

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id"), primary_key=True
    )
    next_index: Mapped[int] = mapped_column(default=0)


class EndorsementRecord(Base):
    """A signed EndorsementCredential from the HPass network about a provider.

    `subject_type` is "Profile" for the provider's issuer profile and "Achievement"
    for one of its achievements (then `achievement_id` is set). An endorsement is
    withdrawn by setting `revoked_at`, never deleted, because copies of it live in
    credentials that embed it.
    """

    __tablename__ = "endorsements"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=new_public_id
    )
    subject_type: Mapped[str] = mapped_column(String(20))
    achievement_id: Mapped[int | None] = mapped_column(ForeignKey("achievements.id"))
    endorser_name: Mapped[str] = mapped_column(String(200))
    endorsement_comment: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
