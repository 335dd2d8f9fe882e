"""The per-process cache of webhook connections: hits, invalidation and its time bound."""

from __future__ import annotations

from sqlalchemy import update

from badge_engine.models import Provider
from connectors.models import LmsConnection, LmsKind
from lti_tool.views.webhooks import secret_digest
from lti_tool.webhook_connections import WebhookConnections


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _connection(db, secret: str = "first-secret") -> LmsConnection:
    provider = Provider(slug="cache", name="Cache", url="https://cache.invalid")
    db.add(provider)
    db.flush()
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Moodle",
        base_url="http://127.0.0.1:9",
        webhook_secret_sha256=secret_digest(secret),
    )
    db.add(connection)
    db.commit()
    return connection


def test_commit_in_process_clears_cache(app, db):
    """A new webhook secret committed through the bridge's sessions is seen at once."""
    bridge = app.extensions["hpass"]
    cache = WebhookConnections(bridge.session_factory, clock=FakeClock())
    connection = _connection(db)
    cached = cache.get(connection.public_id, "moodle")

    # The listeners apply to sessions opened after the cache was made, as in the app.
    with bridge.session() as session:
        session.get(LmsConnection, connection.id).webhook_secret_sha256 = secret_digest(
            "second-secret"
        )
        session.commit()

    assert cached.webhook_secret_sha256 == secret_digest("first-secret")
    fresh = cache.get(connection.public_id, "moodle")
    assert fresh.webhook_secret_sha256 == secret_digest("second-secret")


def test_outside_change_seen_after_max_age(app, db):
    """A change from another process is served stale for at most max_age seconds."""
    bridge = app.extensions["hpass"]
    clock = FakeClock()
    cache = WebhookConnections(bridge.session_factory, clock=clock, max_age=5.0)
    connection = _connection(db)
    cache.get(connection.public_id, "moodle")

    # A plain UPDATE on the engine, as another process would write it.
    with bridge.engine.begin() as outside:
        outside.execute(
            update(LmsConnection)
            .where(LmsConnection.id == connection.id)
            .values(webhook_secret_sha256=secret_digest("rotated"))
        )
    clock.now += 4.9
    stale = cache.get(connection.public_id, "moodle")
    clock.now += 0.2
    fresh = cache.get(connection.public_id, "moodle")

    assert stale.webhook_secret_sha256 == secret_digest("first-secret")
    assert fresh.webhook_secret_sha256 == secret_digest("rotated")


def test_unknown_connection_not_cached(app, db):
    """A connection created after a miss is found on the next request."""
    bridge = app.extensions["hpass"]
    cache = WebhookConnections(bridge.session_factory, clock=FakeClock())

    assert cache.get("not-yet", "moodle") is None
    connection = _connection(db)
    assert cache.get(connection.public_id, "moodle") is not None
    assert cache.get(connection.public_id, "canvas") is None


def test_rotated_secret_rejected_at_once(client, db):
    """After rotation in this process, the old webhook secret gets 401 at once."""
    connection = _connection(db, secret="old-secret")
    url = f"/webhooks/moodle/{connection.public_id}"
    event = {"eventname": "\\core\\event\\badge_awarded", "token": "old-secret"}
    assert client.post(url, json=event).status_code == 202

    connection.webhook_secret_sha256 = secret_digest("new-secret")
    db.commit()

    assert client.post(url, json=event).status_code == 401
    assert client.post(url, json={**event, "token": "new-secret"}).status_code == 202
