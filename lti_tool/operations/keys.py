"""Key actions: list and rotate LTI tool keys, provider signing keys and the
encryption key.

    lti          each LTI registration's RSA tool key (the platform reads its JWKS)
    signing      each provider's Ed25519 issuer keys (listed in its did.json)
    encryption   the Fernet keys that encrypt every secret at rest (operators only)

Rotating a tool or signing key keeps the old public key published, so messages
and credentials signed before still verify. Rotating the encryption key
re-encrypts every stored secret with the first key of HPASS_ENCRYPTION_KEYS.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.issuers import active_signing_key
from badge_engine.models import Provider, SigningKey
from lti_tool.bridge import Bridge
from lti_tool.lti import tool_keys
from lti_tool.models import Registration
from lti_tool.operations import InvalidInput, audit, iso

KINDS = ("lti", "signing", "encryption")
PROVIDER_KINDS = ("lti", "signing")


def fingerprint(key: bytes) -> str:
    # A digest identifies a key in listings without revealing it.
    return hashlib.sha256(key).hexdigest()[:16]


def check_kind(kind: str | None, allowed: tuple[str, ...] = KINDS) -> None:
    if kind is not None and kind not in allowed:
        raise InvalidInput(
            f"key kind {kind!r} is unknown; use one of {', '.join(allowed)}",
            code="invalid_kind",
        )


def _encrypted_columns():
    """Yield (model, column name) for every secret encrypted at rest."""
    from lti_tool.operations.tables import provider_tables

    provider_tables()  # imports every model
    from badge_engine.db import Base

    for mapper in Base.registry.mappers:
        for column in mapper.columns:
            if column.key.endswith("_encrypted"):
                yield mapper.class_, column.key


def list_keys(
    session: Session,
    bridge: Bridge,
    actor: str,
    *,
    kind: str | None = None,
    provider: Provider | None = None,
    include_encryption: bool = True,
) -> list[dict[str, Any]]:
    """List keys with their ids (never the private halves) and audit the read."""
    check_kind(kind)
    rows: list[dict[str, Any]] = []
    if kind in (None, "lti"):
        query = select(Registration, Provider.slug).join(
            Provider, Provider.id == Registration.provider_id
        )
        if provider:
            query = query.where(Registration.provider_id == provider.id)
        for registration, slug in session.execute(query.order_by(Registration.id)):
            rows.append(
                {
                    "kind": "lti",
                    "provider": slug,
                    "id": registration.tool_key_id,
                    "active": True,
                    "owner": f"{registration.issuer} {registration.client_id}",
                }
            )
            if registration.previous_tool_key_id:
                rows.append(
                    {
                        "kind": "lti",
                        "provider": slug,
                        "id": registration.previous_tool_key_id,
                        "active": False,
                        "owner": registration.issuer,
                    }
                )
    if kind in (None, "signing"):
        query = select(SigningKey, Provider.slug).join(
            Provider, Provider.id == SigningKey.provider_id
        )
        if provider:
            query = query.where(SigningKey.provider_id == provider.id)
        for key, slug in session.execute(query.order_by(SigningKey.id)):
            rows.append(
                {
                    "kind": "signing",
                    "provider": slug,
                    "id": key.key_name,
                    "active": key.active,
                    "owner": key.public_key_multibase,
                    "created_at": iso(key.created_at),
                }
            )
    if include_encryption and kind in (None, "encryption"):
        for index, key in enumerate(bridge.settings.encryption_keys):
            rows.append(
                {
                    "kind": "encryption",
                    "provider": None,
                    "id": fingerprint(key),
                    "active": index == 0,
                    "owner": "encrypts new secrets"
                    if index == 0
                    else "decrypts older secrets",
                }
            )
    audit(
        session,
        actor,
        "key.listed",
        provider_id=provider.id if provider else None,
        detail={"kind": kind} if kind else None,
    )

    return rows


def rotate_provider_key(
    session: Session, bridge: Bridge, actor: str, provider: Provider, kind: str
) -> dict[str, Any]:
    """Put a new LTI tool key or signing key of one provider in use."""
    check_kind(kind, PROVIDER_KINDS)
    if kind == "lti":
        registrations = session.scalars(
            select(Registration).where(Registration.provider_id == provider.id)
        )
        new_ids = [tool_keys.rotate(item, bridge.vault) for item in registrations]
        if not new_ids:
            problem = (
                f"provider {provider.slug!r} has no LTI registration, so it has no "
                "tool key to rotate"
            )
            raise InvalidInput(
                f"{problem}; add one with `hpass-bridge platform add`",
                code="nothing_to_rotate",
                api_message=f"{problem}; connect the LMS platform first (LTI "
                "Dynamic Registration, or `hpass-bridge platform add` on the "
                "bridge's host)",
            )
        result: dict[str, Any] = {"new_keys": new_ids}
    else:
        for key in session.scalars(
            select(SigningKey).where(
                SigningKey.provider_id == provider.id, SigningKey.active.is_(True)
            )
        ):
            key.active = False
        session.flush()
        key = active_signing_key(session, bridge.vault, provider)
        result = {"new_key": key.key_name}
    audit(session, actor, "key.rotated", provider_id=provider.id, detail={"kind": kind})

    return result


def rotate_encryption_key(session: Session, bridge: Bridge, actor: str) -> dict:
    """Re-encrypt every stored secret with the newest configured key."""
    count = 0
    for model, column in _encrypted_columns():
        for row in session.scalars(select(model)):
            value = getattr(row, column)
            if value is not None:
                setattr(row, column, bridge.vault.rotate(value))
                count += 1
    newest = fingerprint(bridge.settings.encryption_keys[0])
    audit(
        session, actor, "key.rotated", provider_id=None, detail={"kind": "encryption"}
    )

    return {"secrets_reencrypted": count, "key": newest}
