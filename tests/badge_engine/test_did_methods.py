"""did:web identifiers and documents, and did:key resolution."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from badge_engine import did
from badge_engine.errors import InvalidDid, InvalidKey, VerificationError
from badge_engine.multikey import public_key_to_multibase

ISSUER_DID = "did:web:bridge.example.org:issuers:acme"


def _raw(public_key):
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture(scope="module")
def public_key():
    return Ed25519PrivateKey.generate().public_key()


@pytest.mark.parametrize(
    ("base_url", "segments", "expected"),
    [
        ("https://bridge.example.org", ["issuers", "acme"], ISSUER_DID),
        ("https://bridge.example.org/", [], "did:web:bridge.example.org"),
        (
            "https://bridge.example.org:8443",
            ["issuers", "acme"],
            "did:web:bridge.example.org%3A8443:issuers:acme",
        ),
        (
            "https://bridge.example.org:443/hpass",
            ["issuers", "acme"],
            "did:web:bridge.example.org:hpass:issuers:acme",
        ),
        ("http://127.0.0.1:5000", ["i", "a"], "did:web:127.0.0.1%3A5000:i:a"),
        ("http://[::1]:5000", ["i"], "did:web:%5B%3A%3A1%5D%3A5000:i"),
        (
            "https://B.Example.ORG",
            ["a b", "x:y~"],
            "did:web:b.example.org:a%20b:x%3Ay%7E",
        ),
    ],
)
def test_did_web_encoding(base_url, segments, expected):
    """did_web encodes the port as %3A, joins segments by ':' and escapes the rest."""
    assert did.did_web(base_url, segments) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://bridge.example.org",
        "ftp://bridge.example.org",
        "https://user:secret@bridge.example.org",
        "https://bridge.example.org/?tenant=1",
        "bridge.example.org",
    ],
)
def test_did_web_rejects_unusable_base_url(base_url):
    """Plain http off loopback, other schemes, credentials and queries are rejected."""
    with pytest.raises(InvalidDid):
        did.did_web(base_url, ["issuers", "acme"])


def test_did_web_empty_segment_raises():
    """An empty path segment would make a DID that maps to no URL."""
    with pytest.raises(InvalidDid, match="must not be empty"):
        did.did_web("https://bridge.example.org", ["issuers", ""])


@pytest.mark.parametrize(
    ("did_text", "expected"),
    [
        (ISSUER_DID, "https://bridge.example.org/issuers/acme/did.json"),
        (
            "did:web:bridge.example.org",
            "https://bridge.example.org/.well-known/did.json",
        ),
        (
            "did:web:bridge.example.org%3A8443:issuers:acme#key-1",
            "https://bridge.example.org:8443/issuers/acme/did.json",
        ),
        ("did:web:127.0.0.1%3A5000:i:a", "https://127.0.0.1:5000/i/a/did.json"),
    ],
)
def test_document_url_uses_https(did_text, expected):
    """did.json URLs use https and ignore a verification method fragment."""
    assert did.did_web_document_url(did_text) == expected


@pytest.mark.parametrize(
    ("did_text", "expected"),
    [
        ("did:web:127.0.0.1%3A5000:i:a", "http://127.0.0.1:5000/i/a/did.json"),
        ("did:web:localhost%3A5000:i", "http://localhost:5000/i/did.json"),
        ("did:web:%5B%3A%3A1%5D%3A5000:i", "http://[::1]:5000/i/did.json"),
        ("did:web:bridge.example.org:i", "https://bridge.example.org/i/did.json"),
    ],
)
def test_document_url_loopback_http(did_text, expected):
    """allow_http_loopback gives http only for loopback hosts."""
    assert did.did_web_document_url(did_text, allow_http_loopback=True) == expected


@pytest.mark.parametrize(
    "did_text",
    [
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "did:web:",
        "did:web:evil.example%2Fpath%40:x",
        "did:web:bridge.example.org:..:x",
    ],
)
def test_document_url_rejects_malformed(did_text):
    """Non-did:web DIDs, hosts with URL syntax and dot segments are rejected."""
    with pytest.raises(InvalidDid):
        did.did_web_document_url(did_text)


def test_did_web_round_trips_to_url():
    """A DID built from a base URL resolves back under that base URL."""
    issuer_did = did.did_web("https://bridge.example.org:8443/hpass", ["issuers", "a"])

    url = did.did_web_document_url(issuer_did)

    assert url == "https://bridge.example.org:8443/hpass/issuers/a/did.json"


def test_build_did_document_shape(public_key):
    """Each key is a Multikey listed under assertionMethod and authentication."""
    second = Ed25519PrivateKey.generate().public_key()

    document = did.build_did_document(
        ISSUER_DID, [public_key, public_key_to_multibase(second)]
    )

    assert document["@context"] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    assert document["id"] == ISSUER_DID
    assert document["verificationMethod"][0] == {
        "id": f"{ISSUER_DID}#key-1",
        "type": "Multikey",
        "controller": ISSUER_DID,
        "publicKeyMultibase": public_key_to_multibase(public_key),
    }
    assert document["verificationMethod"][1]["id"] == f"{ISSUER_DID}#key-2"
    assert document["assertionMethod"] == [f"{ISSUER_DID}#key-1", f"{ISSUER_DID}#key-2"]
    assert document["authentication"] == document["assertionMethod"]


def test_build_did_document_explicit_fragments(public_key):
    """A mapping keeps the given fragments, so retired keys do not renumber others."""
    document = did.build_did_document(ISSUER_DID, {"key-3": public_key})

    assert document["assertionMethod"] == [f"{ISSUER_DID}#key-3"]


def test_build_did_document_rejects_bad_input(public_key):
    """No keys, a DID URL or a malformed multibase string are rejected."""
    with pytest.raises(InvalidDid):
        did.build_did_document(ISSUER_DID, [])
    with pytest.raises(InvalidDid):
        did.build_did_document(f"{ISSUER_DID}#key-1", [public_key])
    with pytest.raises(InvalidKey):
        did.build_did_document(ISSUER_DID, ["z6MkNotAKey"])


def test_public_key_from_document(public_key):
    """The key of a method listed in assertionMethod is returned."""
    document = did.build_did_document(ISSUER_DID, [public_key])

    found = did.public_key_from_did_document(document, f"{ISSUER_DID}#key-1")

    assert _raw(found) == _raw(public_key)


def test_public_key_relative_ids(public_key):
    """Relative method ids such as '#key-1' resolve against the document id."""
    document = did.build_did_document(ISSUER_DID, [public_key])
    document["verificationMethod"][0]["id"] = "#key-1"
    document["assertionMethod"] = ["#key-1"]

    found = did.public_key_from_did_document(document, f"{ISSUER_DID}#key-1")

    assert _raw(found) == _raw(public_key)


def test_public_key_requires_assertion_method(public_key):
    """A method listed only under authentication may not sign credentials."""
    document = did.build_did_document(ISSUER_DID, [public_key])
    document["assertionMethod"] = []

    with pytest.raises(VerificationError, match="assertionMethod") as raised:
        did.public_key_from_did_document(document, f"{ISSUER_DID}#key-1")

    assert raised.value.verification_method == f"{ISSUER_DID}#key-1"


def test_public_key_other_did_raises(public_key):
    """A document for another DID cannot vouch for this DID's key."""
    document = did.build_did_document("did:web:other.example", [public_key])

    with pytest.raises(VerificationError, match="not for"):
        did.public_key_from_did_document(document, f"{ISSUER_DID}#key-1")


