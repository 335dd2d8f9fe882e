"""Validation against the OB 3.0 AchievementCredential JSON schema."""

import copy
from datetime import UTC, datetime

from badge_engine import ob3
from badge_engine.schema import validate_open_badge_credential


def _credential():
    return ob3.build_open_badge_credential(
        credential_id="https://bridge.example.org/credentials/7",
        issuer=ob3.IssuerProfile(
            id="did:web:bridge.example.org:issuers:acme",
            name="Acme",
            url="https://acme.example.org",
            image="https://acme.example.org/logo.png",
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
        valid_from=datetime(2024, 5, 1, tzinfo=UTC),
        evidence=[ob3.EvidenceData(narrative="Passed the final quiz.")],
    )


def test_built_credential_is_valid():
    """A credential from the builder has no schema errors."""
    assert validate_open_badge_credential(_credential()) == []


def test_wrong_type_names_path():
    """A wrongly typed field is reported with its JSON path."""
    credential = _credential()
    credential["credentialSubject"]["identifier"][0]["hashed"] = "yes"

    errors = validate_open_badge_credential(credential)

    assert errors == [
        "$.credentialSubject.identifier[0].hashed: 'yes' is not of type 'boolean'"
    ]


def test_missing_field_names_parent():
    """A missing required field is reported on its parent's path."""
    credential = _credential()
    del credential["credentialSubject"]["achievement"]["criteria"]

    errors = validate_open_badge_credential(credential)

    assert errors == [
        "$.credentialSubject.achievement: 'criteria' is a required property"
    ]


def test_bad_date_time_reported():
    """A validFrom that is not an RFC 3339 date-time is reported."""
    credential = _credential()
    credential["validFrom"] = "1 May 2024"

    errors = validate_open_badge_credential(credential)

    assert errors == ["$.validFrom: '1 May 2024' is not a 'date-time'"]


def test_one_of_failure_is_short():
    """A failed oneOf (issuer) names the closest alternative, not the whole value."""
    credential = _credential()
    credential["issuer"]["type"] = "Profile"

    errors = validate_open_badge_credential(credential)

    assert len(errors) == 1
    assert errors[0].startswith("$.issuer: matches none of the allowed forms")
    assert "$.issuer.type" in errors[0]


def test_errors_sorted_by_path():
    """Several errors come back sorted by JSON path."""
    credential = copy.deepcopy(_credential())
    credential["type"] = ["VerifiableCredential"]
    del credential["validFrom"]

    errors = validate_open_badge_credential(credential)

    paths = [error.split(": ", 1)[0] for error in errors]
    assert paths == sorted(paths)
    assert "$: 'validFrom' is a required property" in errors
    assert any(error.startswith("$.type:") for error in errors)
