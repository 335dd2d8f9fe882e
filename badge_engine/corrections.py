"""Corrections of an issued badge: a new version for every holder, history kept.

When an instructor fixes an achievement's name, description, criteria, image or
alignments, every live credential of it is issued again with the corrected text, the
same award date, validity and recipient. The earlier credential is marked superseded and points at its
successor. It is not revoked: its status bit stays clear and its signature still
verifies, because it was correct as issued. Verifiers learn of the successor from
the version history served beside each credential (`versions_document`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.errors import BadgeEngineError
from badge_engine.issuing import build_signed_document
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    Provider,
    new_public_id,
)
from badge_engine.status import allocate_status_index, bitstring_status_entry
from badge_engine.urls import credential_url

CORRECTABLE_FIELDS = (
    "name",
    "description",
    "criteria_narrative",
    "image_url",
    "alignments",
)


class CorrectionRejected(BadgeEngineError):
    """A correction that changes nothing, or names a field that cannot be corrected."""


@dataclass(frozen=True)
class Correction:
    achievement_id: int
    changed: tuple[str, ...]
    # (superseded credential, its new version) for every holder.
    versions: tuple[tuple[Credential, Credential], ...]


def correct_achievement(
    session: Session,
    *,
    vault,
    base_url: str,
    achievement: Achievement,
    changes: dict[str, Any],
) -> Correction:
    """Apply `changes` to the achievement and issue a new version to each holder.

    Runs in the caller's transaction; the caller queues deliveries of the new
    versions and commits. Raises CorrectionRejected for an unknown field or when
    nothing changes.
    """
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise CorrectionRejected(
            f"cannot correct {', '.join(unknown)}; correctable fields are "
            f"{', '.join(CORRECTABLE_FIELDS)}"
        )
    changed = tuple(
        field
        for field in CORRECTABLE_FIELDS
        if field in changes and changes[field] != getattr(achievement, field)
    )
    if not changed:
        raise CorrectionRejected(
            f"the correction of achievement {achievement.public_id} changes nothing; "
            "edit the name, description, criteria, image or alignments first"
        )
    for field in changed:
        setattr(achievement, field, changes[field])

    live = session.scalars(
        select(Credential)
        .where(
            Credential.provider_id == achievement.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.status == CredentialStatus.LIVE.value,
        )
        .order_by(Credential.id)
    ).all()
    provider = session.get(Provider, achievement.provider_id)
    versions = tuple(
        (old, _issue_new_version(session, vault, base_url, provider, old))
        for old in live
    )
    return Correction(achievement.id, changed, versions)


def _issue_new_version(
    session: Session, vault, base_url: str, provider: Provider, old: Credential
) -> Credential:
    live_key = old.live_key
    old.status = CredentialStatus.SUPERSEDED.value
    old.live_key = None
    old.superseded_at = utcnow()
    old.supersede_reason = "correction"
    # The unique live key moves to the new version, so the old row lets go first.
    session.flush()

    public_id = new_public_id()
    index = allocate_status_index(session, provider.id)
    document = build_signed_document(
        session,
        vault=vault,
        base_url=base_url,
        provider=provider,
        achievement=old.achievement,
        learner=old.learner,
        credential_public_id=public_id,
        awarded_at=old.awarded_at,
        credential_status=bitstring_status_entry(base_url, provider.slug, index),
        valid_until=old.valid_until,
    )
    new = Credential(
        provider_id=provider.id,
        public_id=public_id,
        achievement_id=old.achievement_id,
        learner_id=old.learner_id,
        live_key=live_key,
        awarded_at=old.awarded_at,
        source_fact_id=old.source_fact_id,
        document=document,
        status_list_index=index,
        valid_until=old.valid_until,
        previous_credential_id=old.id,
    )
    session.add(new)
    session.flush()
    old.superseded_by_id = new.id
    return new


def version_chain(session: Session, credential: Credential) -> list[Credential]:
    """Return every version of the credential, oldest first, scoped by provider."""

    def load(credential_id: int | None) -> Credential | None:
        if credential_id is None:
            return None
        return session.scalar(
            select(Credential).where(
                Credential.id == credential_id,
                Credential.provider_id == credential.provider_id,
            )
        )

    first = credential
    seen = {first.id}
    while (previous := load(first.previous_credential_id)) and previous.id not in seen:
        seen.add(previous.id)
        first = previous
    chain = [first]
    walked = {first.id}
    while (
        following := load(chain[-1].superseded_by_id)
    ) and following.id not in walked:
        walked.add(following.id)
        chain.append(following)
    return chain


def versions_document(
    session: Session, base_url: str, credential: Credential
) -> dict[str, Any]:
    """Build the public version history of a credential.

    `supersededBy` is the next version, `current` the newest one. A verifier reads
    it to report a superseded credential.
    """
    chain = version_chain(session, credential)
    by_id = {version.id: version for version in chain}
    successor = by_id.get(credential.superseded_by_id)
    return {
        "id": credential_url(base_url, credential.public_id),
        "status": credential.status,
        "supersededBy": successor and credential_url(base_url, successor.public_id),
        "supersededAt": credential.superseded_at
        and credential.superseded_at.isoformat(),
        "supersedeReason": credential.supersede_reason,
        "current": credential_url(base_url, chain[-1].public_id),
        "versions": [
            {
                "id": credential_url(base_url, version.public_id),
                "version": number,
                "issuedAt": version.issued_at.isoformat(),
                "status": version.status,
                "reason": version.supersede_reason,
            }
            for number, version in enumerate(chain, start=1)
        ],
    }
