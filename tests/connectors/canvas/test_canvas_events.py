"""Live Event parsing: fixture shapes, id normalisation, bad input, signed events."""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from badge_engine.facts import CompletionState, FactSource
from connectors.canvas.errors import CanvasEventInvalid, CanvasEventSignatureInvalid
from connectors.canvas.events import parse_live_event
from connectors.canvas.jwks import JwksCache, decode_signed_event
from tests.connectors.canvas.conftest import COURSE_ID, load_fixture
from tests.support.outbound import LOOPBACK_POLICY

IDS = {"provider_id": 1, "lms_connection_id": 7}


def test_course_completed_fixture_gives_fact():
    """course_completed becomes a COMPLETE course fact dated at completed_at."""
    result = parse_live_event(load_fixture("live_event_course_completed.json"), **IDS)

    fact = result.fact
    assert fact.lms_course_id == "565"
    assert fact.lms_user_id == "123"
    assert fact.activity_id is None
    assert fact.state is CompletionState.COMPLETE
    assert fact.source is FactSource.EVENT
    assert fact.occurred_at == datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert "email" not in fact.raw_payload["body"]["user"]


def test_partial_course_progress_skipped():
    """course_progress with requirements left is a counted skip, not a reversal."""
    result = parse_live_event(load_fixture("live_event_course_progress.json"), **IDS)

    assert result.fact is None
    assert result.skip_reason == "progress_incomplete"


def test_full_course_progress_dedupes_with_completed():
    """course_progress at 6/6 gives the same dedupe key as course_completed."""
    progress = load_fixture("live_event_course_progress.json")
    progress["body"]["progress"].update(
        completed_at="2025-01-01T12:00:00Z", requirement_completed_count=6
    )
    completed = load_fixture("live_event_course_completed.json")

    from_progress = parse_live_event(progress, **IDS).fact
    from_completed = parse_live_event(completed, **IDS).fact

    assert from_progress.dedupe_key == from_completed.dedupe_key


def test_unsupported_event_skipped():
    """grade_change is accepted and skipped with its reason."""
    result = parse_live_event(load_fixture("live_event_grade_change.json"), **IDS)

    assert result.fact is None
    assert result.event_name == "grade_change"
    assert result.skip_reason == "unsupported_event"


def test_global_ids_become_local():
    """Global ids on the root account's shard become local ids."""
    event = load_fixture("live_event_course_completed.json")
    event["body"]["course"]["id"] = "10000000000565"
    event["body"]["user"]["id"] = 10000000000123

    fact = parse_live_event(event, **IDS).fact

    assert fact.lms_course_id == "565"
    assert fact.lms_user_id == "123"


def test_configured_shard_wins():
    """A configured home shard accepts its own global ids."""
    event = load_fixture("live_event_course_completed.json")
    event["body"]["user"]["id"] = "70000000000123"

    fact = parse_live_event(event, home_shard=7, **IDS).fact

    assert fact.lms_user_id == "123"


def test_unknown_shard_rejected():
    """A global id from another shard raises, naming the field and the shard."""
    event = load_fixture("live_event_course_completed.json")
    event["body"]["user"]["id"] = "20000000000123"

    with pytest.raises(CanvasEventInvalid, match="shard 2") as caught:
        parse_live_event(event, **IDS)

    assert caught.value.field == "body.user.id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda e: e["body"].update(progress={"error": {"message": "x"}}),
            "body.progress",
        ),
        (
            lambda e: e["body"]["progress"].update(requirement_count="6"),
            "body.progress.requirement_count",
        ),
        (
            lambda e: e["body"]["progress"].update(completed_at=None),
            "body.progress.completed_at",
        ),
        (
            lambda e: e["body"]["progress"].update(completed_at="yesterday"),
            "body.progress.completed_at",
        ),
        (lambda e: e["body"]["user"].update(id="abc"), "body.user.id"),
        (lambda e: e["body"].pop("course"), "body.course"),
        (lambda e: e["metadata"].pop("event_name"), "metadata.event_name"),
        (lambda e: e.pop("body"), "body"),
    ],
)
def test_bad_event_names_field(change, field):
    """Each malformed course_completed raises CanvasEventInvalid naming its field."""
    event = load_fixture("live_event_course_completed.json")
    change(event)

    with pytest.raises(CanvasEventInvalid) as caught:
        parse_live_event(event, **IDS)

    assert caught.value.field == field


