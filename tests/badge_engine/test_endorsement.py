"""HPass endorsements of certified providers and their achievements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft201909Validator

import badge_engine
from badge_engine.did import public_key_from_did_document
from badge_engine.endorsement import endorse, endorsements_for
from badge_engine.errors import InvalidCredential
from badge_engine.issuers import did_document
from badge_engine.models import Achievement
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.verify import verify_ob3_document
from badge_engine.verify_context import VerifyContext
from badge_engine.verify_report import VerificationReport
from tests.support.seed import add_moodle_connection, add_provider

BASE = "http://127.0.0.1:5999"
SCHEMA = Path(badge_engine.__file__).parent / "schemas" / "endorsementcredential.json"


@pytest.fixture
def parties(app, db):
    """The HPass network, a provider and one of its achievements."""
    vault = app.extensions["hpass"].vault
    hpass = add_provider(db, slug="hpass", name="HPass network")
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:1", "t")
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Safe travel",
        description="Plans safe travel.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    db.add(achievement)
    db.flush()
    return vault, hpass, provider, achievement


def _endorse(db, parties, **changes):
    vault, hpass, provider, achievement = parties
    arguments = {
        "vault": vault,
        "base_url": BASE,
        "endorser": hpass,
        "provider": provider,
        "comment": "Certified after quality review.",
    }
    arguments.update(changes)
    return endorse(db, **arguments)


def test_endorsement_matches_schema(db, parties):
    """The EndorsementCredential matches the official OB 3.0 JSON schema."""
    record = _endorse(db, parties)
    validator = Draft201909Validator(json.loads(SCHEMA.read_text()))

    assert [error.message for error in validator.iter_errors(record.document)] == []


def test_endorsement_verifies(db, parties):
    """The endorsement verifies with the HPass network's did:web key."""
    _, hpass, _, _ = parties
    record = _endorse(db, parties)
    hpass_did = did_document(db, BASE, hpass)
    report = VerificationReport()

    verify_ob3_document(
        record.document,
        VerifyContext(resolve_did_document=lambda did: hpass_did),
        report,
    )

    assert report.valid, report.errors
    assert record.document["credentialSubject"]["id"].endswith(":providers:academy")
    assert public_key_from_did_document(
        hpass_did, record.document["proof"][0]["verificationMethod"]
    )


def test_endorse_achievement(db, parties):
    """An achievement endorsement names the achievement URL and is listed for it."""
    _, _, provider, achievement = parties
    record = _endorse(db, parties, achievement=achievement)

    subject = record.document["credentialSubject"]

    assert subject["id"] == f"{BASE}/achievements/{achievement.public_id}"
    assert record.subject_type == "Achievement"
    assert endorsements_for(db, provider, achievement) == [record]
    assert endorsements_for(db, provider) == []


@pytest.mark.parametrize("comment", ["", "   ", "x" * 5001])
def test_endorse_bad_comment(db, parties, comment):
    """An empty or over-long comment is rejected."""
    with pytest.raises(InvalidCredential):
        _endorse(db, parties, comment=comment)


def test_endorse_self_rejected(db, parties):
    """A provider cannot endorse itself."""
    _, hpass, _, _ = parties

    with pytest.raises(InvalidCredential):
        _endorse(db, parties, provider=hpass)


def test_endorse_foreign_achievement(db, parties):
    """An achievement of another provider cannot be endorsed under this one."""
    _, hpass, _, achievement = parties
    other = add_provider(db, slug="other")

    with pytest.raises(InvalidCredential):
        _endorse(db, parties, provider=other, achievement=achievement)
