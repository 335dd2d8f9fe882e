"""Endorsements: the HPass network vouches for a certified provider or achievement.

An endorsement is an OB 3.0 `EndorsementCredential` issued by the endorser's own
did:web profile (the HPass network is a provider row of the bridge with its own
keys) and signed with eddsa-rdfc-2022, so any verifier checks it like a badge. Its
subject is the provider's issuer DID or one of its achievement URLs.

    {base}/endorsements/{public_id}     the signed EndorsementCredential
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.db import utcnow
from badge_engine.errors import InvalidCredential
from badge_engine.issuers import (
    active_signing_key,
    issuer_profile,
    load_private_key,
    verification_method_id,
)
from badge_engine.models import (
    Achievement,
    EndorsementRecord,
    Provider,
    new_public_id,
)
from badge_engine.ob3 import (
    OB3_CONTEXT,
    VC2_CONTEXT,
    format_timestamp,
    serialize_profile,
)
from badge_engine.urls import achievement_url, issuer_did
from badge_engine.vault import Vault

MAX_COMMENT_LENGTH = 5000


def endorsement_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/endorsements/{public_id}"


def endorse(
    session: Session,
    *,
    vault: Vault,
    base_url: str,
    endorser: Provider,
    provider: Provider,
    comment: str,
    achievement: Achievement | None = None,
    now: datetime | None = None,
) -> EndorsementRecord:
    """Issue and store a signed EndorsementCredential about a provider or achievement.

    The caller decides that the provider is certified. Raises InvalidCredential for an
    empty comment, an achievement of another provider, or a provider endorsing itself.
    """
    comment = comment.strip()
    if not comment or len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidCredential(
            f"An endorsement needs a comment of 1 to {MAX_COMMENT_LENGTH} characters "
            "saying what the endorser vouches for."
        )
    if achievement is not None and achievement.provider_id != provider.id:
        raise InvalidCredential(
            f"Achievement {achievement.public_id!r} belongs to another provider than "
            f"{provider.slug!r}."
        )
    if endorser.id == provider.id:
        raise InvalidCredential("A provider cannot endorse itself.")

    public_id = new_public_id()
    if achievement is None:
        subject_id = issuer_did(base_url, provider.slug)
    else:
        subject_id = achievement_url(base_url, achievement.public_id)
    issued_at = now or utcnow()
    unsigned = build_endorsement_credential(
        endorsement_url(base_url, public_id),
        serialize_profile(issuer_profile(base_url, endorser)),
        subject_id,
        comment,
        issued_at,
    )
    key = active_signing_key(session, vault, endorser)
    document = sign_eddsa_rdfc_2022(
        unsigned,
        load_private_key(vault, key),
        verification_method_id(base_url, endorser, key),
        created=issued_at,
    )
    record = EndorsementRecord(
        provider_id=provider.id,
        public_id=public_id,
        subject_type="Profile" if achievement is None else "Achievement",
        achievement_id=achievement.id if achievement is not None else None,
        endorser_name=endorser.name,
        endorsement_comment=comment,
        document=document,
        issued_at=issued_at,
    )
    session.add(record)
    session.flush()

    return record


def build_endorsement_credential(
    credential_id: str,
    endorser_profile: dict[str, Any],
    subject_id: str,
    comment: str,
    valid_from: datetime,
) -> dict[str, Any]:
    """Build an unsigned OB 3.0 EndorsementCredential."""
    return {
        "@context": [VC2_CONTEXT, OB3_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "EndorsementCredential"],
        "name": f"{endorser_profile['name']} endorsement",
        "issuer": endorser_profile,
        "validFrom": format_timestamp(valid_from),
        "credentialSubject": {
            "id": subject_id,
            "type": ["EndorsementSubject"],
            "endorsementComment": comment,
        },
    }


def endorsements_for(
    session: Session, provider: Provider, achievement: Achievement | None = None
) -> list[EndorsementRecord]:
    """Return the live endorsements of a provider's profile and of `achievement`."""
    subjects = EndorsementRecord.subject_type == "Profile"
    if achievement is not None:
        subjects = or_(subjects, EndorsementRecord.achievement_id == achievement.id)

    return list(
        session.scalars(
            select(EndorsementRecord)
            .where(
                EndorsementRecord.provider_id == provider.id,
                EndorsementRecord.revoked_at.is_(None),
                subjects,
            )
            .order_by(EndorsementRecord.id)
        )
    )
