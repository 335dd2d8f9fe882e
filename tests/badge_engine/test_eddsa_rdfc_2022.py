"""Signing and verifying eddsa-rdfc-2022 Data Integrity proofs."""

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from badge_engine import canonical
from badge_engine.data_integrity import (
    compute_hash_data,
    sign_eddsa_rdfc_2022,
    verify_eddsa_rdfc_2022,
)
from badge_engine.errors import SigningError, VerificationError
from badge_engine.multikey import private_key_from_seed

VECTOR = json.loads(
    (Path(__file__).parent / "vectors/eddsa-rdfc-2022.json").read_text()
)
OPTIONS = VECTOR["proofOptions"]
EXPECTED = VECTOR["expected"]
METHOD = "did:key:z6MkExample#key-1"


@pytest.fixture(scope="module")
def vector_key():
    return private_key_from_seed(bytes.fromhex(VECTOR["keyPair"]["secretKeySeedHex"]))


@pytest.fixture(scope="module")
def signing_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signed(signing_key):
    return sign_eddsa_rdfc_2022(
        VECTOR["unsecuredCredential"],
        signing_key,
        METHOD,
        datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    )


def _only(key):
    return lambda verification_method: key.public_key()


def test_vector_canonical_document():
    """The document transforms to the vector's canonical N-Quads."""
    hashed = compute_hash_data(VECTOR["unsecuredCredential"], OPTIONS)

    assert hashed.canonical_document == EXPECTED["documentCanonicalNQuads"]


def test_vector_canonical_proof_config():
    """The proof options under the document's @context match the vector's N-Quads."""
    hashed = compute_hash_data(VECTOR["unsecuredCredential"], OPTIONS)

    assert hashed.canonical_proof_config == EXPECTED["proofCanonicalNQuads"]


def test_vector_hashes():
    """Both hashes are SHA-256 of the expected N-Quads, proof config hash first."""
    hashed = compute_hash_data(VECTOR["unsecuredCredential"], OPTIONS)

    document_hash = hashlib.sha256(
        EXPECTED["documentCanonicalNQuads"].encode()
    ).digest()
    config_hash = hashlib.sha256(EXPECTED["proofCanonicalNQuads"].encode()).digest()
    assert hashed.document_hash == document_hash
    assert hashed.proof_config_hash == config_hash
    assert hashed.hash_data == config_hash + document_hash


def test_vector_proof_value(vector_key):
    """Signing with the vector's key and options reproduces its proofValue."""
    signed = sign_eddsa_rdfc_2022(
        VECTOR["unsecuredCredential"],
        vector_key,
        OPTIONS["verificationMethod"],
        OPTIONS["created"],
        OPTIONS["proofPurpose"],
    )

    proof = signed["proof"][0]
    assert proof["proofValue"] == EXPECTED["proofValue"]
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["created"] == OPTIONS["created"]


def test_vector_signed_without_pyld(vector_key):
    """After a first signature, the vector is signed again on the template path."""
    arguments = (
        VECTOR["unsecuredCredential"],
        vector_key,
        OPTIONS["verificationMethod"],
        OPTIONS["created"],
        OPTIONS["proofPurpose"],
    )
    sign_eddsa_rdfc_2022(*arguments)
    before = canonical.fallback_count()

    signed = sign_eddsa_rdfc_2022(*arguments)

    assert signed["proof"][0]["proofValue"] == EXPECTED["proofValue"]
    assert canonical.fallback_count() == before


def test_vector_verifies(vector_key):
    """The vector's credential with its expected proof verifies."""
    secured = copy.deepcopy(VECTOR["unsecuredCredential"])
    secured["proof"] = {**OPTIONS, "proofValue": EXPECTED["proofValue"]}

    result = verify_eddsa_rdfc_2022(secured, _only(vector_key))

    assert result.errors == []
    assert result.verified


def test_sign_leaves_input_unchanged(signing_key):
    """Signing returns a new document and does not add a proof to its input."""
    document = copy.deepcopy(VECTOR["unsecuredCredential"])

    sign_eddsa_rdfc_2022(document, signing_key, METHOD, "2024-05-01T12:30:00Z")

    assert document == VECTOR["unsecuredCredential"]


def test_sign_writes_created_in_utc(signing_key):
    """An aware datetime in another timezone is written in UTC to the second."""
    created = datetime(2024, 5, 1, 14, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))

    signed = sign_eddsa_rdfc_2022(
        VECTOR["unsecuredCredential"], signing_key, METHOD, created
    )

    assert signed["proof"][0]["created"] == "2024-05-01T12:30:15Z"


def test_round_trip_verifies(signed, signing_key):
    """A document signed with a fresh key verifies with that key."""
    result = verify_eddsa_rdfc_2022(signed, _only(signing_key))

    assert result.errors == []
    assert result.verified
    assert result.checks == [
        f"proof[0]: eddsa-rdfc-2022 signature verified with {METHOD!r}."
    ]


