"""The OB 3.0 API route against the fake portfolio over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from badge_engine.outbound import OutboundPolicy
from badge_engine.outbox import OutboxStatus
from connectors.hpass.errors import PortfolioSetupError
from connectors.hpass.http import PortfolioHttp
from connectors.hpass.models import AccountState, DeliveryStatus, PortfolioAccount
from connectors.hpass.ob3_oauth import discover_ob3
from tests.connectors.hpass.conftest import (
    deliveries_of,
    issue_and_queue,
    link_by_oauth,
    outbox_message,
    run_message,
)


def test_linked_portfolio_receives_credential(app, db, seeded, portfolio):
    """A credential reaches a portfolio linked by discovery, registration and PKCE."""
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.DELIVERED.value
    assert delivery.route == "ob3_api"
    assert delivery.last_http_status == 201
    stored = portfolio.credentials()
    assert [item["id"] for item in stored] == [credential.document["id"]]


def test_redelivery_keeps_one_badge(app, db, seeded, portfolio):
    """Running a delivery twice replaces the badge in the portfolio, never adds one."""
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, message_ids = issue_and_queue(app, db, seeded)
    run_message(app, message_ids[0])
    with app.extensions["hpass"].session() as session:
        from connectors.hpass.deliveries import requeue
        from connectors.hpass.models import Delivery

        requeue(session, session.get(Delivery, deliveries_of(db, credential.id)[0].id))
        session.commit()

    assert run_message(app, message_ids[0]) == "done"

    assert len(portfolio.credentials()) == 1
    assert portfolio.stored_credential(credential.document["id"]).replaced_count == 1


def test_expired_token_refreshed_once(app, db, seeded, portfolio):
    """A 401 on an expired access token refreshes it once, then delivers."""
    account = link_by_oauth(app, db, seeded, portfolio.url)
    old_token = account.access_token_encrypted
    portfolio.oauth.expire_access_tokens()
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    assert portfolio.oauth.refresh_count() == 1
    assert deliveries_of(db, credential.id)[0].status == "delivered"
    db.expire_all()
    assert db.get(PortfolioAccount, account.id).access_token_encrypted != old_token


def test_revoked_token_needs_consent(app, db, seeded, portfolio):
    """A revoked grant ends in needs_consent after one refresh, with no retries."""
    account = link_by_oauth(app, db, seeded, portfolio.url)
    portfolio.revoke_tokens()
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.NEEDS_CONSENT.value
    assert "link the portfolio again" in delivery.last_error
    assert portfolio.oauth.refresh_count() == 1
    assert portfolio.received_count == 1
    assert outbox_message(app, message_ids[0]).status == OutboxStatus.DONE.value
    db.expire_all()
    stored = db.get(PortfolioAccount, account.id)
    assert stored.state == AccountState.NEEDS_CONSENT.value
    assert stored.access_token_encrypted is None
    assert stored.refresh_token_encrypted is None


def test_server_error_retries_later(app, db, seeded, portfolio):
    """A 503 leaves the delivery retrying and the message pending, later."""
    link_by_oauth(app, db, seeded, portfolio.url)
    portfolio.fail_next(1, status=503)
    credential, message_ids = issue_and_queue(app, db, seeded)
    before = datetime.now(timezone.utc)

    assert run_message(app, message_ids[0]) == "failed"

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.RETRYING.value
    assert delivery.last_http_status == 503
    message = outbox_message(app, message_ids[0])
    assert message.status == OutboxStatus.PENDING.value
    assert message.next_attempt_at >= before + timedelta(seconds=10)
    assert run_message(app, message_ids[0]) == "done"
    assert len(portfolio.credentials()) == 1


def test_rate_limit_honours_retry_after(app, db, seeded, portfolio):
    """A 429 with Retry-After: 7200 schedules the next attempt at least two hours on."""
    link_by_oauth(app, db, seeded, portfolio.url)
    portfolio.fail_next(1, status=429, retry_after="7200")
    _credential, message_ids = issue_and_queue(app, db, seeded)
    before = datetime.now(timezone.utc)

    run_message(app, message_ids[0])

    message = outbox_message(app, message_ids[0])
    assert message.status == OutboxStatus.PENDING.value
    assert message.next_attempt_at >= before + timedelta(hours=2)


def test_client_error_goes_to_dead_letters(app, db, seeded, portfolio):
    """A 400 stops retrying: the delivery fails with the portfolio's reason."""
    link_by_oauth(app, db, seeded, portfolio.url)
    portfolio.fail_next(1, status=400)
    credential, message_ids = issue_and_queue(app, db, seeded)

    run_message(app, message_ids[0])

    [delivery] = deliveries_of(db, credential.id)
    assert delivery.status == DeliveryStatus.FAILED.value
    assert "simulated failure (HTTP 400)" in delivery.last_error
    message = outbox_message(app, message_ids[0])
    assert message.status == OutboxStatus.DEAD.value
    assert "HTTP 400" in message.last_error


