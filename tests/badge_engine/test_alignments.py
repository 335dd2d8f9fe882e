"""Alignments: checking what an instructor or the API sends, and writing OB 3.0 / 2.0."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from badge_engine import canonical, jsonld, ob3
from badge_engine.alignments import (
    MAX_ALIGNMENTS,
    InvalidAlignment,
    list_alignment_errors,
    ob2_alignments,
    validate_alignments,
)
from badge_engine.data_integrity import sign_eddsa_rdfc_2022, verify_eddsa_rdfc_2022
from badge_engine.schema import validate_open_badge_credential

SKILL = {
    "targetName": "Psychological first aid",
    "targetUrl": "https://skills.example.org/pfa",
    "targetFramework": "Core Humanitarian Competency Framework",
    "targetCode": "CHCF-3.2",
    "targetType": "ceasn:Competency",
}


def _credential(alignments):
    return ob3.build_open_badge_credential(
        credential_id="https://bridge.example.org/credentials/7",
        issuer=ob3.IssuerProfile(
            id="did:web:bridge.example.org:providers:acme",
            name="Acme",
            url="https://acme.example.org",
        ),
        achievement=ob3.AchievementData(
            id="https://bridge.example.org/achievements/42",
            name="Field Security Basics",
            description="Recognises completion of the field security course.",
            criteria_narrative="Complete every module.",
            alignments=alignments,
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=datetime(2024, 5, 1, tzinfo=UTC),
    )


def test_clean_alignment_kept():
    """A full alignment comes back with its values stripped."""
    padded = {field: f"  {value} " for field, value in SKILL.items()}

    assert validate_alignments([padded]) == [SKILL]


def test_none_means_no_alignments():
    """No alignments at all is an empty list."""
    assert validate_alignments(None) == []


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("skill", "must be a list"),
        (["skill"], "alignment 1 must be an object"),
        (
            [{"targetUrl": "https://x.example.org"}],
            "alignment 1: targetName is missing",
        ),
        ([{"targetName": "First aid"}], "alignment 1: targetUrl is missing"),
        (
            [{"targetName": "First aid", "targetUrl": "javascript:alert(1)"}],
            "absolute http or https URL",
        ),
        ([{**SKILL, "targetName": "x" * 201}], "the limit is 200"),
        ([{**SKILL, "targetType": "Skill"}], "not an OB 3.0 alignment target type"),
        ([{**SKILL, "targetName": 7}], "targetName must be text"),
        ([{**SKILL, "colour": "red"}], "unknown fields colour"),
        ([SKILL] * (MAX_ALIGNMENTS + 1), f"at most {MAX_ALIGNMENTS}"),
    ],
    ids=[
        "not-list",
        "not-object",
        "no-name",
        "no-url",
        "script-url",
        "too-long",
        "bad-type",
        "not-text",
        "unknown-field",
        "too-many",
    ],
)
def test_bad_alignment_rejected(items, message):
    """Each malformed alignment is rejected with a message naming it and its field."""
    with pytest.raises(InvalidAlignment, match=message):
        validate_alignments(items)


def test_extension_target_type_accepted():
    """An ext: target type, as OB 3.0 allows, is kept."""
    custom = {**SKILL, "targetType": "ext:HPassSkill"}

    assert validate_alignments([custom]) == [custom]


def test_ob3_alignment_valid_against_schema():
    """A credential with an alignment passes the OB 3.0 schema and writes its type."""
    credential = _credential([SKILL])

    alignment = credential["credentialSubject"]["achievement"]["alignment"]
    assert alignment == [{"type": ["Alignment"], **SKILL}]
    assert validate_open_badge_credential(credential) == []


def test_alignment_signed_and_verified():
    """The fast canonicaliser matches pyld on an aligned credential, so it verifies."""
    credential = _credential([SKILL, {**SKILL, "targetCode": "CHCF-3.3"}])
    key = Ed25519PrivateKey.generate()

    signed = sign_eddsa_rdfc_2022(
        credential,
        key,
        "did:web:bridge.example.org:providers:acme#key-1",
        created=datetime(2024, 5, 1, tzinfo=UTC),
    )
    result = verify_eddsa_rdfc_2022(signed, lambda _method: key.public_key())

    assert canonical.canonize(credential) == jsonld.canonize(credential)
    assert result.verified, result.errors


def test_ob2_alignment_drops_target_type():
    """OB 2.0 AlignmentObjects carry the same fields except targetType."""
    assert ob2_alignments([SKILL]) == [
        {field: value for field, value in SKILL.items() if field != "targetType"}
    ]


def test_all_alignment_errors_listed():
    """Every invalid field of every alignment is listed, in order."""
    items = [
        {"targetName": "", "targetUrl": "not a url"},
        SKILL,
        {**SKILL, "targetFramework": "F" * 201, "targetType": "Skill"},
    ]

    errors = list_alignment_errors(items)
    found = [(error.position, error.field) for error in errors]

    assert found == [
        (1, "targetName"),
        (1, "targetUrl"),
        (3, "targetFramework"),
        (3, "targetType"),
    ]
    with pytest.raises(InvalidAlignment) as raised:
        validate_alignments(items)
    assert raised.value.field == "targetName"
