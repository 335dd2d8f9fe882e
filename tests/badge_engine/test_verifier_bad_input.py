"""Malformed, truncated and hostile input to the verifier: always a coded result."""

from __future__ import annotations

import copy
import json
import socket
import struct
import zlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from badge_engine import ob3
from badge_engine.baking import PNG_SIGNATURE, bake_png, bake_svg, plain_png, plain_svg
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.did import did_key
from badge_engine.outbound import OutboundPolicy
from badge_engine.outbound.documents import DocumentFetcher
from badge_engine.verify import MAX_INPUT_BYTES, verify_bytes
from badge_engine.verify_context import VerifyContext
from badge_engine.verify_report import VerificationReport

EMAIL = "learner@example.org"


def _signed(
    issuer_id: str | None = None, key=None, method: str | None = None, **changes
):
    """A credential signed by a did:key issuer, which verifies with no network."""
    key = key or Ed25519PrivateKey.generate()
    did = did_key(key.public_key())
    issuer_id = issuer_id or did
    unsigned = ob3.build_open_badge_credential(
        credential_id="urn:uuid:6b1c8f4e-3f1a-4a59-9a86-2d7f4c1d0b11",
        issuer=ob3.IssuerProfile(id=issuer_id, name="Academy", url="https://a.example"),
        achievement=ob3.AchievementData(
            id="urn:uuid:0c7d9f7e-0000-4000-8000-000000000002",
            name="Safe travel",
            description="Plans safe travel.",
            criteria_narrative="Complete the course.",
        ),
        recipient_identifiers=[ob3.RecipientIdentity.from_email(EMAIL, "pepper")],
        valid_from=datetime(2025, 1, 1, tzinfo=UTC),
        **changes,
    )
    method = method or f"{did}#{did.removeprefix('did:key:')}"
    return sign_eddsa_rdfc_2022(unsigned, key, method, created="2025-01-01T00:00:00Z")


def _verify(data: bytes | str | dict, **context):
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return verify_bytes(data, VerifyContext(fetcher=DocumentFetcher(), **context))


def _codes(report) -> list[str]:
    return [problem.code for problem in report.errors]


def test_did_key_credential_valid():
    """A did:key credential verifies offline; the baseline for the cases below."""
    report = _verify(_signed())

    assert report.valid, report.errors
    assert report.version == "3.0"
    assert report.format == "eddsa-rdfc-2022"


def test_did_key_credential_warns_status():
    """A credential with no credentialStatus passes with a warning, not silently."""
    report = _verify(_signed())

    assert [problem.code for problem in report.warnings] == ["status_not_checked"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "unrecognised_format"),
        (b"   \n", "unrecognised_format"),
        (b"\xff\xfe\x00garbage", "unrecognised_format"),
        (b"hello world", "unrecognised_format"),
        (b"{not json", "invalid_json"),
        (b'{"a": 1', "invalid_json"),
        (b"[1, 2, 3]", "invalid_type"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"a":' * 200 + b"1" + b"}" * 200, "invalid_type"),
    ],
)
def test_unreadable_input(data, code):
    """Input that is not a credential at all is reported with a code, not raised."""
    report = _verify(data)

    assert not report.valid
    assert _codes(report) == [code]


