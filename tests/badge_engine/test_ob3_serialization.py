"""Serialisation of OpenBadgeCredentials and recipient identity hashes."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from badge_engine import ob3
from badge_engine.errors import InvalidCredential
from badge_engine.jsonld import canonize

ISSUER = ob3.IssuerProfile(
    id="did:web:bridge.example.org:issuers:acme",
    name="Acme Humanitarian Training",
    url="https://acme.example.org",
    email="badges@acme.example.org",
)
ACHIEVEMENT = ob3.AchievementData(
    id="https://bridge.example.org/achievements/42",
    name="Field Security Basics",
    description="Recognises completion of the field security course.",
    criteria_narrative="Complete every module and pass the final quiz.",
    image="https://bridge.example.org/achievements/42/image.png",
    tags=("security", "field"),
    language="en",
)
VALID_FROM = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _build(**overrides):
    arguments = {
        "credential_id": "https://bridge.example.org/credentials/7",
        "issuer": ISSUER,
        "achievement": ACHIEVEMENT,
        "recipient_identifiers": [
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        "valid_from": VALID_FROM,
    }
    arguments.update(overrides)
    return ob3.build_open_badge_credential(**arguments)


def test_hash_email_normalises_address():
    """The hash covers the trimmed lowercase address followed by the salt."""
    expected = hashlib.sha256(b"learner@example.orgpepper").hexdigest()

    assert ob3.hash_email("  Learner@Example.ORG ", "pepper") == f"sha256${expected}"


def test_hash_email_spec_example():
    """The OB example 'a@example.com' salted with 'Kosher' gives its published hash."""
    assert ob3.hash_email("a@example.com", "Kosher") == (
        "sha256$b5809d8a92f8858436d7e6b87c12ebc0ae1eac4baecc2c0b913aee2c922ef399"
    )


def test_recipient_identity_rejects_plain_email():
    """An unhashed address cannot be passed as hashed_email."""
    with pytest.raises(InvalidCredential, match="hash_email"):
        ob3.RecipientIdentity(hashed_email="learner@example.org", salt="pepper")


def test_format_timestamp_converts_to_utc():
    """Aware datetimes are written in UTC to the second with a Z suffix."""
    moment = datetime(2024, 5, 1, 14, 0, 30, 500, tzinfo=timezone(timedelta(hours=2)))

    assert ob3.format_timestamp(moment) == "2024-05-01T12:00:30Z"


def test_format_timestamp_naive_raises():
    """A naive datetime raises InvalidCredential."""
    with pytest.raises(InvalidCredential, match="timezone-aware"):
        ob3.format_timestamp(datetime(2024, 5, 1))


def test_credential_top_level():
    """The credential has the OB 3.0 contexts, types, dates and schema reference."""
    credential = _build(
        valid_until=VALID_FROM + timedelta(days=365),
        awarded_date=VALID_FROM - timedelta(days=1),
    )

    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json",
    ]
    assert credential["id"] == "https://bridge.example.org/credentials/7"
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["name"] == "Field Security Basics"
    assert credential["validFrom"] == "2024-05-01T12:00:00Z"
    assert credential["validUntil"] == "2025-05-01T12:00:00Z"
    assert credential["awardedDate"] == "2024-04-30T12:00:00Z"
    assert credential["credentialSchema"] == [
        {
            "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"
            "ob_v3p0_achievementcredential-jsonschema1.json",
            "type": "1EdTechJsonSchemaValidator2019",
        }
    ]


def test_credential_issuer_profile():
    """The issuer is an OB Profile with its optional fields only when given."""
    credential = _build()

    assert credential["issuer"] == {
        "id": "did:web:bridge.example.org:issuers:acme",
        "type": ["Profile"],
        "name": "Acme Humanitarian Training",
        "url": "https://acme.example.org",
        "email": "badges@acme.example.org",
    }


def test_credential_subject_identity():
    """The subject is an AchievementSubject identified by a salted email hash."""
    subject = _build()["credentialSubject"]

    assert subject["type"] == ["AchievementSubject"]
    assert subject["identifier"] == [
        {
            "type": "IdentityObject",
            "identityHash": ob3.hash_email("learner@example.org", "pepper"),
            "identityType": "emailAddress",
            "hashed": True,
            "salt": "pepper",
        }
    ]


def test_credential_achievement():
    """The achievement carries criteria, image, tags, type and language."""
    achievement = _build()["credentialSubject"]["achievement"]

    assert achievement == {
        "id": "https://bridge.example.org/achievements/42",
        "type": ["Achievement"],
        "achievementType": "Badge",
        "name": "Field Security Basics",
        "description": "Recognises completion of the field security course.",
        "criteria": {"narrative": "Complete every module and pass the final quiz."},
        "image": {
            "id": "https://bridge.example.org/achievements/42/image.png",
            "type": "Image",
        },
        "tag": ["security", "field"],
        "inLanguage": "en",
    }


def test_credential_evidence_and_status():
    """Evidence items and a credentialStatus entry are included when given."""
    status = {
        "id": "https://bridge.example.org/status/1#7",
        "type": "1EdTechRevocationList",
    }

    credential = _build(
        credential_status=status,
        evidence=[ob3.EvidenceData(id="https://lms.example.org/quiz/9", name="Quiz")],
    )

    assert credential["credentialStatus"] == status
    assert credential["evidence"] == [
        {"type": ["Evidence"], "id": "https://lms.example.org/quiz/9", "name": "Quiz"}
    ]


def test_credential_canonicalises():
    """Every property of a full credential is defined by its contexts."""
    credential = _build(
        valid_until=VALID_FROM + timedelta(days=1),
        awarded_date=VALID_FROM,
        credential_status={
            "id": "https://bridge.example.org/status/1#7",
            "type": "1EdTechRevocationList",
        },
        evidence=[ob3.EvidenceData(id="https://lms.example.org/quiz/9", name="Quiz")],
    )

    nquads = canonize(credential)

    assert "1EdTechRevocationList" in nquads
    assert "identityHash" in nquads


def test_credential_needs_identifier():
    """A credential without recipient identifiers raises InvalidCredential."""
    with pytest.raises(InvalidCredential, match="recipient identifier"):
        _build(recipient_identifiers=[])


def test_credential_valid_until_before_from_raises():
    """validUntil must come after validFrom."""
    with pytest.raises(InvalidCredential, match="must be after validFrom"):
        _build(valid_until=VALID_FROM)
