"""`/metrics` serves the pipeline's figures in Prometheus text format."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import enqueue
from lti_tool import intake
from lti_tool.app import create_app
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.proxy import WAITRESS_OPTIONS
from lti_tool.schema import upgrade
from tests.support.seed import add_moodle_connection, add_provider


def test_metrics_lists_pipeline_figures(app, client, db):
    """A scrape shows accepted events, awards, deliveries and queue lag."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:1", "t")
    db.add(
        CompletionFactRecord(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id="101",
            lms_user_id="7",
            state="complete",
            occurred_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
            source="event",
            dedupe_key="k",
        )
    )
    enqueue(
        db,
        provider_id=provider.id,
        kind="fact.evaluate",
        payload={},
        idempotency_key="x",
    )
    db.commit()

    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert (
        f'hpass_events_accepted_total{{provider_id="{provider.id}",source="event"}} 1.0'
        in text
    )
    assert "# TYPE hpass_awards_issued_total counter" in text
    assert 'hpass_outbox_messages{kind="fact.evaluate",status="pending"} 1.0' in text
    assert "hpass_queue_lag_seconds_count 1.0" in text
    assert "hpass_event_to_award_seconds_bucket" in text


def test_metrics_rejects_remote_without_token(client):
    """A scrape from another machine without a configured token gets a clear 403."""
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"})

    assert response.status_code == 403
    assert "HPASS_METRICS_TOKEN" in response.get_data(as_text=True)


def test_metrics_token_required_when_set(client, monkeypatch):
    """With a token configured, a scrape needs the matching bearer token."""
    monkeypatch.setenv("HPASS_METRICS_TOKEN", "scrape-secret")

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_metrics_open_to_plain_loopback(client):
    """A scrape from loopback with no forwarding headers needs no token."""
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Real-IP", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Forwarded-Host", "badges.example.org"),
        ("X-Forwarded-Proto", "https"),
    ],
)
def test_metrics_forwarded_loopback_rejected(client, header, value):
    """A loopback peer passing on another client's request is not a loopback scrape."""
    response = client.get(
        "/metrics",
        headers={header: value},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert header in text
    assert "HPASS_METRICS_TOKEN" in text
    assert "HPASS_TRUSTED_PROXIES" in text


def test_metrics_forwarded_loopback_with_token(client, monkeypatch):
    """With a token configured, a scrape through a proxy works with the token only."""
    monkeypatch.setenv("HPASS_METRICS_TOKEN", "scrape-secret")
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    loopback = {"REMOTE_ADDR": "127.0.0.1"}

    missing = client.get("/metrics", headers=forwarded, environ_base=loopback)
    right = client.get(
        "/metrics",
        headers={**forwarded, "Authorization": "Bearer scrape-secret"},
        environ_base=loopback,
    )

    assert missing.status_code == 401
    assert "HPASS_METRICS_TOKEN" in missing.get_data(as_text=True)
    assert right.status_code == 200


@pytest.fixture
def proxied_client(settings):
    """A client of an app that trusts a reverse proxy on 127.0.0.1."""
    settings.trusted_proxies = ["127.0.0.1/32"]
    upgrade(settings.database_url)
    app = create_app(settings)
    yield app.test_client()
    intake.stop(app)
    app.extensions["hpass"].engine.dispose()


@pytest.mark.parametrize(
    ("peer", "headers", "status"),
    [
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, 200),
        ("127.0.0.1", {"X-Forwarded-For": "::1", "X-Forwarded-Proto": "https"}, 200),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 403),
        # Only the last entry, the one the proxy wrote, is the client.
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}, 200),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}, 403),
        # A trusted proxy that names its client in X-Real-IP only.
        ("127.0.0.1", {"X-Real-IP": "127.0.0.1"}, 403),
        ("127.0.0.1", {}, 200),
        # A loopback client of a peer outside HPASS_TRUSTED_PROXIES.
        ("::1", {"X-Forwarded-For": "127.0.0.1"}, 403),
    ],
    ids=[
        "loopback-client",
        "ipv6-loopback-client",
        "remote-client",
        "last-entry-loopback",
        "last-entry-remote",
        "real-ip-only",
        "proxy-host-direct",
        "untrusted-peer",
    ],
)
def test_metrics_behind_trusted_proxy(proxied_client, peer, headers, status):
    """Behind a trusted proxy the forwarded client address decides."""
    response = proxied_client.get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": peer}
    )

    assert response.status_code == status


def test_metrics_served_forwarded_rejected(app):
    """Over real HTTP, a scrape relayed by a same-host proxy needs the token.

    waitress runs with the options `hpass-bridge run` uses, which pass the
    forwarding headers on to the app.
    """
    server = serve_in_thread(app, **WAITRESS_OPTIONS)
    try:
        relayed = requests.get(
            f"{server.url}/metrics",
            headers={"X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
        direct = requests.get(f"{server.url}/metrics", timeout=10)
    finally:
        server.stop()

    assert relayed.status_code == 403
    assert "HPASS_METRICS_TOKEN" in relayed.text
    assert direct.status_code == 200


@pytest.fixture
def production_app(settings):
    """An app outside loopback development mode, as a deployed bridge runs."""
    settings.loopback_dev = False
    settings.trusted_proxies = ["127.0.0.1/32"]
    upgrade(settings.database_url)
    app = create_app(settings)
    yield app
    intake.stop(app)
    app.extensions["hpass"].engine.dispose()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Envoy-External-Address": "203.0.113.9"},
        {"X-ProxyUser-Ip": "203.0.113.9"},
        {"X-Remote-Addr": "203.0.113.9"},
        {"X-Forwarded-For": "127.0.0.1"},
    ],
    ids=["no-header", "envoy", "proxyuser", "remote-addr", "trusted-proxy-loopback"],
)
def test_metrics_without_token_rejected(production_app, headers):
    """Outside loopback development mode, no loopback scrape passes without a token."""
    client = production_app.test_client()

    response = client.get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "HPASS_METRICS_TOKEN is not set" in text
    assert "Authorization: Bearer" in text


def test_metrics_token_works_outside_dev(production_app, monkeypatch):
    """Outside loopback development mode a scrape with the token is served."""
    monkeypatch.setenv("HPASS_METRICS_TOKEN", "scrape-secret")
    client = production_app.test_client()
    loopback = {"REMOTE_ADDR": "127.0.0.1"}

    missing = client.get("/metrics", environ_base=loopback)
    right = client.get(
        "/metrics",
        headers={"Authorization": "Bearer scrape-secret"},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )

    assert missing.status_code == 401
    assert right.status_code == 200
    assert "hpass_events_accepted_total" in right.text


def test_metrics_served_needs_token_outside_dev(production_app, monkeypatch):
    """Over real HTTP from loopback, a deployed bridge serves metrics with the token
    only, whatever headers a proxy adds."""
    server = serve_in_thread(production_app, **WAITRESS_OPTIONS)
    try:
        direct = requests.get(f"{server.url}/metrics", timeout=10)
        relayed = requests.get(
            f"{server.url}/metrics",
            headers={"X-Envoy-External-Address": "203.0.113.9"},
            timeout=10,
        )
        monkeypatch.setenv("HPASS_METRICS_TOKEN", "scrape-secret")
        with_token = requests.get(
            f"{server.url}/metrics",
            headers={"Authorization": "Bearer scrape-secret"},
            timeout=10,
        )
    finally:
        server.stop()

    assert direct.status_code == 403
    assert "HPASS_METRICS_TOKEN" in direct.text
    assert relayed.status_code == 403
    assert with_token.status_code == 200
