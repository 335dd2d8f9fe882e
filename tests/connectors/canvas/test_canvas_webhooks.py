"""Live Events into the bridge over real HTTP, through the award pipeline.

The bridge and the Canvas stand-in each run on a loopback port. The stand-in
posts events to the bridge, and each test runs the outbox messages in-process.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import Achievement, CompletionFactRecord, Credential
from badge_engine.outbox import OutboxMessage
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.canvas.connection import connect_canvas
from connectors.models import ConnectionState
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.tasks import run_outbox_message
from lti_tool.views.webhooks import secret_digest
from tests.connectors.canvas.conftest import COURSE_ID
from tests.support.seed import add_provider

SECRET = "canvas-webhook-secret"
FIRST = datetime(2025, 1, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def bridge_url(app):
    with serve_in_thread(app) as server:
        yield server.url


@pytest.fixture
def canvas(app, db, fake, canvas_url):
    """A provider with a Canvas connection (OAuth2) and one course achievement."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    refresh_token = fake.add_developer_key("10000000000042", "key-secret")
    connection = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url=canvas_url,
        access_token=fake.issue_token(expires_in=3600),
        client_id="10000000000042",
        client_secret="key-secret",
        refresh_token=refresh_token,
        expires_at=datetime.now(timezone.utc) + timedelta(hours=1),
        jwks_url=f"{canvas_url}/live_events/jwks",
    )
    connection.webhook_secret_sha256 = secret_digest(SECRET)
    db.add(
        Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id=str(COURSE_ID),
            name="Safe travel",
            description="Plans and checks safe travel in the field.",
            criteria_narrative="Complete every module requirement of the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()
    return connection, refresh_token


def _url(bridge_url, connection, token=SECRET):
    url = f"{bridge_url}/webhooks/canvas/{connection.public_id}"
    return f"{url}?token={token}" if token else url


def _run_pending(app, order=1) -> list[str]:
    """Run every pending evaluation message in-process; `order` -1 runs newest first."""
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        ids = session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.kind == "fact.evaluate")
            .where(OutboxMessage.status != "done")
            .order_by(OutboxMessage.id)
        ).all()
    with app.app_context():
        return [run_outbox_message(message_id) for message_id in ids[::order]]


def _credentials(db):
    db.expire_all()
    return db.scalars(select(Credential)).all()


def test_completed_three_times_awards_once(app, db, fake, canvas, bridge_url):
    """course_completed three times gives one award, dated from the first completed_at."""
    connection, _ = canvas
    fake.complete(COURSE_ID, 123, FIRST)
    url = _url(bridge_url, connection)
    statuses = []
    for minutes in (0, 5, 5):
        event = fake.live_event("course_completed", COURSE_ID, 123)
        completed_at = FIRST + timedelta(minutes=minutes)
        event["body"]["progress"]["completed_at"] = completed_at.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        statuses.append(fake.send_live_event(url, event).status_code)
    # Canvas now reports the later time, as after a re-evaluation of the modules.
    fake.courses[COURSE_ID].students[123].completed_at = FIRST + timedelta(minutes=5)

    results = _run_pending(app, order=-1)

    credentials = _credentials(db)
    assert statuses == [202, 202, 200]
    assert results == ["done", "done"]
    assert len(credentials) == 1
    assert credentials[0].awarded_at == FIRST


def test_signed_rotated_key_accepted(app, db, fake, canvas, bridge_url):
    """A JWT event with a freshly rotated key is accepted after one JWKS refetch."""
    connection, _ = canvas
    fake.complete(COURSE_ID, 123, FIRST)
    fake.complete(COURSE_ID, 124, FIRST)
    url = _url(bridge_url, connection, token=None)
    first = fake.send_live_event(
        url, fake.live_event("course_completed", COURSE_ID, 123), signed=True
    )
    fake.rotate_signing_key()

    rotated = fake.send_live_event(
        url,
        fake.live_event("course_completed", COURSE_ID, 124, global_ids=True),
        signed=True,
    )

    assert first.status_code == 202
    assert rotated.status_code == 202
    assert fake.jwks_requests == 2
    _run_pending(app)
    assert len(_credentials(db)) == 2