def test_truncated_credential():
    """A signed credential cut in half is invalid JSON."""
    text = json.dumps(_signed())

    assert _codes(_verify(text[: len(text) // 2])) == ["invalid_json"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"@context": "https://www.w3.org/ns/credentials/v2"}, "invalid_type"),
        ({"type": 5}, "invalid_type"),
        ({"type": ["VerifiableCredential"]}, "invalid_type"),
        ({"credentialSubject": "someone"}, "schema_invalid"),
        ({"validFrom": 20250101}, "schema_invalid"),
        ({"issuer": ["a", "b"]}, "schema_invalid"),
    ],
)
def test_wrong_types(change, code):
    """Members of the wrong JSON type are reported with the node at fault."""
    document = {**_signed(), **change}

    report = _verify(document)

    assert code in _codes(report)
    assert all(problem.path.startswith("$") for problem in report.errors)


def test_unknown_proof_suite():
    """A proof of another suite is named as unsupported, not as a bad signature."""
    document = _signed()
    document["proof"][0]["type"] = "Ed25519Signature2020"
    del document["proof"][0]["cryptosuite"]

    report = _verify(document)

    assert _codes(report) == ["unknown_proof_suite"]
    assert report.errors[0].path == "$.proof[0]"


def test_unknown_cryptosuite():
    """A DataIntegrityProof with another cryptosuite is unsupported."""
    document = _signed()
    document["proof"][0]["cryptosuite"] = "ecdsa-rdfc-2019"

    assert _codes(_verify(document)) == ["unknown_proof_suite"]


def test_missing_proof():
    """An unsigned credential is reported as missing its proof."""
    document = _signed()
    del document["proof"]

    assert _codes(_verify(document)) == ["missing_proof"]


def test_unknown_did_method():
    """A key under a DID method the verifier cannot resolve is named as such."""
    document = _signed(issuer_id="did:example:123", method="did:example:123#key-1")

    report = _verify(document)

    assert _codes(report) == ["unsupported_did_method"]


def test_context_needing_network():
    """A context with no local copy is rejected and never fetched."""
    document = _signed()
    document["@context"].append("https://contexts.example.org/badge.jsonld")

    report = _verify(document)

    assert _codes(report) == ["unknown_context"]
    assert report.errors[0].path == "$['@context'][3]"


def test_did_web_private_address():
    """A did:web issuer on a private address is not contacted."""
    key = Ed25519PrivateKey.generate()
    document = _signed(
        issuer_id="did:web:10.1.2.3", key=key, method="did:web:10.1.2.3#key-1"
    )

    report = _verify(document)

    assert _codes(report) == ["key_not_resolved"]
    assert "non-public address" in report.errors[0].message


def test_status_list_private_address():
    """A status list on a private address makes the credential unverifiable."""
    status = {
        "id": "https://192.168.0.10/status/0#5",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "5",
        "statusListCredential": "https://192.168.0.10/status/0",
    }

    report = _verify(_signed(credential_status=status))

    assert _codes(report) == ["status_unavailable"]


def test_unknown_status_method_warns():
    """An unknown status method is a warning that revocation was not checked."""
    status = {"id": "https://a.example/s", "type": "https://a.example/vocab#Custom"}

    report = _verify(_signed(credential_status=status))

    assert report.valid
    assert [problem.code for problem in report.warnings] == ["status_not_checked"]


def test_huge_input():
    """Input over the size limit is rejected before parsing."""
    report = _verify(b"{" + b" " * MAX_INPUT_BYTES + b"}")

    assert _codes(report) == ["too_large"]


def test_png_decompression_bomb():
    """A PNG whose compressed credential is a bomb gives a result, not a crash."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    bomb = b"openbadgecredential\x00\x01\x00\x00\x00" + zlib.compress(
        b" " * (32 * 1024 * 1024), 9
    )
    chunks = [(b"IHDR", header), (b"iTXt", bomb), (b"IEND", b"")]
    image = PNG_SIGNATURE + b"".join(
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )

    assert _codes(_verify(image)) == ["decompression_bomb"]


def test_svg_billion_laughs():
    """An SVG with entity expansion gives unsafe_xml without expanding anything."""
    svg = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&c;</text></svg>'
    )

    assert _codes(_verify(svg)) == ["unsafe_xml"]


def test_baked_garbage():
    """A baked image holding garbage text is reported like the same text in a file."""
    report = _verify(bake_svg(plain_svg("x"), "{oops", "3.0"))

    assert _codes(report) == ["invalid_json"]


def test_baked_valid_png():
    """A did:key credential baked into a PNG verifies as png:eddsa-rdfc-2022."""
    report = _verify(bake_png(plain_png(), json.dumps(_signed())))

    assert report.valid, report.errors
    assert report.format == "png:eddsa-rdfc-2022"


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln",
        "aaaa.bbbb.cccc",
        "eyJhbGciOiJub25lIn0.eyJ2YyI6e319.",
    ],
)
def test_malformed_jwt(token):
    """A malformed or unsigned JWT is reported, never raised."""
    report = _verify(token)

    assert not report.valid
    assert report.errors


def test_ob2_json_unreachable_host():
    """An OB 2.0 hosted assertion on a private host is reported as not fetched."""
    assertion = {
        "@context": "https://w3id.org/openbadges/v2",
        "type": "Assertion",
        "id": "https://10.0.0.8/assertions/1",
    }

    report = _verify(assertion)

    assert report.version == "2.0"
    assert _codes(report) == ["fetch_failed"]


def test_ob2_assertion_without_id():
    """An OB 2.0 assertion without its URL is reported as uncheckable."""
    report = _verify(
        {"@context": "https://w3id.org/openbadges/v2", "type": "Assertion"}
    )

    assert _codes(report) == ["invalid_type"]


def test_recipient_mismatch_offline():
    """The expected recipient is compared with the salted hash."""
    report = _verify(_signed(), recipient="other@example.org")

    assert _codes(report) == ["recipient_mismatch"]


def test_tampered_did_key_credential():
    """Changing any signed value of a did:key credential breaks the signature."""
    document = copy.deepcopy(_signed())
    document["credentialSubject"]["achievement"]["description"] = "Anything"

    assert _codes(_verify(document)) == ["invalid_signature"]


def _closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def test_did_web_unreachable_not_checked():
    """A did:web issuer whose server is down leaves the credential not checked."""
    did = f"did:web:127.0.0.1%3A{_closed_port()}"
    document = _signed(issuer_id=did, method=f"{did}#key-1")

    report = verify_bytes(
        json.dumps(document).encode(),
        VerifyContext(fetcher=DocumentFetcher(OutboundPolicy(allow_loopback=True))),
    )

    assert _codes(report) == ["key_unreachable"]
    assert "could not be fetched" in report.errors[0].message
    assert not report.valid
    assert not report.checked
    assert report.outcome == "not_checked"


def test_unreachable_with_real_fault_invalid():
    """A real fault beside an unreachable document makes the outcome invalid."""
    report = VerificationReport(version="3.0")
    report.error("status_unreachable", "The status list could not be fetched.")
    report.error("expired", "The credential expired.")

    assert report.checked
    assert report.outcome == "invalid"


def test_status_list_unreachable_not_checked():
    """A status list whose server is down leaves the credential not checked."""
    url = f"http://127.0.0.1:{_closed_port()}/status/0"
    status = {
        "id": f"{url}#5",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "5",
        "statusListCredential": url,
    }

    report = verify_bytes(
        json.dumps(_signed(credential_status=status)).encode(),
        VerifyContext(fetcher=DocumentFetcher(OutboundPolicy(allow_loopback=True))),
    )

    assert _codes(report) == ["status_unreachable"]
    assert report.outcome == "not_checked"
