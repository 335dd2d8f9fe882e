"""`hpass-bridge keys`: list and rotate the bridge's keys, per kind.

    lti          each LTI registration's RSA tool key (the platform reads its JWKS)
    signing      each provider's Ed25519 issuer keys (listed in its did.json)
    encryption   the Fernet keys that encrypt every secret at rest

Rotating a tool or signing key keeps the old public key published, so messages
and credentials signed before still verify. Rotating the encryption key
re-encrypts every stored secret with the first key of HPASS_ENCRYPTION_KEYS.
"""

from __future__ import annotations

import hashlib

import click
from cryptography.fernet import Fernet
from sqlalchemy import select

from badge_engine.issuers import active_signing_key
from badge_engine.models import Provider, SigningKey
from lti_tool.cli_support import emit, json_option, operator_session, table
from lti_tool.lti import tool_keys
from lti_tool.models import Registration
from lti_tool.operations import InvalidInput, audit, iso, provider_by_slug

KINDS = ("lti", "signing", "encryption")


def _fingerprint(key: bytes) -> str:
    # A digest identifies a key in listings without revealing it.
    return hashlib.sha256(key).hexdigest()[:16]


def _encrypted_columns():
    """Yield (model, column name) for every secret encrypted at rest."""
    from lti_tool.operations.tables import provider_tables

    provider_tables()  # imports every model
    from badge_engine.db import Base

    for mapper in Base.registry.mappers:
        for column in mapper.columns:
            if column.key.endswith("_encrypted"):
                yield mapper.class_, column.key


@click.group()
def keys() -> None:
    """List and rotate LTI tool keys, provider signing keys and the encryption key."""


@keys.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind of key.")
@click.option("--provider", "provider_slug", help="Only this provider's keys.")
@json_option
def list_(kind, provider_slug, as_json):
    """List keys with their ids (never the private halves)."""
    rows = []
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug) if provider_slug else None
        if kind in (None, "lti"):
            query = select(Registration, Provider.slug).join(
                Provider, Provider.id == Registration.provider_id)
            if found:
                query = query.where(Registration.provider_id == found.id)
            for registration, slug in op.session.execute(query):
                rows.append({"kind": "lti", "provider": slug,
                             "id": registration.tool_key_id, "active": True,
                             "owner": f"{registration.issuer} {registration.client_id}"})
                if registration.previous_tool_key_id:
                    rows.append({"kind": "lti", "provider": slug,
                                 "id": registration.previous_tool_key_id,
                                 "active": False, "owner": registration.issuer})
        if kind in (None, "signing"):
            query = select(SigningKey, Provider.slug).join(
                Provider, Provider.id == SigningKey.provider_id)
            if found:
                query = query.where(SigningKey.provider_id == found.id)
            for key, slug in op.session.execute(query.order_by(SigningKey.id)):
                rows.append({"kind": "signing", "provider": slug, "id": key.key_name,
                             "active": key.active, "owner": key.public_key_multibase,
                             "created_at": iso(key.created_at)})
        if kind in (None, "encryption"):
            for index, key in enumerate(op.bridge.settings.encryption_keys):
                rows.append({"kind": "encryption", "provider": None,
                             "id": _fingerprint(key), "active": index == 0,
                             "owner": "encrypts new secrets" if index == 0
                             else "decrypts older secrets"})
        audit(op.session, op.actor, "key.listed",
              provider_id=found.id if found else None)
        op.session.commit()
    emit({"keys": rows}, as_json,
         table(rows, ["kind", "provider", "id", "active", "owner"], "no keys"))


@keys.command("rotate")
@click.option("--kind", type=click.Choice(KINDS), required=True,
              help="Which kind of key to rotate.")
@click.option("--provider", "provider_slug",
              help="Provider whose LTI tool keys or signing key to rotate.")
@json_option
def rotate(kind, provider_slug, as_json):
    """Put a new key in use; old public keys stay published."""
    with operator_session(as_json) as op:
        if kind == "encryption":
            result = _rotate_encryption(op)
        else:
            if not provider_slug:
                raise InvalidInput(f"--kind {kind} needs --provider SLUG",
                                   code="provider_required")
            found = provider_by_slug(op.session, provider_slug)
            result = (_rotate_lti(op, found) if kind == "lti"
                      else _rotate_signing(op, found))
        audit(op.session, op.actor, "key.rotated",
              provider_id=result.get("provider_id"), detail={"kind": kind})
        op.session.commit()
    result.pop("provider_id", None)
    emit({"status": "rotated", "kind": kind, **result}, as_json,
         f"{kind} key rotated: " + ", ".join(f"{k} {v}" for k, v in result.items()))


def _rotate_lti(op, provider: Provider) -> dict:
    registrations = op.session.scalars(
        select(Registration).where(Registration.provider_id == provider.id))
    new_ids = [tool_keys.rotate(item, op.bridge.vault) for item in registrations]
    if not new_ids:
        raise InvalidInput(f"provider {provider.slug!r} has no LTI registration; "
                           "add one with `hpass-bridge platform add`",
                           code="nothing_to_rotate")
    return {"provider_id": provider.id, "new_keys": new_ids}


def _rotate_signing(op, provider: Provider) -> dict:
    for key in op.session.scalars(select(SigningKey).where(
            SigningKey.provider_id == provider.id, SigningKey.active.is_(True))):
        key.active = False
    op.session.flush()
    key = active_signing_key(op.session, op.bridge.vault, provider)
    return {"provider_id": provider.id, "new_key": key.key_name}


def _rotate_encryption(op) -> dict:
    """Re-encrypt every stored secret with the newest configured key."""
    count = 0
    for model, column in _encrypted_columns():
        for row in op.session.scalars(select(model)):
            value = getattr(row, column)
            if value is not None:
                setattr(row, column, op.bridge.vault.rotate(value))
                count += 1
    newest = _fingerprint(op.bridge.settings.encryption_keys[0])
    return {"provider_id": None, "secrets_reencrypted": count, "key": newest}


@keys.command("new-encryption-key")
@json_option
def new_encryption_key(as_json):
    """Print a new Fernet key to put first in HPASS_ENCRYPTION_KEYS."""
    key = Fernet.generate_key().decode()
    emit({"key": key}, as_json, key)
