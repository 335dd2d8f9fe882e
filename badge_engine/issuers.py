"""Issuer profiles and their signing keys, one issuer per provider."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine import did, multikey, ob3
from badge_engine.models import Provider, SigningKey
from badge_engine.urls import issuer_did, issuer_profile_url
from badge_engine.vault import Vault


def active_signing_key(
    session: Session, vault: Vault, provider: Provider
) -> SigningKey:
    """Return the provider's active Ed25519 key, creating the first one if needed.

    Two workers issuing a provider's first credentials at once both try to create
    the key. The unique key name lets one of them win, and the other signs with the
    winner's key.
    """
    key = _newest_active_key(session, provider)
    if key is not None:
        return key

    private_key = Ed25519PrivateKey.generate()
    raw = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    count = len(
        session.scalars(
            select(SigningKey.id).where(SigningKey.provider_id == provider.id)
        ).all()
    )
    key = SigningKey(
        provider_id=provider.id,
        algorithm="Ed25519",
        key_name=f"key-{count + 1}",
        public_key_multibase=multikey.public_key_to_multibase(private_key.public_key()),
        private_key_encrypted=vault.encrypt(raw),
    )
    try:
        with session.begin_nested():
            session.add(key)
            session.flush()
    except IntegrityError:
        winner = _newest_active_key(session, provider)
        if winner is None:
            raise
        return winner

    return key


def _newest_active_key(session: Session, provider: Provider) -> SigningKey | None:
    return session.scalars(
        select(SigningKey)
        .where(SigningKey.provider_id == provider.id, SigningKey.active.is_(True))
        .order_by(SigningKey.id.desc())
    ).first()


def load_private_key(vault: Vault, key: SigningKey) -> Ed25519PrivateKey:
    raw = vault.decrypt(key.private_key_encrypted, what=f"signing key {key.key_name}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def verification_method_id(base_url: str, provider: Provider, key: SigningKey) -> str:
    return f"{issuer_did(base_url, provider.slug)}#{key.key_name}"


def did_document(session: Session, base_url: str, provider: Provider) -> dict:
    """Build the provider's DID document, listing every key it ever signed with.

    A key that is no longer active still verifies the credentials it signed, so it
    stays listed; only the newest active key signs new credentials.
    """
    keys = session.scalars(
        select(SigningKey)
        .where(SigningKey.provider_id == provider.id)
        .order_by(SigningKey.id)
    ).all()
    return did.build_did_document(
        issuer_did(base_url, provider.slug),
        {key.key_name: key.public_key_multibase for key in keys},
    )


def issuer_profile(base_url: str, provider: Provider) -> ob3.IssuerProfile:
    """Return the Open Badges 3.0 Profile of a provider as embedded in credentials."""
    return ob3.IssuerProfile(
        id=issuer_did(base_url, provider.slug),
        name=provider.name,
        url=provider.url or issuer_profile_url(base_url, provider.slug),
        email=provider.email,
    )
