"""Open Badges 2.0 documents: hosted Assertion, BadgeClass, Issuer, CryptographicKey,
RevocationList, and signed assertions as compact JWS.

Every OB 2.0 document is derived from the same rows as the OB 3.0 credential, so the
two versions never disagree. The recipient is the salted hash already in the OB 3.0
credential, so nothing new about the learner is published.

OB 2.0 URLs (each a JSON-LD document under the OB 2.0 context):

    {base}/ob2/assertions/{public_id}           Assertion (hosted)
    {base}/ob2/badges/{public_id}               BadgeClass
    {base}/ob2/issuers/{slug}                   Issuer
    {base}/ob2/issuers/{slug}/keys/{key_name}   CryptographicKey
    {base}/ob2/issuers/{slug}/revocations       RevocationList

Signed assertions use the EdDSA JWS algorithm with the provider's Ed25519 key, whose
CryptographicKey publishes it as an SPKI PEM. The OB 2.0 specification shows RS256 in
its examples, but names no required algorithm.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from badge_engine.alignments import ob2_alignments
from badge_engine.errors import InvalidCredential
from badge_engine.models import Achievement, Credential, Provider, SigningKey
from badge_engine.multikey import public_key_from_multibase
from badge_engine.ob3 import format_timestamp

OB2_CONTEXT = "https://w3id.org/openbadges/v2"
OB2_JWS_ALGORITHM = "EdDSA"


def assertion_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/ob2/assertions/{public_id}"


def badge_class_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/ob2/badges/{public_id}"


def issuer_url(base_url: str, slug: str) -> str:
    return f"{base_url}/ob2/issuers/{slug}"


def key_url(base_url: str, slug: str, key_name: str) -> str:
    return f"{issuer_url(base_url, slug)}/keys/{key_name}"


def revocation_list_url(base_url: str, slug: str) -> str:
    return f"{issuer_url(base_url, slug)}/revocations"


def build_issuer(
    base_url: str, provider: Provider, keys: list[SigningKey] = ()
) -> dict[str, Any]:
    """Build the OB 2.0 Issuer of a provider, listing every key it signed with."""
    issuer: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "Issuer",
        "id": issuer_url(base_url, provider.slug),
        "name": provider.name,
        "url": provider.url,
        "revocationList": revocation_list_url(base_url, provider.slug),
    }
    if provider.email:
        issuer["email"] = provider.email
    if keys:
        issuer["publicKey"] = [
            key_url(base_url, provider.slug, key.key_name) for key in keys
        ]

    return issuer


def build_badge_class(base_url: str, achievement: Achievement) -> dict[str, Any]:
    """Build the OB 2.0 BadgeClass of an achievement."""
    badge_class: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "BadgeClass",
        "id": badge_class_url(base_url, achievement.public_id),
        "name": achievement.name,
        "description": achievement.description,
        "criteria": {"narrative": achievement.criteria_narrative},
        "issuer": issuer_url(base_url, achievement.provider.slug),
    }
    if achievement.image_url:
        badge_class["image"] = achievement.image_url
    if achievement.alignments:
        badge_class["alignment"] = ob2_alignments(achievement.alignments)

    return badge_class


def build_crypto_key(
    base_url: str, provider: Provider, key: SigningKey
) -> dict[str, Any]:
    """Build the OB 2.0 CryptographicKey that publishes a signing key as PEM."""
    public_key = public_key_from_multibase(key.public_key_multibase)
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "@context": OB2_CONTEXT,
        "type": "CryptographicKey",
        "id": key_url(base_url, provider.slug, key.key_name),
        "owner": issuer_url(base_url, provider.slug),
        "publicKeyPem": pem.decode("ascii"),
    }


def build_assertion(
    base_url: str,
    credential: Credential,
    *,
    signing_key_url: str | None = None,
) -> dict[str, Any]:
    """Build the OB 2.0 Assertion of a credential.

    Without `signing_key_url` the verification is `hosted`: a verifier fetches the
    assertion from its id. With it, the verification is `signed` by that key.
    Raises InvalidCredential when the OB 3.0 document has no hashed identifier.
    """
    identity = _first_identity(credential)
    verification: dict[str, Any] = {"type": "hosted"}
    if signing_key_url is not None:
        verification = {"type": "signed", "creator": signing_key_url}

    assertion: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "Assertion",
        "id": assertion_url(base_url, credential.public_id),
        "recipient": {
            "type": "email" if identity["identityType"] == "emailAddress" else "id",
            "hashed": True,
            "identity": identity["identityHash"],
        },
        "badge": badge_class_url(base_url, credential.achievement.public_id),
        "issuedOn": format_timestamp(credential.awarded_at),
        "verification": verification,
    }
    if identity.get("salt") is not None:
        assertion["recipient"]["salt"] = identity["salt"]
    valid_until = credential.document.get("validUntil")
    if valid_until:
        assertion["expires"] = valid_until
    if credential.revoked_at is not None:
        assertion["revoked"] = True
        assertion["revocationReason"] = credential.revocation_reason

    return assertion


def build_revocation_list(
    base_url: str, provider: Provider, revoked: list[Credential]
) -> dict[str, Any]:
    """Build the OB 2.0 RevocationList of a provider's revoked assertions."""
    return {
        "@context": OB2_CONTEXT,
        "type": "RevocationList",
        "id": revocation_list_url(base_url, provider.slug),
        "issuer": issuer_url(base_url, provider.slug),
        "revokedAssertions": [
            {
                "id": assertion_url(base_url, credential.public_id),
                "revocationReason": credential.revocation_reason,
            }
            for credential in revoked
        ],
    }


def sign_assertion(assertion: dict[str, Any], private_key: Ed25519PrivateKey) -> str:
    """Return the assertion as a compact JWS signed with EdDSA."""
    payload = json.dumps(assertion, separators=(",", ":"), ensure_ascii=False)
    return jwt.api_jws.encode(
        payload.encode("utf-8"), private_key, algorithm=OB2_JWS_ALGORITHM
    )


def public_key_from_pem(pem: Any) -> Ed25519PublicKey:
    """Load an Ed25519 key from a CryptographicKey's `publicKeyPem`.

    Raises InvalidCredential for any other key type or malformed PEM.
    """
    if not isinstance(pem, str):
        raise InvalidCredential("publicKeyPem: expected a PEM string.")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise InvalidCredential(
            f"publicKeyPem: not a PEM public key: {error}"
        ) from error
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidCredential(
            f"publicKeyPem: expected an Ed25519 key, found {type(key).__name__}; "
            "only EdDSA signed assertions are verified."
        )

    return key


def _first_identity(credential: Credential) -> dict[str, Any]:
    subject = credential.document.get("credentialSubject") or {}
    identifiers = subject.get("identifier") or []
    if not identifiers or not isinstance(identifiers[0], dict):
        raise InvalidCredential(
            "The credential has no hashed recipient identifier to publish as an "
            "OB 2.0 recipient.",
            credential_id=credential.public_id,
        )

    return identifiers[0]
