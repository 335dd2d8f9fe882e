"""An instructor's delivery list and retry: only the launched course's badges, and
never a delivery that a provider admin discarded."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement, Credential, Provider
from badge_engine.outbox import OutboxMessage
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.hpass.deliveries import delivery_key
from connectors.hpass.models import Delivery
from lti_tool.models import LtiCourse
from lti_tool.operations.deliveries import discard_delivery
from lti_tool.views import portfolio

from .conftest import add_credential, launch_as

OTHER_LMS_COURSE_ID = "202"


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    """The outbox message ids the retry route hands to the dispatcher."""
    sent: list[int] = []
    monkeypatch.setattr(portfolio, "_dispatch", sent.extend)
    return sent


def _failed_delivery(db, provider_id: int, credential: Credential) -> Delivery:
    """Add a failed OBF delivery of the credential with its dead outbox message."""
    delivery = Delivery(
        provider_id=provider_id,
        credential_id=credential.id,
        route="obf",
        status="failed",
        attempts=12,
        last_error="OBF returned HTTP 422",
    )
    db.add(delivery)
    db.flush()
    db.add(
        OutboxMessage(
            provider_id=provider_id,
            kind="credential.deliver",
            idempotency_key=delivery_key(delivery.id),
            payload={},
            status="dead",
            attempts=12,
            last_error="OBF returned HTTP 422",
        )
    )
    db.commit()
    return delivery


def _other_course_credential(db, tenant) -> Credential:
    """Add a second course of the tenant's provider with a badge awarded to its learner."""
    db.add(
        LtiCourse(
            provider_id=tenant.provider_id,
            registration_id=tenant.registration_id,
            lti_context_id="context-other",
            title="Other course",
            lms_course_id=OTHER_LMS_COURSE_ID,
        )
    )
    achievement = Achievement(
        provider_id=tenant.provider_id,
        lms_connection_id=tenant.connection_id,
        lms_course_id=OTHER_LMS_COURSE_ID,
        name="Badge of the other course",
        description="Finished the other course.",
        criteria_narrative="Complete the other course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    db.add(achievement)
    db.flush()
    credential = Credential(
        provider_id=tenant.provider_id,
        achievement_id=achievement.id,
        learner_id=tenant.learner_id,
        live_key=f"{achievement.id}:{tenant.learner_id}",
        awarded_at=datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc),
        document={"type": ["VerifiableCredential"], "name": "signed document"},
    )
    db.add(credential)
    db.commit()
    return credential


def _message(db, delivery: Delivery) -> OutboxMessage:
    db.expire_all()
    return db.scalar(
        select(OutboxMessage).where(
            OutboxMessage.idempotency_key == delivery_key(delivery.id)
        )
    )


def _retry(client, delivery_id: int):
    return client.post(
        f"/portfolio/deliveries/{delivery_id}/retry",
        data={"csrf": "test-csrf"},
        headers={"Accept": "application/json"},
    )


def test_list_only_course_badges(client, tenants, db):
    """The list contains the launched course's deliveries, not another course's."""
    alpha, _ = tenants
    own = _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    other_credential = _other_course_credential(db, alpha)
    other = _failed_delivery(db, alpha.provider_id, other_credential)
    launch_as(client, alpha, "instructor")

    listed = client.get("/portfolio/deliveries").get_json()["deliveries"]
    failed = client.get("/portfolio/deliveries?status=failed").get_json()["deliveries"]

    assert [item["id"] for item in listed] == [own.id]
    assert [item["id"] for item in failed] == [own.id]
    assert other.id not in [item["id"] for item in listed]
    assert other_credential.public_id not in [item["credential"] for item in listed]


def test_list_other_provider_empty(client, tenants, db):
    """Another provider's deliveries are never listed."""
    alpha, beta = tenants
    _failed_delivery(db, beta.provider_id, add_credential(db, beta))
    launch_as(client, alpha, "instructor")

    listed = client.get("/portfolio/deliveries").get_json()["deliveries"]

    assert listed == []


def test_list_without_course_forbidden(client, tenants, db):
    """An instructor session without a launched course lists nothing."""
    alpha, _ = tenants
    _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    launch_as(client, alpha, "instructor")
    with client.session_transaction() as session:
        session.pop("course_id")

    answer = client.get("/portfolio/deliveries", headers={"Accept": "application/json"})

    assert answer.status_code == 403
    assert "open the tool from a course you teach" in answer.get_json()["message"]


