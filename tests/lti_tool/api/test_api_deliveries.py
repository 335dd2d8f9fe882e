"""Delivery rows in the provider API: when a revocation was sent to the portfolio."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from badge_engine.models import Achievement, Credential, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.hpass.models import Delivery, PortfolioAccount
from lti_tool.api.tokens import create_api_token
from tests.support.seed import add_moodle_connection, add_provider

LEARNER = "learner-7"
DELIVERED = datetime(2026, 3, 14, 9, 31, tzinfo=timezone.utc)
REVOCATION_SENT = datetime(2026, 4, 2, 8, 0, tzinfo=timezone.utc)


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _add_delivery(db, credential, url: str, status: str, **fields) -> Delivery:
    account = PortfolioAccount(
        provider_id=credential.provider_id,
        learner_id=credential.learner_id,
        api_base_url=url,
    )
    db.add(account)
    db.flush()
    delivery = Delivery(
        provider_id=credential.provider_id,
        credential_id=credential.id,
        portfolio_account_id=account.id,
        status=status,
        **fields,
    )
    db.add(delivery)
    db.flush()
    return delivery


@pytest.fixture
def revoked(app, db) -> dict:
    """A revoked award with one delivery that sent the revocation and one that did not."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db, slug="alpha", name="Alpha")
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Alpha badge",
        description="d",
        criteria_narrative="c",
        award_rule=COURSE_COMPLETED_RULE,
    )
    learner = Learner(
        provider_id=provider.id, lms_connection_id=connection.id, lms_user_id=LEARNER
    )
    db.add_all([achievement, learner])
    db.flush()

    credential = Credential(
        provider_id=provider.id,
        achievement_id=achievement.id,
        learner_id=learner.id,
        awarded_at=DELIVERED,
        document={"type": ["VerifiableCredential"]},
        status="revoked",
        revoked_at=REVOCATION_SENT,
        revocation_reason="Issued by mistake",
    )
    db.add(credential)
    db.flush()

    sent = _add_delivery(
        db,
        credential,
        "https://portfolio-one.example.org",
        "revoked",
        delivered_at=DELIVERED,
        revocation_sent_at=REVOCATION_SENT,
    )
    unsent = _add_delivery(
        db,
        credential,
        "https://portfolio-two.example.org",
        "delivered",
        delivered_at=DELIVERED,
    )

    _, token = create_api_token(
        db, provider_id=provider.id, name="t", created_by="test"
    )
    db.commit()
    return {
        "token": token,
        "award": credential.public_id,
        "sent": sent.id,
        "unsent": unsent.id,
    }


def _by_id(rows: list[dict]) -> dict[int, dict]:
    return {row["id"]: row for row in rows}


def test_delivery_list_revocation_time(client, revoked):
    """GET /deliveries gives the time the revocation was sent, or null."""
    response = client.get("/api/v1/deliveries", headers=_auth(revoked["token"]))
    rows = _by_id(response.json["deliveries"])

    assert response.status_code == 200
    assert rows[revoked["sent"]]["status"] == "revoked"
    assert rows[revoked["sent"]]["revocation_sent_at"] == "2026-04-02T08:00:00+00:00"
    assert rows[revoked["unsent"]]["revocation_sent_at"] is None


def test_award_deliveries_revocation_time(client, revoked):
    """GET /awards/{id} gives each delivery's revocation time, or null."""
    response = client.get(
        f"/api/v1/awards/{revoked['award']}", headers=_auth(revoked["token"])
    )
    rows = _by_id(response.json["deliveries"])

    assert response.status_code == 200
    assert rows[revoked["sent"]]["revocation_sent_at"] == "2026-04-02T08:00:00+00:00"
    assert rows[revoked["unsent"]]["revocation_sent_at"] is None


def test_learner_export_revocation_time(client, revoked):
    """The learner export gives each delivery's revocation time, or null."""
    response = client.get(
        f"/api/v1/learners/{LEARNER}/export", headers=_auth(revoked["token"])
    )
    [record] = response.json["learners"]
    [award] = record["awards"]
    rows = _by_id(award["deliveries"])

    assert response.status_code == 200
    assert rows[revoked["sent"]]["revocation_sent_at"] == "2026-04-02T08:00:00+00:00"
    assert rows[revoked["unsent"]]["revocation_sent_at"] is None


def test_openapi_revocation_time_field(client, revoked):
    """The OpenAPI document describes the field as a nullable date-time."""
    document = client.get("/api/v1/openapi.json").json
    field = document["components"]["schemas"]["Delivery"]["properties"][
        "revocation_sent_at"
    ]

    assert field == {"type": ["string", "null"], "format": "date-time"}
