"""Passing a revocation on to an OB 3.0 API portfolio, over real HTTP.

The portfolio stand-in reads each credential's status list from the app, as a
wallet reads it from the issuer, so the tests show what the portfolio learns.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from badge_engine.models import Credential
from badge_engine.outbox import OutboxStatus
from connectors.hpass.deliveries import requeue
from connectors.hpass.models import Delivery, DeliveryStatus
from connectors.hpass.routes import route_for
from lti_tool.demo.peers.portfolio import PortfolioPeer
from lti_tool.operations.awards import revoke_award
from tests.connectors.hpass.conftest import (
    deliveries_of,
    issue_and_queue,
    link_by_oauth,
    outbox_message,
    run_message,
)


@pytest.fixture
def portfolio(app):
    """A portfolio that reads status lists from the app under test."""

    def fetch_from_app(url: str):
        response = app.test_client().get(urlsplit(url).path)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    peer = PortfolioPeer("static-token-not-used-here", fetch_document=fetch_from_app)
    server = peer.start()
    peer.url = server.url
    yield peer
    server.stop()


def _delivered(app, db, seeded, portfolio) -> tuple[Credential, int]:
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, [message_id] = issue_and_queue(app, db, seeded)
    assert run_message(app, message_id) == "done"
    return credential, message_id


def _revoke(app, credential: Credential) -> list[int]:
    with app.extensions["hpass"].session() as session:
        stored = session.get(Credential, credential.id)
        message_ids = revoke_award(session, "test", stored, "Issued in error")
        session.commit()
    return message_ids


def test_revocation_upserts_credential_again(app, db, seeded, portfolio):
    """The portfolio gets the credential again once, reads its status and shows it revoked."""
    credential, message_id = _delivered(app, db, seeded, portfolio)
    credential_id = credential.document["id"]
    assert portfolio.statuses() == {credential_id: "valid"}

    assert _revoke(app, credential) == [message_id]
    assert deliveries_of(db, credential.id)[0].status == DeliveryStatus.QUEUED.value
    assert run_message(app, message_id) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert delivery.revocation_sent_at is not None
    assert delivery.last_http_status == 200
    assert delivery.last_error is None
    assert [entry.status for entry in portfolio.request_log] == [201, 200]
    assert portfolio.statuses() == {credential_id: "revoked"}
    assert portfolio.stored_credential(credential_id).replaced_count == 1
    assert outbox_message(app, message_id).status == OutboxStatus.DONE.value


def test_revocation_retried_after_server_error(app, db, seeded, portfolio):
    """A 503 to the revocation retries later, and the retry lands it."""
    credential, message_id = _delivered(app, db, seeded, portfolio)
    _revoke(app, credential)
    portfolio.fail_next(1, status=503)
    before = datetime.now(timezone.utc)

    assert run_message(app, message_id) == "failed"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.RETRYING.value
    assert delivery.last_http_status == 503
    assert "503" in delivery.last_error
    assert delivery.revocation_sent_at is None
    message = outbox_message(app, message_id)
    assert message.status == OutboxStatus.PENDING.value
    assert message.next_attempt_at >= before + timedelta(seconds=10)
    assert portfolio.statuses() == {credential.document["id"]: "valid"}

    assert run_message(app, message_id) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert delivery.revocation_sent_at is not None
    assert delivery.last_error is None
    assert portfolio.statuses() == {credential.document["id"]: "revoked"}
    assert [entry.status for entry in portfolio.request_log] == [201, 503, 200]


def test_revocation_rejected_goes_to_dead_letters(app, db, seeded, portfolio):
    """A 400 to the revocation fails with the reason. An admin retry sends it."""
    credential, message_id = _delivered(app, db, seeded, portfolio)
    _revoke(app, credential)
    portfolio.fail_next(1, status=400)

    run_message(app, message_id)

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.FAILED.value
    assert "simulated failure (HTTP 400)" in delivery.last_error
    message = outbox_message(app, message_id)
    assert message.status == OutboxStatus.DEAD.value
    assert "HTTP 400" in message.last_error

    with app.extensions["hpass"].session() as session:
        requeue(session, session.get(Delivery, delivery.id))
        session.commit()
    assert run_message(app, message_id) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert portfolio.statuses() == {credential.document["id"]: "revoked"}


def test_revocation_before_delivery_sends_nothing(app, db, seeded, portfolio):
    """A credential revoked before its first attempt never reaches the portfolio."""
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, [message_id] = issue_and_queue(app, db, seeded)

    assert _revoke(app, credential) == []
    assert run_message(app, message_id) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert delivery.revocation_sent_at is None
    assert delivery.delivered_at is None
    assert portfolio.received_count == 0


def test_revocation_after_timeout_sent(app, db, seeded, portfolio):
    """A delivery retrying after a 5xx is sent the revoked credential, in case it landed."""
    link_by_oauth(app, db, seeded, portfolio.url)
    portfolio.fail_next(1, status=502)
    credential, [message_id] = issue_and_queue(app, db, seeded)
    assert run_message(app, message_id) == "failed"

    _revoke(app, credential)
    assert run_message(app, message_id) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert delivery.revocation_sent_at is not None
    assert portfolio.statuses() == {credential.document["id"]: "revoked"}


def test_revocation_during_delivery_sent_next(app, db, seeded, portfolio, monkeypatch):
    """A badge revoked while its live copy was being sent lands, then the next
    attempt passes the revocation on."""
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, [message_id] = issue_and_queue(app, db, seeded)
    route = route_for("ob3_api")
    send = route.deliver

    def send_then_revoke(job):
        outcome = send(job)
        # The instructor's revocation commits while the worker waits for the
        # portfolio's response.
        _revoke(app, credential)
        return outcome

    monkeypatch.setattr(route, "deliver", send_then_revoke)
    assert run_message(app, message_id) == "failed"
    monkeypatch.setattr(route, "deliver", send)
    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.DELIVERED.value
    assert delivery.revocation_sent_at is None

    assert run_message(app, message_id) == "done"
    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.REVOKED.value
    assert delivery.revocation_sent_at is not None
    assert portfolio.statuses() == {credential.document["id"]: "revoked"}
