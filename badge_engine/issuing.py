"""Issue an achievement to a learner exactly once, as a signed OpenBadgeCredential."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine import ob3, renewal
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.db import utcnow
from badge_engine.issuers import (
    active_signing_key,
    issuer_profile,
    load_private_key,
    verification_method_id,
)
from badge_engine.locking import lock_award
from badge_engine.models import (
    Achievement,
    Credential,
    Learner,
    Provider,
    new_public_id,
)
from badge_engine.status import allocate_status_index, bitstring_status_entry
from badge_engine.urls import achievement_url, credential_url


@dataclass(frozen=True)
class IssueResult:
    credential: Credential
    created: bool


def live_key_of(achievement_id: int, learner_id: int) -> str:
    """Build the `live_key` a live credential of the pair holds."""
    return f"{achievement_id}:{learner_id}"


def _live_key(achievement: Achievement, learner: Learner) -> str:
    return live_key_of(achievement.id, learner.id)


def find_live_credential(
    session: Session, achievement: Achievement, learner: Learner
) -> Credential | None:
    return session.scalar(
        select(Credential).where(
            Credential.provider_id == achievement.provider_id,
            Credential.live_key == _live_key(achievement, learner),
        )
    )


def _recipient_identifiers(
    base_url: str, learner: Learner
) -> list[ob3.RecipientIdentity]:
    salt = secrets.token_hex(16)
    if learner.email:
        return [ob3.RecipientIdentity.from_email(learner.email, salt)]
    # Without an email the learner is identified by the LMS account, hashed the same way.
    account = f"{base_url}/lms/{learner.lms_connection_id}/users/{learner.lms_user_id}"
    return [ob3.RecipientIdentity.from_system_id(account, salt)]


@dataclass(frozen=True)
class CredentialSigner:
    """What signing a provider's credentials needs, loaded once for many credentials."""

    base_url: str
    provider: Provider
    issuer: ob3.IssuerProfile
    private_key: Ed25519PrivateKey
    verification_method: str

    @classmethod
    def load(
        cls, session: Session, *, vault, base_url: str, provider: Provider
    ) -> CredentialSigner:
        """Load the provider's active key, creating the first one if needed."""
        key = active_signing_key(session, vault, provider)
        return cls(
            base_url=base_url,
            provider=provider,
            issuer=issuer_profile(base_url, provider),
            private_key=load_private_key(vault, key),
            verification_method=verification_method_id(base_url, provider, key),
        )

    def sign(
        self,
        *,
        achievement: Achievement,
        learner: Learner,
        credential_public_id: str,
        awarded_at: datetime,
        credential_status: dict | None = None,
        valid_until: datetime | None = None,
    ) -> dict:
        """Build the OpenBadgeCredential of one award and sign it."""
        unsigned = ob3.build_open_badge_credential(
            credential_id=credential_url(self.base_url, credential_public_id),
            issuer=self.issuer,
            achievement=ob3.AchievementData(
                id=achievement_url(self.base_url, achievement.public_id),
                name=achievement.name,
                description=achievement.description,
                criteria_narrative=achievement.criteria_narrative,
                image=achievement.image_url,
                alignments=achievement.alignments or (),
            ),
            recipient_identifiers=_recipient_identifiers(self.base_url, learner),
            valid_from=awarded_at,
            awarded_date=awarded_at,
            name=achievement.name,
            credential_status=credential_status,
            valid_until=valid_until,
        )
        return sign_eddsa_rdfc_2022(
            unsigned, self.private_key, self.verification_method, created=utcnow()
        )


def build_signed_document(
    session: Session,
    *,
    vault,
    base_url: str,
    provider: Provider,
    achievement: Achievement,
    learner: Learner,
    credential_public_id: str,
    awarded_at: datetime,
    credential_status: dict | None = None,
    valid_until: datetime | None = None,
) -> dict:
    signer = CredentialSigner.load(
        session, vault=vault, base_url=base_url, provider=provider
    )
    return signer.sign(
        achievement=achievement,
        learner=learner,
        credential_public_id=credential_public_id,
        awarded_at=awarded_at,
        credential_status=credential_status,
        valid_until=valid_until,
    )


def issue_credential(
    session: Session,
    *,
    vault,
    base_url: str,
    achievement: Achievement,
    learner: Learner,
    awarded_at: datetime,
    source_fact_id: int | None = None,
) -> IssueResult:
    """Issue the achievement to the learner unless a live credential already exists.

    Runs in the caller's transaction. The unique `live_key` makes this safe when two
    workers race: the loser's insert fails, and it returns the winner's credential.
    """
    if achievement.provider_id != learner.provider_id:
        raise ValueError(
            f"achievement {achievement.id} belongs to provider {achievement.provider_id} "
            f"but learner {learner.id} to provider {learner.provider_id}"
        )
    # Wait for any other transaction issuing this pair, so it is seen before signing.
    lock_award(
        session,
        provider_id=achievement.provider_id,
        achievement_id=achievement.id,
        learner_id=learner.id,
    )
    existing = find_live_credential(session, achievement, learner)
    previous = None
    if existing is not None:
        if not renewal.is_recompletion(existing, awarded_at):
            return IssueResult(existing, created=False)
        # The LMS shows the course completed again after a reset: the new
        # credential replaces the live one and links back to it.
        previous = existing
        renewal.retire_for_renewal(session, existing)

    provider = session.get(Provider, achievement.provider_id)
    public_id = new_public_id()
    status_index = allocate_status_index(session, provider.id)
    valid_until = renewal.valid_until_for(achievement, awarded_at)
    document = build_signed_document(
        session,
        vault=vault,
        base_url=base_url,
        provider=provider,
        achievement=achievement,
        learner=learner,
        credential_public_id=public_id,
        awarded_at=awarded_at,
        credential_status=bitstring_status_entry(base_url, provider.slug, status_index),
        valid_until=valid_until,
    )
    credential = Credential(
        provider_id=provider.id,
        public_id=public_id,
        achievement_id=achievement.id,
        learner_id=learner.id,
        live_key=_live_key(achievement, learner),
        awarded_at=awarded_at,
        source_fact_id=source_fact_id,
        document=document,
        status_list_index=status_index,
        valid_until=valid_until,
        previous_credential_id=previous.id if previous else None,
    )
    try:
        with session.begin_nested():
            session.add(credential)
            session.flush()
    except IntegrityError:
        winner = find_live_credential(session, achievement, learner)
        if winner is None:
            raise
        return IssueResult(winner, created=False)

    if previous is not None:
        previous.superseded_by_id = credential.id
    provider.slug_frozen = True
    return IssueResult(credential, created=True)
