"""Ed25519 keys in the encodings that DID documents and Data Integrity proofs use.

A Multikey `publicKeyMultibase` is the multicodec prefix 0xed 0x01 (varint of the
`ed25519-pub` code 0xed) followed by the 32 raw key bytes, encoded as base58btc with
the multibase prefix "z". Such keys start with "z6Mk". base58btc is implemented here
because it is a few lines and saves a dependency.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from badge_engine.errors import InvalidKey

ED25519_PUB_MULTICODEC = b"\xed\x01"
BASE58BTC_MULTIBASE_PREFIX = "z"

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(BASE58_ALPHABET)}


def base58btc_encode(data: bytes) -> str:
    """Encode bytes as base58 with the Bitcoin alphabet, keeping leading zero bytes.

    Each leading zero byte becomes a leading "1", as the encoding defines.
    """
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(BASE58_ALPHABET[remainder])

    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    """Decode base58btc text to bytes, raising InvalidKey on a foreign character."""
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise InvalidKey(
                f"Invalid base58btc text: {char!r} is not in the base58btc alphabet.",
                value=text,
            )
        number = number * 58 + digit

    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * leading_zeros + body


def multibase_encode(data: bytes) -> str:
    """Encode bytes as a base58btc multibase string (prefix "z")."""
    return BASE58BTC_MULTIBASE_PREFIX + base58btc_encode(data)


def multibase_decode(value: str) -> bytes:
    """Decode a base58btc multibase string, raising InvalidKey for any other base."""
    if not value.startswith(BASE58BTC_MULTIBASE_PREFIX):
        raise InvalidKey(
            "Expected a base58btc multibase value starting with 'z', received "
            f"one starting with {value[:1]!r}.",
            value=value,
        )

    return base58btc_decode(value[1:])


def public_key_to_multibase(public_key: Ed25519PublicKey) -> str:
    """Encode an Ed25519 public key as a Multikey publicKeyMultibase ("z6Mk…")."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return multibase_encode(ED25519_PUB_MULTICODEC + raw)


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    """Decode a Multikey publicKeyMultibase into an Ed25519 public key.

    Raises InvalidKey when the value is not base58btc, does not carry the ed25519-pub
    multicodec prefix, or does not hold exactly 32 key bytes.
    """
    decoded = multibase_decode(value)
    if not decoded.startswith(ED25519_PUB_MULTICODEC):
        raise InvalidKey(
            "The multibase value is not an Ed25519 public key: expected the multicodec "
            f"prefix 0xed01, received 0x{decoded[:2].hex()}.",
            value=value,
        )

    raw = decoded[len(ED25519_PUB_MULTICODEC) :]
    if len(raw) != 32:
        raise InvalidKey(
            f"An Ed25519 public key has 32 bytes, received {len(raw)}.", value=value
        )

    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """Build an Ed25519 private key from its 32-byte seed (RFC 8032 private key)."""
    if len(seed) != 32:
        raise InvalidKey(f"An Ed25519 seed has 32 bytes, received {len(seed)}.")

    return Ed25519PrivateKey.from_private_bytes(seed)
