"""Issuer profiles and their signing keys, one issuer per provider."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine import did, multikey
from badge_engine.models import Provider, SigningKey
from badge_engine.urls import issuer_did, issuer_profile_url
from badge_engine.vault import Vault


def active_signing_key(
    session: Session, vault: Vault, provider: Provider
) -> SigningKey:
    """Return the provider's active Ed25519 key, creating the first one if needed."""
    key = session.scalars(
        select(SigningKey)
        .where(SigningKey.provider_id == provider.id, SigningKey.active.is_(True))
        .order_by(SigningKey.id.desc())
    ).first()
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
        public_key_multibase=multikey.encode_public_key(private_key.public_key()),
        private_key_encrypted=vault.encrypt(raw),
    )
    session.add(key)
    session.flush()

    return key


def load_private_key(vault: Vault, key: SigningKey) -> Ed25519PrivateKey:
    raw = vault.decrypt(key.private_key_encrypted, what=f"signing key {key.key_name}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def verification_method_id(base_url: str, provider: Provider, key: SigningKey) -> str:
    return f"{issuer_did(base_url, provider.slug)}#{key.key_name}"


def did_document(session: Session, base_url: str, provider: Provider) -> dict:
    """Build the provider's DID document, listing every key, revoked ones excluded."""
    keys = session.scalars(
        select(SigningKey)
        .where(SigningKey.provider_id == provider.id, SigningKey.active.is_(True))
        .order_by(SigningKey.id)
    ).all()
    subject = issuer_did(base_url, provider.slug)
    return did.build_did_document(
        subject,
        [key.public_key_multibase for key in keys],
        key_ids=[f"{subject}#{key.key_name}" for key in keys],
    )


def issuer_profile(base_url: str, provider: Provider) -> dict:
    """Return the Open Badges 3.0 Profile of a provider as embedded in credentials."""
    profile = {
        "id": issuer_did(base_url, provider.slug),
        "type": ["Profile"],
        "name": provider.name,
        "url": provider.url or issuer_profile_url(base_url, provider.slug),
    }
    if provider.email:
        profile["email"] = provider.email
    return profile
