"""The Moodle webhook endpoint: authentication, validation and storage before the 2xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage
from tests.support.seed import add_moodle_connection, add_provider

FIXTURES = Path(__file__).parents[1] / "fixtures" / "moodle"
SECRET = "webhook-secret-academy"


def _fixture(name: str) -> dict:
    body = json.loads((FIXTURES / name).read_text())
    body["token"] = SECRET
    return body


@pytest.fixture
def connection(app, db):
    provider = add_provider(db)
    connection = add_moodle_connection(
        db, app.extensions["hpass"].vault, provider, "http://127.0.0.1:9", "token"
    )
    db.commit()
    return connection


def _post(client, connection, body, **kwargs):
    return client.post(f"/webhooks/moodle/{connection.public_id}", json=body, **kwargs)


def _stored_counts(db) -> tuple[int, int]:
    facts = db.scalar(select(func.count()).select_from(CompletionFactRecord))
    messages = db.scalar(select(func.count()).select_from(OutboxMessage))
    return facts, messages


def test_course_completed_stored_before_response(client, db, connection):
    """An accepted event is stored with its outbox message before the 202."""
    response = _post(client, connection, _fixture("event_course_completed.json"))

    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    assert _stored_counts(db) == (1, 1)


def test_stored_payload_has_no_token(client, db, connection):
    """The webhook secret inside the body is stripped before the payload is stored."""
    _post(client, connection, _fixture("event_course_completed.json"))

    fact = db.scalars(select(CompletionFactRecord)).one()

    assert "token" not in fact.raw_payload
    assert SECRET not in json.dumps(fact.raw_payload)


def test_repeat_event_is_duplicate(client, db, connection):
    """The same event twice is stored once and the second answer says duplicate."""
    body = _fixture("event_course_completed.json")
    _post(client, connection, body)

    response = _post(client, connection, body)

    assert response.status_code == 200
    assert response.json["status"] == "duplicate"
    assert _stored_counts(db) == (1, 1)


def test_wrong_secret_rejected(client, db, connection):
    """A wrong webhook token gets 401 naming the fix; nothing is stored."""
    body = _fixture("event_course_completed.json")
    body["token"] = "not-the-secret"

    response = _post(client, connection, body)

    assert response.status_code == 401
    assert "webhook secret" in response.json["message"]
    assert _stored_counts(db) == (0, 0)


def test_missing_secret_rejected(client, db, connection):
    """An event without a token gets 401; nothing is stored."""
    body = _fixture("event_course_completed.json")
    del body["token"]

    response = _post(client, connection, body)

    assert response.status_code == 401
    assert _stored_counts(db) == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b"", b'"a string"'],
    ids=["broken", "array", "empty", "string"],
)
def test_malformed_json_rejected(client, db, connection, raw):
    """A body that is not a JSON object gets 400 invalid_json; nothing is stored."""
    response = client.post(
        f"/webhooks/moodle/{connection.public_id}",
        data=raw,
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"
    assert "JSON object" in response.json["message"]
    assert _stored_counts(db) == (0, 0)


def test_unknown_event_type_rejected(client, db, connection):
    """An event name that is no Moodle event class gets 400 naming it."""
    body = _fixture("event_course_completed.json")
    body["eventname"] = "definitely-not-an-event"

    response = _post(client, connection, body)

    assert response.status_code == 400
    assert response.json["error"] == "invalid_event"
    assert "definitely-not-an-event" in response.json["message"]
    assert _stored_counts(db) == (0, 0)


def test_event_missing_learner_rejected(client, db, connection):
    """An event without relateduserid gets 400 naming the field; nothing is stored."""
    body = _fixture("event_course_completed.json")
    del body["relateduserid"]
    body["other"] = {}

    response = _post(client, connection, body)

    assert response.status_code == 400
    assert "relateduserid" in response.json["message"]
    assert _stored_counts(db) == (0, 0)


def test_event_bad_fields_in_one_response(client, db, connection):
    """An event missing two fields gets one 400 naming both, and nothing is stored."""
    body = _fixture("event_course_completed.json")
    del body["objectid"]
    del body["timecreated"]

    response = _post(client, connection, body)
    problems = response.json["problems"]

    assert response.status_code == 400
    assert response.json["error"] == "invalid_event"
    assert "objectid" in response.json["message"]
    assert "timecreated" in response.json["message"]
    assert [problem["field"] for problem in problems] == ["objectid", "timecreated"]
    assert "missing objectid" in problems[0]["message"]
    assert _stored_counts(db) == (0, 0)


def test_irrelevant_event_ignored(client, db, connection):
    """A Moodle event the bridge does not act on is accepted and stores nothing."""
    response = _post(client, connection, _fixture("event_badge_awarded.json"))

    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    assert _stored_counts(db) == (0, 0)


def test_unknown_connection_404(client, db):
    """A webhook URL with an unknown connection id gets 404 saying where to look."""
    response = client.post("/webhooks/moodle/no-such-connection", json={"token": "x"})

    assert response.status_code == 404
    assert "provider admin page" in response.json["message"]


def test_deeply_nested_json_rejected(client, db, connection):
    """A body nested 100,000 levels deep gets 400, not a server error; nothing is stored."""
    raw = "[" * 100_000 + "]" * 100_000

    response = client.post(
        f"/webhooks/moodle/{connection.public_id}",
        data=raw,
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json["error"] == "too_deep"
    assert _stored_counts(db) == (0, 0)
