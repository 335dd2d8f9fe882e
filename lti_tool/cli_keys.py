"""`hpass-bridge keys`: list and rotate the bridge's keys, per kind.

    lti          each LTI registration's RSA tool key (the platform reads its JWKS)
    signing      each provider's Ed25519 issuer keys (listed in its did.json)
    encryption   the Fernet keys that encrypt every secret at rest

Rotating a tool or signing key keeps the old public key published, so messages
and credentials signed before still verify. Rotating the encryption key
re-encrypts every stored secret with the first key of HPASS_ENCRYPTION_KEYS.
"""

from __future__ import annotations

import click
from cryptography.fernet import Fernet

from lti_tool.cli_support import emit, json_option, operator_session, table
from lti_tool.operations import InvalidInput, provider_by_slug
from lti_tool.operations.keys import (
    KINDS,
    list_keys,
    rotate_encryption_key,
    rotate_provider_key,
)


@click.group()
def keys() -> None:
    """List and rotate LTI tool keys, provider signing keys and the encryption key."""


@keys.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind of key.")
@click.option("--provider", "provider_slug", help="Only this provider's keys.")
@json_option
def list_(kind, provider_slug, as_json):
    """List keys with their ids (never the private halves)."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug) if provider_slug else None
        rows = list_keys(op.session, op.bridge, op.actor, kind=kind, provider=found)
        op.session.commit()
    emit(
        {"keys": rows},
        as_json,
        table(rows, ["kind", "provider", "id", "active", "owner"], "no keys"),
    )


@keys.command("rotate")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    required=True,
    help="Which kind of key to rotate.",
)
@click.option(
    "--provider",
    "provider_slug",
    help="Provider whose LTI tool keys or signing key to rotate.",
)
@json_option
def rotate(kind, provider_slug, as_json):
    """Put a new key in use; old public keys stay published."""
    with operator_session(as_json) as op:
        if kind == "encryption":
            result = rotate_encryption_key(op.session, op.bridge, op.actor)
        else:
            if not provider_slug:
                raise InvalidInput(
                    f"--kind {kind} needs --provider SLUG", code="provider_required"
                )
            found = provider_by_slug(op.session, provider_slug)
            result = rotate_provider_key(op.session, op.bridge, op.actor, found, kind)
        op.session.commit()
    emit(
        {"status": "rotated", "kind": kind, **result},
        as_json,
        f"{kind} key rotated: " + ", ".join(f"{k} {v}" for k, v in result.items()),
    )


@keys.command("new-encryption-key")
@json_option
def new_encryption_key(as_json):
    """Print a new Fernet key to put first in HPASS_ENCRYPTION_KEYS."""
    key = Fernet.generate_key().decode()
    emit({"key": key}, as_json, key)
