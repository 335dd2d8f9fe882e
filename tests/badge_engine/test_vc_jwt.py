"""Signing and verifying OB 3.0 credentials as VC-JWTs."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from badge_engine import ob3
from badge_engine.errors import SigningError, VerificationError
from badge_engine.vc_jwt import credential_from_vc_jwt, sign_vc_jwt, verify_vc_jwt

ISSUER_DID = "did:web:bridge.example.org:issuers:acme"
KID = f"{ISSUER_DID}#key-1"
NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ed_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def rsa_key():
    return generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def credential():
    return ob3.build_open_badge_credential(
        credential_id="https://bridge.example.org/credentials/7",
        issuer=ob3.IssuerProfile(id=ISSUER_DID, name="Acme", url="https://acme.org"),
        achievement=ob3.AchievementData(
            id="https://bridge.example.org/achievements/42",
            name="Field Security Basics",
            description="Recognises completion of the field security course.",
            criteria_narrative="Complete every module.",
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=datetime(2024, 5, 1, tzinfo=UTC),
        valid_until=datetime(2025, 5, 1, tzinfo=UTC),
    )


def _only(key):
    return lambda kid: key.public_key()


def _parts(token):
    header, payload, _ = token.split(".")
    return _decode_part(header), _decode_part(payload)


def _decode_part(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _encode_part(value):
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_eddsa_header(credential, ed_key):
    """The JOSE header holds exactly alg EdDSA, the kid and typ JWT."""
    header, _ = _parts(sign_vc_jwt(credential, ed_key, KID))

    assert header == {"alg": "EdDSA", "kid": KID, "typ": "JWT"}


def test_payload_claims(credential, ed_key):
    """The payload is the credential plus iss, jti, nbf and exp from its members."""
    _, payload = _parts(sign_vc_jwt(credential, ed_key, KID))

    assert payload["iss"] == ISSUER_DID
    assert payload["jti"] == credential["id"]
    assert payload["nbf"] == int(datetime(2024, 5, 1, tzinfo=UTC).timestamp())
    assert payload["exp"] == int(datetime(2025, 5, 1, tzinfo=UTC).timestamp())
    assert "sub" not in payload
    assert "vc" not in payload
    for key, value in credential.items():
        assert payload[key] == value


def test_subject_id_becomes_sub(credential, ed_key):
    """A credentialSubject with an id is repeated in the sub claim."""
    with_subject = {
        **credential,
        "credentialSubject": {**credential["credentialSubject"], "id": "did:key:z6Mk1"},
    }

    token = sign_vc_jwt(with_subject, ed_key, KID)

    assert _parts(token)[1]["sub"] == "did:key:z6Mk1"
    assert verify_vc_jwt(token, _only(ed_key), now=NOW).verified


def test_eddsa_round_trip(credential, ed_key):
    """An EdDSA token verifies with the issuer's Ed25519 key."""
    result = verify_vc_jwt(sign_vc_jwt(credential, ed_key, KID), _only(ed_key), now=NOW)

    assert result.errors == []
    assert result.verified
    assert result.checks == [f"signature: EdDSA signature verified with {KID!r}."]


def test_rs256_round_trip(credential, rsa_key):
    """An RS256 token verifies with the issuer's RSA key."""
    token = sign_vc_jwt(credential, rsa_key, KID, alg="RS256")

    result = verify_vc_jwt(token, _only(rsa_key), now=NOW)

    assert _parts(token)[0]["alg"] == "RS256"
    assert result.errors == []
    assert result.verified


def test_credential_from_token(credential, ed_key):
    """The credential read back from a token equals the one signed."""
    token = sign_vc_jwt(credential, ed_key, KID)

    assert credential_from_vc_jwt(token) == credential