def test_discovery_pointing_elsewhere_rejected(portfolio):
    """A discovery document whose token URL is on another host is rejected."""
    portfolio.oauth.discovery_overrides["tokenUrl"] = "http://127.0.0.2:9/token"
    http = PortfolioHttp(
        OutboundPolicy(allow_loopback=True), portfolio_url=portfolio.url
    )

    with pytest.raises(PortfolioSetupError, match="not on"):
        discover_ob3(http)


def test_discovery_not_json_rejected(portfolio):
    """A portfolio URL that serves no discovery document is rejected with the reason."""
    http = PortfolioHttp(
        OutboundPolicy(allow_loopback=True), portfolio_url=portfolio.url + "/nowhere"
    )

    with pytest.raises(PortfolioSetupError, match="discovery document failed"):
        discover_ob3(http)


def test_token_near_expiry_refreshed_first(app, db, seeded, portfolio):
    """A token that expires within a minute is refreshed once before the upsert."""
    account = link_by_oauth(app, db, seeded, portfolio.url)
    account.access_token_expires_at = datetime.now(timezone.utc) + timedelta(seconds=5)
    db.commit()
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    assert portfolio.oauth.refresh_count() == 1
    assert portfolio.received_count == 1
    db.expire_all()
    refreshed = db.get(PortfolioAccount, account.id)
    assert refreshed.access_token_expires_at > datetime.now(timezone.utc) + timedelta(
        minutes=30
    )


def test_fake_discovery_matches_openapi(portfolio):
    """The fake portfolio's discovery response is valid under the OB 3.0 OpenAPI document."""
    import requests
    from openapi_core.contrib.requests import (
        RequestsOpenAPIRequest,
        RequestsOpenAPIResponse,
    )

    from lti_tool.demo.peers.portfolio import load_ob3_api

    response = requests.get(portfolio.url + "/ims/ob/v3p0/discovery", timeout=10)

    load_ob3_api().validate_response(
        RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
    )
    assert response.json()["components"]["securitySchemes"]["OAuth2ACG"]["type"] == (
        "oauth2"
    )


def test_retry_schedule_spans_days():
    """The retries the outbox allows by default span more than three days."""
    from connectors.hpass.deliveries import retry_delay

    total = sum((retry_delay(attempt) for attempt in range(1, 12)), timedelta(0))

    assert total > timedelta(days=3)
    assert retry_delay(1) == timedelta(seconds=10)
    assert retry_delay(30) == timedelta(days=1)
    assert retry_delay(1, timedelta(hours=2)) == timedelta(hours=2)


def test_unknown_route_fails_with_reason(app, db, seeded, portfolio):
    """A delivery on a route no plug-in serves fails and names the known routes."""
    from connectors.hpass.models import Delivery

    link_by_oauth(app, db, seeded, portfolio.url)
    credential, message_ids = issue_and_queue(app, db, seeded)
    delivery = db.get(Delivery, deliveries_of(db, credential.id)[0].id)
    delivery.route = "carrier_pigeon"
    db.commit()

    run_message(app, message_ids[0])

    [failed] = deliveries_of(db, credential.id)
    assert failed.status == DeliveryStatus.FAILED.value
    assert "no delivery route 'carrier_pigeon'" in failed.last_error
    assert "ob3_api" in failed.last_error
