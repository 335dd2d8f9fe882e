"""The Open Badge Factory route against the in-memory OBF over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from badge_engine.models import Credential, CredentialStatus
from badge_engine.outbox import OutboxStatus
from badge_engine.status import revoke_credential
from connectors.hpass.deliveries import requeue_for_revocation
from connectors.hpass.models import Delivery, DeliveryStatus, ObfConnection
from tests.connectors.hpass.conftest import (
    connect_obf,
    deliveries_of,
    issue_and_queue,
    outbox_message,
    run_message,
)


def test_obf_issues_to_learner_email(app, db, seeded, obf):
    """The mapped OBF badge is issued to the learner's email and the event recorded."""
    badge_id = connect_obf(app, db, seeded, obf)
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    [event] = obf.live_events()
    assert event.badge_id == badge_id
    assert event.recipients == ["amina@example.org"]
    assert event.log_entry == {"hpass_credential_id": credential.public_id}
    [delivery] = deliveries_of(db, credential.id)
    assert delivery.route == "obf"
    assert delivery.status == DeliveryStatus.DELIVERED.value
    assert delivery.remote_id == event.id
    assert delivery.remote_url == f"{obf.url}/v1/assertion/{event.id}-0"


def test_obf_token_encrypted_and_reused(app, db, seeded, obf):
    """The OBF access token is stored encrypted and reused for the next delivery."""
    connect_obf(app, db, seeded, obf)
    _credential, message_ids = issue_and_queue(app, db, seeded)
    run_message(app, message_ids[0])

    db.expire_all()
    connection = db.query(ObfConnection).one()
    assert connection.access_token_encrypted is not None
    token = app.extensions["hpass"].vault.decrypt(connection.access_token_encrypted)
    assert token.decode() in obf.tokens
    assert b"obf-secret" not in connection.client_secret_encrypted
    assert obf.token_requests == 1


def test_obf_retry_finds_earlier_event(app, db, seeded, obf):
    """A retry after a lost OBF response reuses the event: no second badge."""
    connect_obf(app, db, seeded, obf)
    credential, message_ids = issue_and_queue(app, db, seeded)
    run_message(app, message_ids[0])
    with app.extensions["hpass"].session() as session:
        # Clear the recorded outcome, as a crash before the commit would.
        delivery = session.get(Delivery, deliveries_of(db, credential.id)[0].id)
        delivery.remote_id = None
        delivery.status = DeliveryStatus.QUEUED.value
        message = outbox_message(app, message_ids[0])
        session.merge(message).status = OutboxStatus.PENDING.value
        session.commit()

    assert run_message(app, message_ids[0]) == "done"

    assert len(obf.live_events()) == 1
    assert obf.issue_requests == 1
    assert deliveries_of(db, credential.id)[0].remote_id == obf.live_events()[0].id


def test_obf_expired_token_fetched_again(app, db, seeded, obf):
    """A 401 from OBF fetches a new client-credentials token once, then issues."""
    connect_obf(app, db, seeded, obf)
    issued, first = issue_and_queue(app, db, seeded)
    run_message(app, first[0])
    obf.revoke_tokens()
    with app.extensions["hpass"].session() as session:
        credential = session.get(Credential, issued.id)
        credential.status = CredentialStatus.REVOKED.value
        ids = requeue_for_revocation(session, credential)
        session.commit()

    assert run_message(app, ids[0]) == "done"

    assert obf.token_requests == 2
    assert obf.live_events() == []


def test_obf_revocation_passed_on(app, db, seeded, obf):
    """Revoking a delivered credential revokes OBF's event and marks the delivery."""
    connect_obf(app, db, seeded, obf)
    credential, message_ids = issue_and_queue(app, db, seeded)
    run_message(app, message_ids[0])
    with app.extensions["hpass"].session() as session:
        stored = session.get(Credential, credential.id)
        revoke_credential(session, stored, "Issued in error", actor="test")
        ids = requeue_for_revocation(session, stored)
        session.commit()

    assert ids == message_ids
    assert run_message(app, ids[0]) == "done"

    assert obf.live_events() == []
    assert deliveries_of(db, credential.id)[0].status == DeliveryStatus.REVOKED.value


def test_obf_wrong_secret_fails_with_reason(app, db, seeded, obf):
    """A wrong OBF client secret fails the delivery with OBF's reason, no retries."""
    connect_obf(app, db, seeded, obf, secret="not-the-secret")
    credential, message_ids = issue_and_queue(app, db, seeded)

    run_message(app, message_ids[0])

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.FAILED.value
    assert "invalid_client" in delivery.last_error
    assert outbox_message(app, message_ids[0]).status == OutboxStatus.DEAD.value


def test_obf_unmapped_achievement_fails(app, db, seeded, obf):
    """An achievement with no OBF badge fails, asking an admin to map it."""
    connect_obf(app, db, seeded, obf)
    from connectors.hpass.models import ObfBadgeMapping

    db.query(ObfBadgeMapping).delete()
    db.commit()
    credential, message_ids = issue_and_queue(app, db, seeded)

    run_message(app, message_ids[0])

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.FAILED.value
    assert "not mapped to an OBF badge" in delivery.last_error


def test_obf_rate_limit_waits(app, db, seeded, obf):
    """OBF's 429 with Retry-After: 86400 puts the next attempt a day away."""
    connect_obf(app, db, seeded, obf)
    obf.fail_next(1, status=429, retry_after="86400")
    credential, message_ids = issue_and_queue(app, db, seeded)
    before = datetime.now(timezone.utc)

    assert run_message(app, message_ids[0]) == "failed"

    assert deliveries_of(db, credential.id)[0].status == "retrying"
    message = outbox_message(app, message_ids[0])
    assert message.next_attempt_at >= before + timedelta(days=1)
