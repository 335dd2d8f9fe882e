"""Event ids too long for their columns get 400, on SQLite and PostgreSQL.

PostgreSQL rejects a value longer than its column, so without the check such an
event ended in 503 not_stored and the LMS would send it again forever.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage
from connectors.canvas.connection import connect_canvas
from lti_tool.views.webhooks import secret_digest
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "webhook-secret-academy"
LONG = int("9" * 80)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, settings):
    """The shared settings, on SQLite or on the local PostgreSQL."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def connections(app, db):
    """A Moodle and a Canvas connection of one provider, both with SECRET."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    moodle = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    canvas = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url="http://127.0.0.1:8",
        access_token="canvas-token",
    )
    canvas.webhook_secret_sha256 = secret_digest(SECRET)
    db.commit()
    return moodle, canvas


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _stored(db) -> tuple[int, int]:
    db.expire_all()
    facts = db.scalar(select(func.count()).select_from(CompletionFactRecord))
    messages = db.scalar(select(func.count()).select_from(OutboxMessage))
    return facts, messages


def _moodle_event(name: str, **changes) -> dict:
    body = _fixture(f"moodle/{name}")
    body["token"] = SECRET
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("fixture", "field", "value"),
    [
        ("event_course_completed.json", "courseid", LONG),
        ("event_course_completed.json", "relateduserid", LONG),
        ("event_course_completed.json", "objectid", LONG),
        ("event_course_completed.json", "courseid", "9" * 19),
        ("event_course_module_completion_updated.json", "contextinstanceid", LONG),
        ("event_user_graded.json", "courseid", LONG),
    ],
)
def test_moodle_long_id_rejected(client, db, connections, fixture, field, value):
    """A Moodle id over 18 digits gets 400 naming the field and the limit."""
    moodle, _ = connections
    body = _moodle_event(fixture, **{field: value})
    body.get("other", {}).pop("relateduserid", None)

    response = client.post(f"/webhooks/moodle/{moodle.public_id}", json=body)

    assert response.status_code == 400, response.get_json()
    message = response.get_json()["message"]
    assert f"invalid {field}, a number of {len(str(value))} digits" in message
    assert "at most 18 digits" in message
    assert _stored(db) == (0, 0)


def test_moodle_nested_learner_long_rejected(client, db, connections):
    """An overlong other.relateduserid is named as that field."""
    moodle, _ = connections
    body = _moodle_event("event_course_completed.json")
    del body["relateduserid"]
    body["other"]["relateduserid"] = LONG

    response = client.post(f"/webhooks/moodle/{moodle.public_id}", json=body)

    assert response.status_code == 400
    assert "invalid other.relateduserid" in response.get_json()["message"]
    assert _stored(db) == (0, 0)


def test_moodle_longest_id_stored(client, db, connections):
    """Ids of exactly 18 digits are stored."""
    moodle, _ = connections
    longest = int("9" * 18)
    body = _moodle_event(
        "event_course_completed.json", courseid=longest, relateduserid=longest
    )
    body["other"]["relateduserid"] = longest

    response = client.post(f"/webhooks/moodle/{moodle.public_id}", json=body)

    assert response.status_code == 202, response.get_json()
    record = db.scalars(select(CompletionFactRecord)).one()
    assert record.lms_course_id == "9" * 18
    assert record.lms_user_id == "9" * 18


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("body", "course", "id"), LONG),
        (("body", "user", "id"), LONG),
        (("body", "user", "id"), str(2**63)),
        (("metadata", "root_account_id"), LONG),
    ],
)
def test_canvas_long_id_rejected(client, db, connections, path, value):
    """A Canvas id over 2^63 - 1 gets 400 naming the field and the limit."""
    _, canvas = connections
    event = _fixture("canvas/live_event_course_completed.json")
    parent = event
    for name in path[:-1]:
        parent = parent[name]
    parent[path[-1]] = value

    response = client.post(
        f"/webhooks/canvas/{canvas.public_id}?token={SECRET}", json=event
    )

    assert response.status_code == 400, response.get_json()
    message = response.get_json()["message"]
    assert ".".join(path) in message
    assert f"larger than {2**63 - 1}" in message
    assert _stored(db) == (0, 0)


def test_moodle_overlong_number_named(client, db, connections):
    """A body with an integer over Python's 4,300-digit limit is named as such."""
    moodle, _ = connections
    raw = json.dumps(_moodle_event("event_course_completed.json"))
    raw = raw.replace('"courseid": 101', '"courseid": ' + "9" * 5000)

    response = client.post(
        f"/webhooks/moodle/{moodle.public_id}",
        data=raw,
        content_type="application/json",
    )

    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "contains a number too long to read (more than 4300 digits)" in message
    assert "not a JSON object" not in message
    assert _stored(db) == (0, 0)