def test_non_object_event_rejected():
    """A JSON array is not an event."""
    with pytest.raises(CanvasEventInvalid, match="JSON object"):
        parse_live_event([1, 2], **IDS)


@pytest.fixture
def jwks(fake, canvas_url):
    return JwksCache(f"{canvas_url}/live_events/jwks", policy=LOOPBACK_POLICY)


def test_signed_event_verified(fake, jwks):
    """A JWT signed with Canvas's current key decodes to the event."""
    event = fake.live_event("course_completed", COURSE_ID, 123)

    claims = decode_signed_event(fake.sign(event), jwks)

    assert claims["metadata"]["event_name"] == "course_completed"
    assert fake.jwks_requests == 1


def test_rotated_key_refetches_once(fake, jwks):
    """An event signed with a newly rotated key is accepted after one refetch."""
    event = fake.live_event("course_completed", COURSE_ID, 123)
    decode_signed_event(fake.sign(event), jwks)
    fake.rotate_signing_key()

    decode_signed_event(fake.sign(event), jwks)
    decode_signed_event(fake.sign(event), jwks)

    assert fake.jwks_requests == 2


def test_forged_signature_rejected(fake, jwks):
    """A JWT with a known kid but another key's signature is rejected."""
    event = fake.live_event("course_completed", COURSE_ID, 123)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = fake.signing_keys[-1].kid
    forged = jwt.encode(event, forger, algorithm="RS256", headers={"kid": kid})

    with pytest.raises(CanvasEventSignatureInvalid, match="failed verification"):
        decode_signed_event(forged, jwks)


def test_unknown_kid_refetched_once(fake, jwks):
    """Repeated unknown key ids refetch the key set once, then are rejected."""
    event = fake.live_event("course_completed", COURSE_ID, 123)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(event, forger, algorithm="RS256", headers={"kid": "nope"})
    decode_signed_event(fake.sign(event), jwks)

    for _ in range(3):
        with pytest.raises(CanvasEventSignatureInvalid, match="does not contain"):
            decode_signed_event(forged, jwks)

    assert fake.jwks_requests == 2


def test_expired_event_rejected(fake, jwks):
    """A JWT whose exp passed (beyond the skew allowance) is rejected."""
    event = fake.live_event("course_completed", COURSE_ID, 123)
    token = fake.sign(event, exp=int(time.time()) - 3600)

    with pytest.raises(CanvasEventSignatureInvalid, match="expired"):
        decode_signed_event(token, jwks)


def test_symmetric_algorithm_rejected(fake, jwks):
    """An HS256 JWT is rejected before any key lookup."""
    token = jwt.encode(
        {"a": 1},
        "secret-key-of-32-bytes-or-more!!",
        algorithm="HS256",
        headers={"kid": "x"},
    )

    with pytest.raises(CanvasEventSignatureInvalid, match="algorithm"):
        decode_signed_event(token, jwks)

    assert fake.jwks_requests == 0


def test_not_a_jwt_rejected(jwks):
    """A body that is not a compact JWT is rejected."""
    with pytest.raises(CanvasEventSignatureInvalid, match="not a valid compact JWT"):
        decode_signed_event("eyJ.not-a-jwt", jwks)


def test_fake_event_matches_fixture_shape(fake):
    """The stand-in's events have the fixture's keys."""
    fixture = load_fixture("live_event_course_completed.json")
    fake.complete(COURSE_ID, 123, datetime(2025, 1, 1, 12, tzinfo=timezone.utc))

    event = copy.deepcopy(fake.live_event("course_completed", COURSE_ID, 123))

    assert set(event) == set(fixture)
    assert set(event["body"]["progress"]) == set(fixture["body"]["progress"])
    assert parse_live_event(event, **IDS).fact.lms_user_id == "123"