def test_forged_signature_refused_401(app, db, fake, canvas, bridge_url):
    """A JWT signed with a key Canvas never published is refused with 401."""
    from lti_tool.demo.peers.canvas import FakeCanvas

    connection, _ = canvas
    forger = FakeCanvas()
    forger.signing_keys[-1].kid = fake.signing_keys[-1].kid
    fake.complete(COURSE_ID, 123, FIRST)
    event = fake.live_event("course_completed", COURSE_ID, 123)

    response = requests.post(
        _url(bridge_url, connection, token=None),
        data=forger.sign(event),
        headers={"Content-Type": "application/jwt"},
        timeout=10,
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert db.scalars(select(CompletionFactRecord)).all() == []


@pytest.mark.parametrize("token", [None, "wrong-secret"])
def test_json_without_secret_refused(fake, canvas, bridge_url, token):
    """An unsigned JSON event without the right ?token= is refused with 401."""
    connection, _ = canvas
    fake.complete(COURSE_ID, 123, FIRST)

    response = fake.send_live_event(
        _url(bridge_url, connection, token=token),
        fake.live_event("course_completed", COURSE_ID, 123),
    )

    assert response.status_code == 401
    assert "token" in response.json()["message"]


def test_bad_bodies_get_400(fake, canvas, bridge_url):
    """HTML, an unknown shard and an error object each get a 400 naming the problem."""
    connection, _ = canvas
    url = _url(bridge_url, connection)
    fake.complete(COURSE_ID, 123, FIRST)
    foreign = fake.live_event("course_completed", COURSE_ID, 123)
    foreign["body"]["user"]["id"] = "30000000000123"
    broken = fake.live_event("course_completed", COURSE_ID, 123)
    broken["body"]["progress"] = {"error": {"message": "not module based"}}

    html = requests.post(
        url, data="<html>hi</html>", headers={"Content-Type": "text/html"}, timeout=10
    )
    shard = fake.send_live_event(url, foreign)
    error_object = fake.send_live_event(url, broken)

    assert html.status_code == 400
    assert html.json()["error"] == "invalid_json"
    assert shard.status_code == 400
    assert "shard 3" in shard.json()["message"]
    assert error_object.status_code == 400
    assert "error object" in error_object.json()["message"]


def test_partial_progress_ignored(fake, canvas, bridge_url):
    """A course_progress with requirements left is accepted and skipped."""
    connection, _ = canvas

    response = fake.send_live_event(
        _url(bridge_url, connection), fake.live_event("course_progress", COURSE_ID, 124)
    )

    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "event_name": "course_progress",
        "reason": "progress_incomplete",
    }


def test_unknown_connection_404(fake, bridge_url):
    """An event for a connection that does not exist gets 404."""
    response = requests.post(f"{bridge_url}/webhooks/canvas/nope", json={}, timeout=10)

    assert response.status_code == 404


def test_revoked_token_marks_connection_broken(app, db, fake, canvas, bridge_url):
    """A 401 whose refresh also fails marks the connection broken and retries later."""
    connection, refresh_token = canvas
    fake.complete(COURSE_ID, 123, FIRST)
    fake.send_live_event(
        _url(bridge_url, connection),
        fake.live_event("course_completed", COURSE_ID, 123),
    )
    fake.revoke_refresh_token(refresh_token)
    fake.expire_all_tokens()

    results = _run_pending(app)

    db.expire_all()
    db.refresh(connection)
    message = db.scalars(select(OutboxMessage)).one()
    assert results == ["failed"]
    assert connection.state == ConnectionState.BROKEN.value
    assert "connect Canvas again" in connection.state_detail
    assert message.status != "dead"
    assert _credentials(db) == []


def test_course_without_requirements_waits_for_person(
    app, db, fake, canvas, bridge_url
):
    """The 400 progress response leaves the message for a person, with the fix."""
    connection, _ = canvas
    fake.courses[COURSE_ID].requirement_types = ()
    fake.courses[COURSE_ID].students[123].completed_at = FIRST
    event = fake.live_event("course_completed", COURSE_ID, 123)
    event["body"]["progress"].update(requirement_count=1, requirement_completed_count=1)
    event["body"]["progress"]["completed_at"] = "2025-01-01T12:00:00Z"
    fake.send_live_event(_url(bridge_url, connection), event)

    _run_pending(app)

    message = db.scalars(select(OutboxMessage)).one()
    assert "add completion requirements" in message.last_error
    assert "grade rules" in message.last_error
