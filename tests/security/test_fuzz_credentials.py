"""Fuzz the credential verifier and the baked-image readers.

The verifier must turn any input into a report, never an exception. The image
readers may raise only BakingError. Every fetch goes to an offline fetcher, so no
example can reach the network.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from badge_engine import ob3
from badge_engine.baking import (
    BakingError,
    bake_png,
    bake_svg,
    extract,
    extract_png,
    extract_svg,
    plain_png,
    plain_svg,
)
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.did import did_key
from badge_engine.outbound import OutboundBlocked
from badge_engine.outbound.documents import DocumentFetcher
from badge_engine.verify import verify_bytes
from badge_engine.verify_context import VerifyContext
from tests.security.fuzzing import fuzz_settings, json_values, mutated


class OfflineFetcher(DocumentFetcher):
    """A fetcher that fails every request the way a blocked address does."""

    def get(self, url: str, accept: str = "application/json"):
        raise OutboundBlocked(
            "fetching is off in the fuzz tests", url=url, code="blocked"
        )


def _signed_credential() -> dict:
    key = Ed25519PrivateKey.generate()
    did = did_key(key.public_key())
    unsigned = ob3.build_open_badge_credential(
        credential_id="urn:uuid:6b1c8f4e-3f1a-4a59-9a86-2d7f4c1d0b11",
        issuer=ob3.IssuerProfile(id=did, name="Academy", url="https://a.example"),
        achievement=ob3.AchievementData(
            id="urn:uuid:0c7d9f7e-0000-4000-8000-000000000002",
            name="Safe travel",
            description="Plans safe travel.",
            criteria_narrative="Complete the course.",
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("l@example.org", "pepper")
        ],
        valid_from=datetime(2025, 1, 1, tzinfo=UTC),
    )
    method = f"{did}#{did.removeprefix('did:key:')}"
    return sign_eddsa_rdfc_2022(unsigned, key, method, created="2025-01-01T00:00:00Z")


OB3_CREDENTIAL = _signed_credential()
OB2_ASSERTION = {
    "@context": "https://w3id.org/openbadges/v2",
    "type": "Assertion",
    "id": "https://academy.example/ob2/assertions/1",
    "recipient": {"type": "email", "hashed": False, "identity": "l@example.org"},
    "badge": "https://academy.example/ob2/badges/1",
    "verification": {"type": "HostedBadge"},
    "issuedOn": "2025-01-01T00:00:00Z",
}
OB3_TEXT = json.dumps(OB3_CREDENTIAL)
BAKED_PNG = bake_png(plain_png(), OB3_TEXT)
BAKED_SVG = bake_svg(plain_svg("Safe travel"), OB3_TEXT)


def _verify(data: bytes):
    report = verify_bytes(data, VerifyContext(fetcher=OfflineFetcher()))
    assert report is not None
    return report


@st.composite
def flipped(draw, data: bytes) -> bytes:
    """Draw a copy of `data` with a few bytes changed, cut or inserted."""
    result = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=max(len(result) - 1, 0)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and result:
            result[position] = draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del result[position:]
        else:
            result[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(result)


@fuzz_settings
@given(document=st.sampled_from([OB3_CREDENTIAL, OB2_ASSERTION]).flatmap(mutated))
def test_credential_json_fuzz(document):
    """A mutated OB 3.0 credential or OB 2.0 assertion gives a report, never an error."""
    _verify(json.dumps(document).encode())


@fuzz_settings
@given(
    data=st.binary(max_size=400)
    | json_values.map(lambda value: json.dumps(value).encode())
)
def test_verify_bytes_fuzz(data):
    """Arbitrary bytes or JSON give a report with at least one problem."""
    report = _verify(data)

    assert report.errors


@fuzz_settings
@given(data=st.binary(max_size=300) | flipped(BAKED_PNG) | flipped(BAKED_SVG))
def test_baked_image_fuzz(data):
    """A damaged baked PNG or SVG raises only BakingError, and verifies to a report."""
    for reader in (extract, extract_png, extract_svg):
        try:
            reader(data)
        except BakingError:
            pass
    _verify(data)


@fuzz_settings
@given(text=st.text(max_size=200))
def test_svg_text_fuzz(text):
    """An SVG with arbitrary text in its body raises only BakingError."""
    data = b'<svg xmlns="http://www.w3.org/2000/svg">' + text.encode() + b"</svg>"
    try:
        extract_svg(data)
    except BakingError:
        pass
