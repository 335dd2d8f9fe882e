"""The Badge Connect route against the fake backpack over real HTTP."""

from __future__ import annotations

import pytest

from badge_engine.outbound import OutboundPolicy
from connectors.hpass.badge_connect import discover_badge_connect
from connectors.hpass.errors import PortfolioSetupError
from connectors.hpass.http import PortfolioHttp
from connectors.hpass.models import DeliveryStatus
from lti_tool.demo.peers.badge_connect import BadgeConnectPeer
from tests.connectors.hpass.conftest import (
    deliveries_of,
    issue_and_queue,
    link_by_oauth,
    run_message,
)


@pytest.fixture
def backpack():
    peer = BadgeConnectPeer()
    server = peer.start()
    peer.url = server.url
    yield peer
    server.stop()


def _link(app, db, seeded, backpack):
    return link_by_oauth(
        app,
        db,
        seeded,
        backpack.url,
        route="badge_connect",
        discover=discover_badge_connect,
    )


def test_backpack_receives_assertion(app, db, seeded, backpack):
    """A linked Badge Connect backpack receives the hosted OB 2.0 assertion."""
    account = _link(app, db, seeded, backpack)
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    assert account.api_base_url == backpack.url + "/bcv1"
    [delivery] = deliveries_of(db, credential.id)
    assert delivery.route == "badge_connect"
    assert delivery.status == DeliveryStatus.DELIVERED.value
    assert delivery.last_http_status == 201
    [assertion_id] = backpack.assertions
    assert assertion_id.endswith(f"/ob2/assertions/{credential.public_id}")
    assert delivery.remote_id == assertion_id


def test_backpack_revoked_token_needs_consent(app, db, seeded, backpack):
    """A revoked backpack grant ends in needs_consent, not in retries."""
    _link(app, db, seeded, backpack)
    backpack.oauth.revoke_all()
    credential, message_ids = issue_and_queue(app, db, seeded)

    assert run_message(app, message_ids[0]) == "done"

    assert deliveries_of(db, credential.id)[0].status == "needs_consent"
    assert backpack.oauth.refresh_count() == 1


def test_manifest_missing_scope_rejected(backpack, monkeypatch):
    """A manifest that offers no assertion.create scope is rejected."""
    monkeypatch.setattr(
        "connectors.hpass.badge_connect.SCOPE_CREATE", "https://example.org/other"
    )
    http = PortfolioHttp(
        OutboundPolicy(allow_loopback=True), portfolio_url=backpack.url
    )

    with pytest.raises(PortfolioSetupError, match="does not offer the scope"):
        discover_badge_connect(http)


def test_link_falls_back_to_badge_connect(client, db, seeded, backpack):
    """Linking a backpack without OB 3.0 discovery registers by Badge Connect."""
    from connectors.hpass.models import PortfolioClient

    with client.session_transaction() as session:
        session.update(
            provider_id=seeded.provider_id,
            learner_id=seeded.learner_id,
            role="learner",
            csrf="t",
        )

    answer = client.post(
        "/portfolio/link", data={"csrf": "t", "portfolio_url": backpack.url}
    )

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(backpack.url + "/oauth/authorize?")
    [registered] = db.query(PortfolioClient).all()
    assert registered.route == "badge_connect"
