"""Fixtures for delivery tests: the fake portfolio and OBF on loopback, and a credential."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner
from badge_engine.outbound import OutboundPolicy
from badge_engine.outbox import OutboxMessage
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.hpass.http import PortfolioHttp
from connectors.hpass.models import (
    ObfBadgeMapping,
    ObfConnection,
    PortfolioAccount,
)
from connectors.hpass.ob3_oauth import (
    authorization_url,
    exchange_code,
    find_or_register_client,
    make_pkce_pair,
    store_tokens,
)
from lti_tool.demo.peers.obf import ObfPeer
from lti_tool.demo.peers.portfolio import PortfolioPeer
from lti_tool.pipeline import queue_deliveries
from tests.support.seed import add_moodle_connection, add_provider

AWARDED = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
REDIRECT_URI = "http://127.0.0.1:5999/portfolio/callback"


@pytest.fixture
def portfolio():
    peer = PortfolioPeer("static-token-not-used-here")
    server = peer.start()
    peer.url = server.url
    yield peer
    server.stop()


@pytest.fixture
def obf():
    peer = ObfPeer(client_id="ACME01", client_secret="obf-secret")
    server = peer.start()
    peer.url = server.url
    yield peer
    server.stop()


@dataclass
class Seeded:
    provider_id: int
    achievement_id: int
    learner_id: int


@pytest.fixture
def seeded(app, db):
    """A provider with one achievement and one learner who has an email."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:1", "t")
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Safe travel",
        description="Plans and checks safe travel in the field.",
        criteria_narrative="Complete the Safe travel course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="3001",
        email="amina@example.org",
    )
    db.add_all([achievement, learner])
    db.commit()
    return Seeded(provider.id, achievement.id, learner.id)


def link_by_oauth(
    app, db, seeded: Seeded, portfolio_url: str, **client_options
) -> PortfolioAccount:
    """Link the learner's portfolio by discovery, registration, consent and PKCE.

    `client_options` pick another route and its discovery, as for Badge Connect.
    """
    vault = app.extensions["hpass"].vault
    http = PortfolioHttp(
        OutboundPolicy(allow_loopback=True), portfolio_url=portfolio_url
    )
    client = find_or_register_client(
        db,
        vault,
        http,
        provider_id=seeded.provider_id,
        provider_name="Academy",
        client_uri="https://academy.example.invalid",
        redirect_uri=REDIRECT_URI,
        **client_options,
    )
    verifier, challenge = make_pkce_pair()
    consent_url = authorization_url(
        client, state="s1", code_challenge=challenge, redirect_uri=REDIRECT_URI
    )
    answer = requests.post(
        consent_url, data={"decision": "approve"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    code = requests.utils.urlparse(answer.headers["Location"]).query
    code = dict(part.split("=", 1) for part in code.split("&"))["code"]
    tokens = exchange_code(
        http,
        client,
        vault,
        code=code,
        code_verifier=verifier,
        redirect_uri=REDIRECT_URI,
    )
    account = PortfolioAccount(
        provider_id=seeded.provider_id,
        learner_id=seeded.learner_id,
        api_base_url=client.api_base_url,
        route=client.route,
        client_id=client.id,
    )
    store_tokens(account, vault, tokens, datetime.now(timezone.utc))
    db.add(account)
    db.commit()
    return account


def connect_obf(app, db, seeded: Seeded, obf: ObfPeer, secret: str = "obf-secret"):
    vault = app.extensions["hpass"].vault
    badge_id = obf.add_badge("Safe travel")
    db.add(
        ObfConnection(
            provider_id=seeded.provider_id,
            api_base_url=obf.url,
            client_id=obf.client_id,
            client_secret_encrypted=vault.encrypt(secret),
        )
    )
    db.add(
        ObfBadgeMapping(
            provider_id=seeded.provider_id,
            achievement_id=seeded.achievement_id,
            obf_badge_id=badge_id,
        )
    )
    db.commit()
    return badge_id


def issue_and_queue(app, db, seeded: Seeded) -> tuple[Credential, list[int]]:
    """Issue the achievement to the learner and queue its deliveries, committed."""
    vault = app.extensions["hpass"].vault
    achievement = db.get(Achievement, seeded.achievement_id)
    learner = db.get(Learner, seeded.learner_id)
    result = issue_credential(
        db,
        vault=vault,
        base_url="http://127.0.0.1:5999",
        achievement=achievement,
        learner=learner,
        awarded_at=AWARDED,
    )
    message_ids = queue_deliveries(db, result.credential)
    db.commit()
    return result.credential, message_ids


def run_message(app, message_id: int) -> str:
    """Run one outbox message now through the worker's task code, as if it were due.

    Moving `next_attempt_at` to now simulates the clock passing the backoff.
    """
    from lti_tool.tasks import run_outbox_message

    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        message = session.get(OutboxMessage, message_id)
        message.next_attempt_at = datetime.now(timezone.utc)
        session.commit()
    with app.app_context():
        return run_outbox_message(message_id)


def outbox_message(app, message_id: int) -> OutboxMessage:
    with app.extensions["hpass"].session() as session:
        message = session.get(OutboxMessage, message_id)
        session.expunge(message)
        return message


def deliveries_of(db, credential_id: int):
    from connectors.hpass.models import Delivery

    db.expire_all()
    return db.scalars(
        select(Delivery).where(Delivery.credential_id == credential_id)
    ).all()