def test_tampered_payload_fails(credential, ed_key):
    """A payload changed after signing fails the signature check."""
    token = sign_vc_jwt(credential, ed_key, KID)
    header, payload, signature = token.split(".")
    changed = _decode_part(payload)
    changed["credentialSubject"]["achievement"]["name"] = "Leadership"
    tampered = ".".join([header, _encode_part(changed), signature])

    result = verify_vc_jwt(tampered, _only(ed_key), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("signature:")
    assert "changed after signing" in result.errors[0]


def test_wrong_key_fails(credential, ed_key):
    """A token does not verify with another Ed25519 key."""
    token = sign_vc_jwt(credential, ed_key, KID)

    result = verify_vc_jwt(token, _only(Ed25519PrivateKey.generate()), now=NOW)

    assert not result.verified
    assert KID in result.errors[0]


def test_expired_fails(credential, ed_key):
    """A token past its exp is reported as expired."""
    token = sign_vc_jwt(credential, ed_key, KID)

    result = verify_vc_jwt(token, _only(ed_key), now=datetime(2026, 1, 1, tzinfo=UTC))

    assert not result.verified
    assert result.errors == [
        "payload.exp: the credential expired at 2025-05-01T00:00:00+00:00."
    ]


def test_not_yet_valid_fails(credential, ed_key):
    """A token before its nbf is reported as not yet valid."""
    token = sign_vc_jwt(credential, ed_key, KID)

    result = verify_vc_jwt(token, _only(ed_key), now=datetime(2024, 1, 1, tzinfo=UTC))

    assert not result.verified
    assert result.errors[0].startswith(
        "payload.nbf: the credential is not valid before"
    )


def test_unsigned_token_rejected(credential, ed_key):
    """A token with alg none is rejected before any key is resolved."""
    header = _encode_part({"alg": "none", "kid": KID, "typ": "JWT"})
    payload = _parts(sign_vc_jwt(credential, ed_key, KID))[1]
    token = f"{header}.{_encode_part(payload)}."
    resolved = []

    result = verify_vc_jwt(token, lambda kid: resolved.append(kid), now=NOW)

    assert not result.verified
    assert resolved == []
    assert result.errors[0].startswith("header.alg: expected one of ['EdDSA', 'RS256']")


def test_hmac_with_public_key_rejected(credential, rsa_key):
    """An HS256 token keyed with the issuer's public key bytes is rejected."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _hmac_token(credential, public_pem)

    result = verify_vc_jwt(forged, _only(rsa_key), now=NOW)

    assert not result.verified
    assert "HMAC tokens are never accepted" in result.errors[0]


def _hmac_token(credential, secret):
    signing_input = (
        _encode_part({"alg": "HS256", "kid": KID, "typ": "JWT"})
        + "."
        + _encode_part({**credential, "iss": ISSUER_DID})
    )
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_key_type_mismatch_fails(credential, ed_key, rsa_key):
    """An EdDSA token whose kid resolves to an RSA key is reported."""
    token = sign_vc_jwt(credential, ed_key, KID)

    result = verify_vc_jwt(token, _only(rsa_key), now=NOW)

    assert not result.verified
    assert "needs a Ed25519PublicKey" in result.errors[0]


def test_claim_mismatch_fails(credential, ed_key):
    """A jti that differs from the credential id is reported, though signed."""
    payload = {**credential, **_parts(sign_vc_jwt(credential, ed_key, KID))[1]}
    payload["jti"] = "https://bridge.example.org/credentials/8"
    token = jwt.encode(payload, ed_key, algorithm="EdDSA", headers={"kid": KID})

    result = verify_vc_jwt(token, _only(ed_key), now=NOW)

    assert not result.verified
    assert result.errors == [
        (
            "payload.jti: must equal the credential's id "
            "('https://bridge.example.org/credentials/7'), received "
            "'https://bridge.example.org/credentials/8'."
        )
    ]


def test_vc_claim_form_verifies(credential, ed_key):
    """A VC 1.1 style token with the credential in the vc claim verifies."""
    claims = _parts(sign_vc_jwt(credential, ed_key, KID))[1]
    payload = {key: claims[key] for key in ("iss", "jti", "nbf", "exp")}
    payload["vc"] = credential
    token = jwt.encode(payload, ed_key, algorithm="EdDSA", headers={"kid": KID})

    result = verify_vc_jwt(token, _only(ed_key), now=NOW)

    assert result.errors == []
    assert credential_from_vc_jwt(token) == credential


def test_missing_kid_fails(credential, ed_key):
    """A token without kid is rejected, because embedded keys are not trusted."""
    payload = _parts(sign_vc_jwt(credential, ed_key, KID))[1]
    token = jwt.encode(payload, ed_key, algorithm="EdDSA")

    result = verify_vc_jwt(token, _only(ed_key), now=NOW)

    assert not result.verified
    assert result.errors[0].startswith("header.kid: missing.")


def test_extra_header_fails(credential, ed_key):
    """A header parameter outside alg, kid, jwk and typ is reported."""
    payload = _parts(sign_vc_jwt(credential, ed_key, KID))[1]
    token = jwt.encode(
        payload, ed_key, algorithm="EdDSA", headers={"kid": KID, "x5u": "https://x"}
    )

    result = verify_vc_jwt(token, _only(ed_key), now=NOW)

    assert not result.verified
    assert result.errors == [
        "header: the parameters ['x5u'] are not allowed in an OB 3.0 VC-JWT."
    ]


def test_unresolvable_kid_is_result_error(credential, ed_key):
    """A resolver that raises yields an error naming the kid."""

    def resolve(kid):
        raise VerificationError("no such key", verification_method=kid)

    result = verify_vc_jwt(sign_vc_jwt(credential, ed_key, KID), resolve, now=NOW)

    assert not result.verified
    assert result.errors[0].startswith(f"header.kid: the key {KID!r} could not be")


@pytest.mark.parametrize(
    "token",
    ["", "not a token", "a.b", "a.b.c", None, 42, "eyJhbGciOiJFZERTQSJ9.e30"],
)
def test_malformed_token_is_result_error(token, ed_key):
    """Malformed tokens give an error in the result, never an exception."""
    result = verify_vc_jwt(token, _only(ed_key), now=NOW)

    assert not result.verified
    assert result.errors


def test_sign_rejects_hmac(credential, ed_key):
    """Signing with an algorithm other than EdDSA or RS256 raises SigningError."""
    with pytest.raises(SigningError, match="alg must be one of"):
        sign_vc_jwt(credential, ed_key, KID, alg="HS256")


def test_sign_rejects_wrong_key_type(credential, rsa_key):
    """EdDSA with an RSA key raises SigningError naming both."""
    with pytest.raises(SigningError, match="needs a Ed25519PrivateKey"):
        sign_vc_jwt(credential, rsa_key, KID)


def test_sign_needs_valid_from(credential, ed_key):
    """A credential without validFrom cannot give an nbf claim."""
    undated = {key: value for key, value in credential.items() if key != "validFrom"}

    with pytest.raises(SigningError, match="no validFrom"):
        sign_vc_jwt(undated, ed_key, KID)


def test_sign_rejects_clashing_claim(credential, ed_key):
    """A credential member named like a claim, with another value, raises."""
    with pytest.raises(SigningError, match=r"\['iss'\]"):
        sign_vc_jwt({**credential, "iss": "https://other.example"}, ed_key, KID)
