"""Bad input on the Moodle webhook and xAPI endpoints gets a clear 4xx and stores
nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from badge_engine.models import CompletionFactRecord, Provider
from badge_engine.outbox import OutboxMessage
from connectors.models import LmsConnection, LmsKind
from lti_tool.views.webhooks import secret_digest

SECRET = "webhook-secret-0001"


@pytest.fixture
def public_id(db):
    provider = Provider(slug="hooks", name="Hooks", url="https://hooks.invalid")
    db.add(provider)
    db.flush()
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Moodle",
        base_url="http://127.0.0.1:9",
        webhook_secret_sha256=secret_digest(SECRET),
    )
    db.add(connection)
    db.commit()
    return connection.public_id


def user_graded(**changes):
    event = {
        "eventname": "\\core\\event\\user_graded",
        "courseid": 101,
        "relateduserid": 3001,
        "userid": 2,
        "other": {"itemid": 501},
        "timecreated": 1735689400,
        "token": SECRET,
    }
    event.update(changes)
    return event


def _stored(db) -> tuple[int, int]:
    facts = len(db.scalars(select(CompletionFactRecord)).all())
    messages = len(db.scalars(select(OutboxMessage)).all())
    return facts, messages


def test_user_graded_queues_one_reread(client, db, public_id):
    """user_graded queues one re-read, and the same event again queues nothing more."""
    url = f"/webhooks/moodle/{public_id}"

    first = client.post(url, json=user_graded())
    second = client.post(url, json=user_graded())

    assert first.status_code == 202
    assert first.json["status"] == "reread_queued"
    assert second.status_code == 202
    assert _stored(db) == (0, 1)


def test_user_graded_without_learner_rejected(client, db, public_id):
    """user_graded without relateduserid is a 400 naming the field."""
    event = user_graded()
    del event["relateduserid"]

    response = client.post(f"/webhooks/moodle/{public_id}", json=event)

    assert response.status_code == 400
    assert "relateduserid" in response.get_data(as_text=True)
    assert _stored(db) == (0, 0)


def test_user_graded_wrong_secret_rejected(client, db, public_id):
    """user_graded with a wrong token is a 401 and queues nothing."""
    response = client.post(
        f"/webhooks/moodle/{public_id}", json=user_graded(token="wrong")
    )

    assert response.status_code == 401
    assert _stored(db) == (0, 0)


def test_xapi_without_auth_rejected(client, db, public_id):
    """xAPI statements without Basic auth are a 401."""
    response = client.post(
        f"/webhooks/moodle/{public_id}/xapi/statements", json=[{"verb": {}}]
    )

    assert response.status_code == 401
    assert "LRS password field of Moodle's logstore_xapi" in response.json["message"]
    assert "webhook settings" not in response.json["message"]
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize("body", ["not json", "[]", "42"])
def test_xapi_bad_body_rejected(client, db, public_id, body):
    """An xAPI body that is not a statement list is a 400."""
    response = client.post(
        f"/webhooks/moodle/{public_id}/xapi/statements",
        data=body,
        content_type="application/json",
        auth=("moodle", SECRET),
    )

    assert response.status_code == 400
    assert _stored(db) == (0, 0)


def test_xapi_other_verb_ignored(client, db, public_id):
    """A statement that is not a completion is counted as ignored."""
    statement = {
        "actor": {"account": {"name": "3001"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": {"id": "https://moodle.invalid/course/view.php?id=101"},
    }

    response = client.post(
        f"/webhooks/moodle/{public_id}/xapi/statements",
        data=json.dumps([statement]),
        content_type="application/json",
        auth=("moodle", SECRET),
    )

    assert response.status_code == 200
    assert response.json == {"status": "accepted_as_hints", "hints": 0, "ignored": 1}
    assert _stored(db) == (0, 0)


def test_unknown_connection_not_found(client):
    """An event for an unknown connection is a 404."""
    response = client.post("/webhooks/moodle/no-such-id", json=user_graded())

    assert response.status_code == 404
