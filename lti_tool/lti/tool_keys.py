"""The tool's own RSA keys per registration: JWKS, signing and rotation with overlap.

A platform caches the tool's key set, so a rotation keeps the previous public key in
the set until the next rotation; messages signed with the new key verify as soon as the
platform refetches, and messages signed just before the rotation still verify.
"""

from __future__ import annotations

import json
import threading
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from badge_engine.vault import Vault
from lti_tool.models import Registration

_private_keys: dict[tuple[int, str], rsa.RSAPrivateKey] = {}
_lock = threading.Lock()


def new_key_pair() -> tuple[bytes, str]:
    """Return (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) of a new key."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


def _jwk(public_pem: str, kid: str) -> dict:
    public_key = serialization.load_pem_public_key(public_pem.encode())
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


def jwks_of(registration: Registration) -> dict:
    """Return the registration's public key set: the current key, then the previous."""
    keys = [_jwk(registration.tool_public_key_pem, registration.tool_key_id)]
    if registration.previous_tool_key_id and registration.previous_tool_public_key_pem:
        keys.append(
            _jwk(
                registration.previous_tool_public_key_pem,
                registration.previous_tool_key_id,
            )
        )
    return {"keys": keys}


def private_key_of(registration: Registration, vault: Vault) -> rsa.RSAPrivateKey:
    """Return the current private key, decrypted and parsed once per process."""
    cache_key = (registration.id, registration.tool_key_id)
    key = _private_keys.get(cache_key)
    if key is None:
        pem = vault.decrypt(
            registration.tool_private_key_encrypted,
            what=f"LTI key of registration {registration.id}",
        )
        key = serialization.load_pem_private_key(pem, password=None)
        with _lock:
            _private_keys[cache_key] = key
    return key


def sign(registration: Registration, vault: Vault, claims: dict) -> str:
    """Sign `claims` as a JWT with the registration's current key (RS256)."""
    return jwt.encode(
        claims,
        private_key_of(registration, vault),
        algorithm="RS256",
        headers={"kid": registration.tool_key_id},
    )


def rotate(registration: Registration, vault: Vault) -> str:
    """Replace the current key with a new one, keeping its public part as previous.

    Returns the new key id; the caller commits.
    """
    private_pem, public_pem = new_key_pair()
    registration.previous_tool_key_id = registration.tool_key_id
    registration.previous_tool_public_key_pem = registration.tool_public_key_pem
    registration.tool_key_id = uuid.uuid4().hex
    registration.tool_private_key_encrypted = vault.encrypt(private_pem)
    registration.tool_public_key_pem = public_pem

    return registration.tool_key_id