def test_tampered_document_fails(signed, signing_key):
    """Changing a signed field fails and names proof[0].proofValue."""
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["achievement"]["name"] = "Leadership"

    result = verify_eddsa_rdfc_2022(tampered, _only(signing_key))

    assert not result.verified
    assert len(result.errors) == 1
    assert result.errors[0].startswith("proof[0].proofValue:")
    assert "changed after signing" in result.errors[0]


def test_tampered_proof_options_fail(signed, signing_key):
    """Changing the proof's created time also breaks the signature."""
    tampered = copy.deepcopy(signed)
    tampered["proof"][0]["created"] = "2030-01-01T00:00:00Z"

    result = verify_eddsa_rdfc_2022(tampered, _only(signing_key))

    assert not result.verified
    assert result.errors[0].startswith("proof[0].proofValue:")


def test_wrong_key_fails(signed):
    """A signature does not verify with another key."""
    other_key = Ed25519PrivateKey.generate()

    result = verify_eddsa_rdfc_2022(signed, _only(other_key))

    assert not result.verified
    assert METHOD in result.errors[0]


def test_unresolvable_key_is_result_error(signed):
    """A resolver that raises yields an error naming the verification method."""

    def resolve(verification_method):
        raise VerificationError("no such key", verification_method=verification_method)

    result = verify_eddsa_rdfc_2022(signed, resolve)

    assert not result.verified
    assert result.errors[0].startswith("proof[0].verificationMethod:")
    assert "no such key" in result.errors[0]


def test_missing_proof_fails(signing_key):
    """A document without proof is reported as not signed."""
    result = verify_eddsa_rdfc_2022(VECTOR["unsecuredCredential"], _only(signing_key))

    assert not result.verified
    assert result.errors == ["proof: missing, so the document is not signed."]


def test_single_proof_object_verifies(signed, signing_key):
    """A proof given as one object instead of an array also verifies."""
    single = copy.deepcopy(signed)
    single["proof"] = single["proof"][0]

    result = verify_eddsa_rdfc_2022(single, _only(signing_key))

    assert result.verified
    assert result.checks[0].startswith("proof:")


def test_wrong_cryptosuite_fails(signed, signing_key):
    """Another cryptosuite is reported by its path and value."""
    other = copy.deepcopy(signed)
    other["proof"][0]["cryptosuite"] = "ecdsa-rdfc-2019"

    result = verify_eddsa_rdfc_2022(other, _only(signing_key))

    assert not result.verified
    assert result.errors[0] == (
        "proof[0].cryptosuite: expected 'eddsa-rdfc-2022', received 'ecdsa-rdfc-2019'."
    )


def test_wrong_proof_purpose_fails(signed, signing_key):
    """A proof made for authentication does not verify as an assertion."""
    other = copy.deepcopy(signed)
    other["proof"][0]["proofPurpose"] = "authentication"

    result = verify_eddsa_rdfc_2022(other, _only(signing_key))

    assert not result.verified
    assert result.errors[0].startswith("proof[0].proofPurpose:")


def test_truncated_proof_value_fails(signed, signing_key):
    """A proofValue that is not 64 bytes is reported before any key lookup."""
    other = copy.deepcopy(signed)
    other["proof"][0]["proofValue"] = other["proof"][0]["proofValue"][:40]

    result = verify_eddsa_rdfc_2022(other, _only(signing_key))

    assert not result.verified
    assert "64 bytes" in result.errors[0]


def test_expired_proof_fails(signed, signing_key):
    """A proof past its expires time fails even with a valid signature."""
    other = copy.deepcopy(signed)
    other["proof"][0]["expires"] = "2024-06-01T00:00:00Z"

    result = verify_eddsa_rdfc_2022(
        other, _only(signing_key), now=datetime(2025, 1, 1, tzinfo=UTC)
    )

    assert not result.verified
    assert (
        result.errors[0]
        == "proof[0].expires: the proof expired at 2024-06-01T00:00:00Z."
    )


def test_sign_existing_proof_raises(signed, signing_key):
    """Signing a document that already has a proof raises SigningError."""
    with pytest.raises(SigningError, match="already has a proof"):
        sign_eddsa_rdfc_2022(signed, signing_key, METHOD, "2024-05-01T12:30:00Z")


def test_sign_naive_created_raises(signing_key):
    """A naive created datetime raises SigningError instead of guessing a zone."""
    with pytest.raises(SigningError, match="timezone-aware"):
        sign_eddsa_rdfc_2022(
            VECTOR["unsecuredCredential"], signing_key, METHOD, datetime(2024, 5, 1)
        )


def test_sign_malformed_created_raises(signing_key):
    """A created string without timezone raises SigningError naming the value."""
    with pytest.raises(SigningError, match="2024-05-01T12:30:00'"):
        sign_eddsa_rdfc_2022(
            VECTOR["unsecuredCredential"], signing_key, METHOD, "2024-05-01T12:30:00"
        )
