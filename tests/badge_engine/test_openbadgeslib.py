"""openbadgeslib, a verifier we did not write, on the credentials the engine issues.

openbadgeslib (4.6.1 or later, the `ldp` extra) verifies OB 3.0 credentials secured
with eddsa-rdfc-2022 (OB3LdpVerifier) and VC-JWTs (OB3Verifier) when given the
issuer's public key. Both raise OB3VerificationError for a credential they reject.
"""

import copy
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from openbadgeslib.ob3 import OB3LdpVerifier, OB3VerificationError, OB3Verifier

from badge_engine import ob3
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.did import did_web
from badge_engine.vc_jwt import sign_vc_jwt

BASE = "https://bridge.example.org"
ISSUER_DID = did_web(BASE, ["issuers", "acme"])
METHOD = f"{ISSUER_DID}#key-1"
# openbadgeslib checks validFrom and validUntil against the clock, so the dates are
# relative to now.
AWARDED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


@pytest.fixture(scope="module")
def ed_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def rsa_key():
    return generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def credential():
    """An OpenBadgeCredential of the shape the bridge issues, with every option."""
    return ob3.build_open_badge_credential(
        credential_id=f"{BASE}/credentials/7",
        issuer=ob3.IssuerProfile(
            id=ISSUER_DID,
            name="Acme Relief Academy",
            url="https://acme.org",
            description="Training for field staff.",
            image=f"{BASE}/issuers/acme/logo.png",
        ),
        achievement=ob3.AchievementData(
            id=f"{BASE}/achievements/42",
            name="Field Security Basics ✓",
            description="Recognises completion of the field security course.",
            criteria_narrative='Complete every module.\nPass the "final" quiz.',
            image=f"{BASE}/achievements/42/image.png",
            tags=("security", "field", "sécurité"),
            language="en",
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=AWARDED,
        valid_until=AWARDED + timedelta(days=365),
        awarded_date=AWARDED,
        credential_status={
            "id": f"{BASE}/status/acme#7",
            "type": "1EdTechRevocationList",
        },
        evidence=[ob3.EvidenceData(id=f"{BASE}/evidence/7", name="Final quiz")],
    )


@pytest.fixture(scope="module")
def signed(credential, ed_key):
    return sign_eddsa_rdfc_2022(credential, ed_key, METHOD, AWARDED)


def test_ldp_accepts_eddsa_credential(signed, ed_key):
    """OB3LdpVerifier accepts the engine's eddsa-rdfc-2022 credential."""
    verified = OB3LdpVerifier(pubkey_pem=ed_key.public_key()).verify(signed)

    assert verified.issuer.id == ISSUER_DID
    assert verified.achievement.name == "Field Security Basics ✓"


def test_ldp_rejects_tampered_name(signed, ed_key):
    """OB3LdpVerifier rejects the credential after its achievement name changed."""
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["achievement"]["name"] = "Leadership"

    with pytest.raises(OB3VerificationError, match="signature mismatch"):
        OB3LdpVerifier(pubkey_pem=ed_key.public_key()).verify(tampered)


def test_ldp_rejects_tampered_date(signed, ed_key):
    """OB3LdpVerifier rejects the credential after its validFrom changed."""
    tampered = copy.deepcopy(signed)
    tampered["validFrom"] = "2020-01-01T00:00:00Z"

    with pytest.raises(OB3VerificationError, match="signature mismatch"):
        OB3LdpVerifier(pubkey_pem=ed_key.public_key()).verify(tampered)


def test_ldp_rejects_wrong_key(signed):
    """OB3LdpVerifier rejects the credential under another issuer key."""
    other = Ed25519PrivateKey.generate().public_key()

    with pytest.raises(OB3VerificationError, match="signature mismatch"):
        OB3LdpVerifier(pubkey_pem=other).verify(signed)


def test_jwt_accepts_eddsa_token(credential, ed_key):
    """OB3Verifier accepts the engine's EdDSA VC-JWT."""
    token = sign_vc_jwt(credential, ed_key, METHOD)

    verified = OB3Verifier(pubkey_pem=ed_key.public_key()).verify(token)

    assert verified.issuer.id == ISSUER_DID
    assert verified.achievement.name == "Field Security Basics ✓"


def test_jwt_accepts_rs256_token(credential, rsa_key):
    """OB3Verifier accepts the engine's RS256 VC-JWT."""
    token = sign_vc_jwt(credential, rsa_key, METHOD, alg="RS256")

    verified = OB3Verifier(pubkey_pem=rsa_key.public_key()).verify(token)

    assert verified.issuer.id == ISSUER_DID


def test_jwt_accepts_signed_credential(signed, ed_key):
    """A credential with its Data Integrity proof, then signed as a JWT, verifies."""
    token = sign_vc_jwt(signed, ed_key, METHOD)

    verified = OB3Verifier(pubkey_pem=ed_key.public_key()).verify(token)

    assert verified.issuer.id == ISSUER_DID


def test_jwt_rejects_tampered_token(credential, ed_key):
    """OB3Verifier rejects a token whose payload was swapped for another's."""
    token = sign_vc_jwt(credential, ed_key, METHOD)
    changed = copy.deepcopy(credential)
    changed["credentialSubject"]["achievement"]["name"] = "Leadership"
    other = sign_vc_jwt(changed, ed_key, METHOD)
    header, _, signature = token.split(".")
    tampered = ".".join([header, other.split(".")[1], signature])

    with pytest.raises(OB3VerificationError, match="Invalid signature"):
        OB3Verifier(pubkey_pem=ed_key.public_key()).verify(tampered)


def test_jwt_rejects_wrong_key(credential, ed_key):
    """OB3Verifier rejects the token under another Ed25519 key."""
    token = sign_vc_jwt(credential, ed_key, METHOD)
    other = Ed25519PrivateKey.generate().public_key()

    with pytest.raises(OB3VerificationError, match="Invalid signature"):
        OB3Verifier(pubkey_pem=other).verify(token)
