"""`/metrics` serves the pipeline's figures in Prometheus text format."""

from __future__ import annotations

from datetime import datetime, timezone

from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import enqueue
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
