"""End-to-end verification of signed OpenBadgeCredentials."""

import copy
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from badge_engine import ob3
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.did import build_did_document, did_key, did_web
from badge_engine.verify import verify_open_badge_credential

ISSUER_DID = did_web("https://bridge.example.org", ["issuers", "acme"])
METHOD = f"{ISSUER_DID}#key-1"
VALID_FROM = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _unsigned(issuer_id=ISSUER_DID, **overrides):
    return ob3.build_open_badge_credential(
        credential_id="https://bridge.example.org/credentials/7",
        issuer=ob3.IssuerProfile(
            id=issuer_id, name="Acme", url="https://acme.example.org"
        ),
        achievement=ob3.AchievementData(
            id="https://bridge.example.org/achievements/42",
            name="Field Security Basics",
            description="Recognises completion of the field security course.",
            criteria_narrative="Complete every module.",
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=VALID_FROM,
        **overrides,
    )


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def did_document(key):
    return build_did_document(ISSUER_DID, [key.public_key()])


@pytest.fixture(scope="module")
def signed(key):
    return sign_eddsa_rdfc_2022(_unsigned(), key, METHOD, VALID_FROM)


def _resolver(*documents):
    by_did = {document["id"]: document for document in documents}

    def resolve(did):
        return by_did[did]

    return resolve


def test_signed_credential_verifies(signed, did_document):
    """A credential signed with the issuer's did:web key passes every check."""
    result = verify_open_badge_credential(signed, _resolver(did_document), now=NOW)

    assert result.errors == []
    assert result.verified
    assert [check.split(":")[0] for check in result.checks] == [
        "schema",
        "proof[0]",
        "validity",
        "issuer",
    ]


def test_did_key_issuer_verifies(key):
    """A did:key issuer verifies without calling the resolver."""
    issuer_did = did_key(key.public_key())
    method = f"{issuer_did}#{issuer_did.removeprefix('did:key:')}"
    signed = sign_eddsa_rdfc_2022(_unsigned(issuer_did), key, method, VALID_FROM)

    def resolve(did):
        pytest.fail("the resolver must not be called for did:key")

    result = verify_open_badge_credential(signed, resolve, now=NOW)

    assert result.errors == []
    assert result.verified


def test_tampered_credential_fails(signed, did_document):
    """A changed recipient hash fails the proof check by name."""
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["identifier"][0]["identityHash"] = ob3.hash_email(
        "attacker@example.org", "pepper"
    )

    result = verify_open_badge_credential(tampered, _resolver(did_document), now=NOW)

    assert not result.verified
    assert len(result.errors) == 1
    assert result.errors[0].startswith("proof[0].proofValue:")


def test_wrong_key_in_did_document_fails(signed):
    """A DID document that publishes another key does not verify the proof."""
    other = build_did_document(ISSUER_DID, [Ed25519PrivateKey.generate().public_key()])

    result = verify_open_badge_credential(signed, _resolver(other), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("proof[0].proofValue:")


def test_key_not_assertion_method_fails(signed, did_document):
    """A key listed only for authentication may not sign credentials."""
    document = copy.deepcopy(did_document)
    document["assertionMethod"] = []

    result = verify_open_badge_credential(signed, _resolver(document), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("proof[0].verificationMethod:")
    assert "assertionMethod" in result.errors[0]


def test_resolver_failure_is_reported(signed):
    """A DID that the resolver cannot find is an error in the result."""
    result = verify_open_badge_credential(signed, _resolver(), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("proof[0].verificationMethod:")
    assert ISSUER_DID in result.errors[0]


def test_not_yet_valid_fails(signed, did_document):
    """Before validFrom the credential fails with the validFrom path."""
    before = VALID_FROM - timedelta(seconds=1)

    result = verify_open_badge_credential(signed, _resolver(did_document), now=before)

    assert not result.verified
    assert result.errors == [
        "validFrom: the credential is not valid before 2024-05-01T12:00:00Z."
    ]


def test_expired_fails(key, did_document):
    """At or after validUntil the credential fails with the validUntil path."""
    unsigned = _unsigned(valid_until=VALID_FROM + timedelta(days=10))
    signed = sign_eddsa_rdfc_2022(unsigned, key, METHOD, VALID_FROM)

    result = verify_open_badge_credential(signed, _resolver(did_document), now=NOW)

    assert not result.verified
    assert result.errors == [
        "validUntil: the credential expired at 2024-05-11T12:00:00Z."
    ]


def test_issuer_mismatch_fails(key, did_document):
    """A credential naming another issuer than the key's DID fails the issuer check."""
    unsigned = _unsigned("did:web:other.example.org")
    signed = sign_eddsa_rdfc_2022(unsigned, key, METHOD, VALID_FROM)

    result = verify_open_badge_credential(signed, _resolver(did_document), now=NOW)

    assert not result.verified
    assert result.errors == [
        "issuer: the issuer 'did:web:other.example.org' is not the DID "
        f"{ISSUER_DID!r} of the signing key {METHOD!r}."
    ]


def test_foreign_controller_fails(signed, did_document):
    """A key whose controller is another DID does not speak for the issuer."""
    document = copy.deepcopy(did_document)
    document["verificationMethod"][0]["controller"] = "did:web:other.example.org"

    result = verify_open_badge_credential(signed, _resolver(document), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("issuer: the signing key")


def test_schema_errors_are_reported(signed, did_document):
    """A schema violation is reported with its path even when the proof also fails."""
    broken = copy.deepcopy(signed)
    broken["credentialSubject"]["achievement"]["type"] = "Achievement"

    result = verify_open_badge_credential(broken, _resolver(did_document), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("schema: $.credentialSubject.achievement.type")


def test_non_object_is_reported(did_document):
    """A JSON array instead of a credential is a result error, not an exception."""
    result = verify_open_badge_credential([], _resolver(did_document), now=NOW)

    assert not result.verified
    assert result.errors == ["$: expected a JSON object, received list."]
