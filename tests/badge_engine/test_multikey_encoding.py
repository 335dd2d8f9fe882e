"""Ed25519 Multikey and base58btc encoding."""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from badge_engine import multikey
from badge_engine.errors import InvalidKey

VECTOR = json.loads(
    (Path(__file__).parent / "vectors/eddsa-rdfc-2022.json").read_text()
)


def _raw(public_key):
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_seed_gives_vector_public_key():
    """The vector's seed yields the vector's publicKeyMultibase."""
    seed = bytes.fromhex(VECTOR["keyPair"]["secretKeySeedHex"])

    private_key = multikey.private_key_from_seed(seed)

    encoded = multikey.public_key_to_multibase(private_key.public_key())
    assert encoded == VECTOR["keyPair"]["publicKeyMultibase"]


def test_public_key_round_trip():
    """A generated key survives encoding to Multikey and decoding back."""
    public_key = Ed25519PrivateKey.generate().public_key()

    encoded = multikey.public_key_to_multibase(public_key)

    assert encoded.startswith("z6Mk")
    assert _raw(multikey.public_key_from_multibase(encoded)) == _raw(public_key)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
    ],
)
def test_base58btc_known_values(data, text):
    """base58btc matches known encodings, including leading zero bytes."""
    assert multikey.base58btc_encode(data) == text
    assert multikey.base58btc_decode(text) == data


def test_base58btc_invalid_character_raises():
    """A character outside the alphabet (here '0') raises InvalidKey."""
    with pytest.raises(InvalidKey, match="'0'"):
        multikey.base58btc_decode("z0")


def test_multibase_other_base_raises():
    """A multibase value in another base than base58btc raises InvalidKey."""
    with pytest.raises(InvalidKey, match="starting with 'u'"):
        multikey.multibase_decode("uAAAA")


def test_public_key_wrong_multicodec_raises():
    """A multibase value without the ed25519-pub prefix is not accepted as a key."""
    not_ed25519 = multikey.multibase_encode(b"\x12\x00" + bytes(32))

    with pytest.raises(InvalidKey, match="0xed01"):
        multikey.public_key_from_multibase(not_ed25519)


def test_public_key_wrong_length_raises():
    """A key with the right prefix but 31 bytes raises InvalidKey."""
    short = multikey.multibase_encode(multikey.ED25519_PUB_MULTICODEC + bytes(31))

    with pytest.raises(InvalidKey, match="32 bytes"):
        multikey.public_key_from_multibase(short)


def test_seed_wrong_length_raises():
    """A seed that is not 32 bytes raises InvalidKey."""
    with pytest.raises(InvalidKey, match="32 bytes"):
        multikey.private_key_from_seed(bytes(16))