def test_list_unknown_status_rejected(client, tenants):
    """An unknown status filter gets a 400 listing the known ones."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    answer = client.get("/portfolio/deliveries?status=lost")

    assert answer.status_code == 400
    assert b"needs_consent" in answer.data


def test_retry_course_delivery(client, tenants, db, dispatched):
    """An instructor retries a failed delivery of the course's badge."""
    alpha, _ = tenants
    delivery = _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    launch_as(client, alpha, "instructor")

    answer = _retry(client, delivery.id)

    assert answer.status_code == 200, answer.data
    assert answer.get_json() == {"id": delivery.id, "status": "queued"}
    message = _message(db, delivery)
    assert message.status == "pending"
    assert dispatched == [message.id]


def test_retry_other_course_404(client, tenants, db, dispatched):
    """Another course's delivery gets the same 404 as an unknown id, and stays failed."""
    alpha, _ = tenants
    other = _failed_delivery(db, alpha.provider_id, _other_course_credential(db, alpha))
    launch_as(client, alpha, "instructor")
    unknown_id = other.id + 1000

    answer = _retry(client, other.id)
    unknown = _retry(client, unknown_id)

    assert answer.status_code == 404
    assert unknown.status_code == 404
    assert answer.get_json()["error"] == unknown.get_json()["error"]
    assert answer.get_json()["message"] == unknown.get_json()["message"].replace(
        str(unknown_id), str(other.id)
    )
    assert db.get(Delivery, other.id).status == "failed"
    assert _message(db, other).status == "dead"
    assert dispatched == []


def test_retry_other_provider_404(client, tenants, db, dispatched):
    """Another provider's delivery is not found either."""
    alpha, beta = tenants
    foreign = _failed_delivery(db, beta.provider_id, add_credential(db, beta))
    launch_as(client, alpha, "instructor")

    answer = _retry(client, foreign.id)

    assert answer.status_code == 404
    assert _message(db, foreign).status == "dead"
    assert dispatched == []


def test_retry_discarded_forbidden(client, tenants, db, dispatched):
    """A delivery an admin discarded stays discarded, and the 403 names who to ask."""
    alpha, _ = tenants
    provider = db.get(Provider, alpha.provider_id)
    provider.email = "badges@alpha.example.org"
    delivery = _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    discard_delivery(db, "account:1", delivery, "the learner asked not to publish it")
    db.commit()
    launch_as(client, alpha, "instructor")

    answer = _retry(client, delivery.id)

    assert answer.status_code == 403
    body = answer.get_json()
    assert body["error"] == "delivery_discarded"
    assert (
        f"delivery {delivery.id} was discarded by an admin of Alpha" in body["message"]
    )
    assert "the learner asked not to publish it" in body["message"]
    assert "ask the admins of Alpha at badges@alpha.example.org" in body["message"]
    assert _message(db, delivery).status == "discarded"
    assert db.get(Delivery, delivery.id).status == "failed"
    assert dispatched == []


def test_retry_discarded_without_email(client, tenants, db, dispatched):
    """Without a provider address the 403 still names the provider's admins."""
    alpha, _ = tenants
    delivery = _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    discard_delivery(db, "account:1", delivery, "duplicate")
    db.commit()
    launch_as(client, alpha, "instructor")

    answer = _retry(client, delivery.id)

    assert answer.status_code == 403
    assert "ask the admins of Alpha to retry it" in answer.get_json()["message"]
    assert dispatched == []


@pytest.mark.parametrize("role", ["learner", "observer"])
def test_retry_needs_instructor(client, tenants, db, dispatched, role):
    """Learners and observers cannot retry a delivery, even of their course."""
    alpha, _ = tenants
    delivery = _failed_delivery(db, alpha.provider_id, add_credential(db, alpha))
    launch_as(client, alpha, role)

    answer = _retry(client, delivery.id)

    assert answer.status_code == 403
    assert _message(db, delivery).status == "dead"
    assert dispatched == []


def test_list_revocation_sent_at(client, tenants, db):
    """Each listed delivery gives when its revocation was sent, or null."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    told = datetime(2026, 4, 2, 8, 0, tzinfo=timezone.utc)
    delivery = Delivery(
        provider_id=alpha.provider_id,
        credential_id=credential.id,
        route="obf",
        status="revoked",
        revocation_sent_at=told,
    )
    db.add(delivery)
    db.commit()
    launch_as(client, alpha, "instructor")

    [row] = client.get("/portfolio/deliveries").get_json()["deliveries"]
    delivery.revocation_sent_at = None
    db.commit()
    [untold] = client.get("/portfolio/deliveries").get_json()["deliveries"]

    assert row["status"] == "revoked"
    assert row["revocation_sent_at"] == "2026-04-02T08:00:00+00:00"
    assert untold["revocation_sent_at"] is None