def test_public_key_unknown_method_raises(public_key):
    """A method id that the document does not contain raises VerificationError."""
    document = did.build_did_document(ISSUER_DID, [public_key])

    with pytest.raises(VerificationError):
        did.public_key_from_did_document(document, f"{ISSUER_DID}#key-9")


def test_public_key_from_jwk_method(public_key):
    """A JsonWebKey2020 method with an OKP Ed25519 key is accepted."""
    x = base64.urlsafe_b64encode(_raw(public_key)).rstrip(b"=").decode()
    document = {
        "id": ISSUER_DID,
        "verificationMethod": [
            {
                "id": f"{ISSUER_DID}#jwk",
                "type": "JsonWebKey2020",
                "controller": ISSUER_DID,
                "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": x},
            }
        ],
        "assertionMethod": [f"{ISSUER_DID}#jwk"],
    }

    found = did.public_key_from_did_document(document, f"{ISSUER_DID}#jwk")

    assert _raw(found) == _raw(public_key)


def test_did_key_resolution(public_key):
    """did:key DIDs and their method ids decode to the embedded key."""
    did_key = did.did_key(public_key)
    multibase = did_key.removeprefix("did:key:")

    assert did_key.startswith("did:key:z6Mk")
    assert _raw(did.resolve_did_key(did_key)) == _raw(public_key)
    assert _raw(did.resolve_did_key(f"{did_key}#{multibase}")) == _raw(public_key)


def test_did_key_known_value():
    """A published did:key decodes to its 32-byte Ed25519 key."""
    known = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

    key = did.resolve_did_key(known)

    assert len(_raw(key)) == 32
    assert did.did_key(key) == known


def test_did_key_rejects_other_input(public_key):
    """A did:web, a mismatched fragment or a non-Ed25519 key is rejected."""
    did_key = did.did_key(public_key)

    with pytest.raises(InvalidDid):
        did.resolve_did_key(ISSUER_DID)
    with pytest.raises(InvalidDid, match="fragment"):
        did.resolve_did_key(f"{did_key}#key-1")
    with pytest.raises(InvalidKey):
        did.resolve_did_key("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme")
