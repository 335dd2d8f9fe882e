"""Revocation with a reason, status list indexes and the bitstring encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from badge_engine.errors import InvalidCredential
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.status import (
    STATUS_LIST_BITS,
    AlreadyRevoked,
    InvalidStatusList,
    allocate_status_index,
    bitstring_status_entry,
    encode_status_list,
    revoke_credential,
    status_bit,
)
from tests.support.seed import add_moodle_connection, add_provider

BASE = "http://127.0.0.1:5999"


def _issue(db, vault, user_id="3001"):
    provider = db.info.get("provider")
    if provider is None:
        provider = add_provider(db)
        db.info["provider"] = provider
        db.info["connection"] = add_moodle_connection(
            db, vault, provider, "http://127.0.0.1:1", "t"
        )
        achievement = Achievement(
            provider_id=provider.id,
            lms_connection_id=db.info["connection"].id,
            lms_course_id="101",
            name="Safe travel",
            description="Plans safe travel.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
        db.add(achievement)
        db.info["achievement"] = achievement
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=db.info["connection"].id,
        lms_user_id=user_id,
        email=f"{user_id}@example.org",
    )
    db.add(learner)
    db.flush()
    return issue_credential(
        db,
        vault=vault,
        base_url=BASE,
        achievement=db.info["achievement"],
        learner=learner,
        awarded_at=datetime(2025, 1, 1, tzinfo=UTC),
    ).credential


def test_revoke_records_reason(app, db):
    """Revoking stores the reason and time and frees the learner's live slot."""
    credential = _issue(db, app.extensions["hpass"].vault)

    event = revoke_credential(db, credential, "  Issued in error ", actor="test")

    assert credential.status == "revoked"
    assert credential.revocation_reason == "Issued in error"
    assert credential.revoked_at == event.revoked_at
    assert credential.live_key is None
    assert event.credential_public_id == credential.public_id


def test_revoke_twice_rejected(app, db):
    """A second revocation raises and keeps the first reason."""
    credential = _issue(db, app.extensions["hpass"].vault)
    revoke_credential(db, credential, "First", actor="test")

    with pytest.raises(AlreadyRevoked):
        revoke_credential(db, credential, "Second", actor="test")

    assert credential.revocation_reason == "First"


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
def test_revoke_bad_reason(app, db, reason):
    """An empty or over-long reason is rejected and nothing changes."""
    credential = _issue(db, app.extensions["hpass"].vault)

    with pytest.raises(InvalidCredential):
        revoke_credential(db, credential, reason, actor="test")

    assert credential.status == "live"
    assert credential.revoked_at is None


def test_issue_allocates_status_indexes(app, db):
    """Each issued credential owns its own status bit, numbered from 0."""
    vault = app.extensions["hpass"].vault
    first = _issue(db, vault, "a")
    second = _issue(db, vault, "b")

    assert first.status_list_index == 0
    assert second.status_list_index == 1
    assert first.document["credentialStatus"]["statusListIndex"] == "0"
    assert second.document["credentialStatus"]["type"] == "BitstringStatusListEntry"


def test_allocation_per_provider(app, db):
    """Providers number their status bits independently."""
    one = add_provider(db, slug="one")
    two = add_provider(db, slug="two")

    taken = [allocate_status_index(db, one.id) for _ in range(3)]
    other = allocate_status_index(db, two.id)

    assert taken == [0, 1, 2]
    assert other == 0


def test_entry_splits_lists():
    """Index 131072 is bit 0 of the provider's second list."""
    entry = bitstring_status_entry(BASE, "academy", STATUS_LIST_BITS)

    assert entry["statusListIndex"] == "0"
    assert entry["statusListCredential"] == f"{BASE}/providers/academy/status/1"


def test_bitstring_round_trip():
    """Set bits read back as set, others as clear, with bit 0 leftmost."""
    encoded = encode_status_list([0, 7, 9, STATUS_LIST_BITS - 1], STATUS_LIST_BITS)

    assert encoded.startswith("u")
    assert status_bit(encoded, 0)
    assert status_bit(encoded, 7)
    assert status_bit(encoded, 9)
    assert status_bit(encoded, STATUS_LIST_BITS - 1)
    assert not status_bit(encoded, 1)
    assert not status_bit(encoded, 8)


@pytest.mark.parametrize("value", [None, 5, "", "u!!!", "uAAAA"])
def test_status_bit_bad_list(value):
    """A list that is not base64url GZIP raises InvalidStatusList."""
    with pytest.raises(InvalidStatusList):
        status_bit(value, 0)


def test_status_bit_index_outside():
    """An index beyond the list is reported rather than read as clear."""
    encoded = encode_status_list([], 16)

    with pytest.raises(InvalidStatusList):
        status_bit(encoded, 16)


def test_status_bit_bomb():
    """A list that inflates past the limit is rejected as it is read."""
    import base64
    import gzip

    from badge_engine.status import MAX_DECODED_LIST_BYTES

    bomb = gzip.compress(b"\x00" * (MAX_DECODED_LIST_BYTES + 1024))
    encoded = "u" + base64.urlsafe_b64encode(bomb).decode().rstrip("=")

    with pytest.raises(InvalidStatusList):
        status_bit(encoded, 0)
