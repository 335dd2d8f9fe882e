"""Disconnecting an LMS connection: secrets wiped, history kept, webhook events
rejected with 410, polls, re-reads and evaluations skipped without dead letters,
and the `connection disconnect` command with its confirmation and errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import (
    Achievement,
    CompletionFactRecord,
    Credential,
    FactOutcome,
    Learner,
    Provider,
)
from badge_engine.outbox import OutboxMessage, OutboxStatus, enqueue
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.canvas.connection import connect_canvas
from connectors.canvas.models import CanvasCredential
from connectors.models import ConnectionState, LmsConnection, LmsKind
from lti_tool.accounts import AuditEvent
from lti_tool.backfill import BackfillJob, BackfillStatus
from lti_tool.cli import main
from lti_tool.operations import ActionError
from lti_tool.operations.lms import disconnect_connection
from lti_tool.pipeline import REREAD_MOODLE_LEARNER, record_fact
from lti_tool.tasks import (
    poll_moodle_connection,
    polled_connection_ids,
    run_outbox_message,
)
from lti_tool.views.webhooks import secret_digest
from lti_tool.webhook_connections import WebhookConnections

FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "disconnect-webhook-secret"
ACTOR = "os:tester"


@pytest.fixture
def seeded(app, db):
    """Providers "alpha" (a Moodle and a Canvas connection, a badge, a learner and
    a credential) and "beta" (one Moodle connection)."""
    vault = app.extensions["hpass"].vault
    alpha = Provider(slug="alpha", name="Alpha", url="https://alpha.invalid")
    beta = Provider(slug="beta", name="Beta", url="https://beta.invalid")
    db.add_all([alpha, beta])
    db.flush()

    moodle = LmsConnection(
        provider_id=alpha.id,
        kind=LmsKind.MOODLE.value,
        name="Alpha Moodle",
        base_url="http://127.0.0.1:9",
        api_token_encrypted=vault.encrypt("alpha-token"),
        webhook_secret_sha256=secret_digest(SECRET),
    )
    other = LmsConnection(
        provider_id=beta.id,
        kind=LmsKind.MOODLE.value,
        name="Beta Moodle",
        base_url="http://127.0.0.1:9",
        api_token_encrypted=vault.encrypt("beta-token"),
        webhook_secret_sha256=secret_digest(SECRET),
    )
    db.add_all([moodle, other])
    db.flush()

    canvas = connect_canvas(
        db,
        vault,
        provider_id=alpha.id,
        name="Alpha Canvas",
        base_url="http://127.0.0.1:8",
        access_token="canvas-token",
        jwks_url="http://127.0.0.1:8/jwks",
    )
    canvas.webhook_secret_sha256 = secret_digest(SECRET)

    achievement = Achievement(
        provider_id=alpha.id,
        lms_connection_id=moodle.id,
        lms_course_id="101",
        name="Badge",
        description="A badge.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    learner = Learner(provider_id=alpha.id, lms_connection_id=moodle.id, lms_user_id="42")
    db.add_all([achievement, learner])
    db.flush()
    db.add(
        Credential(
            provider_id=alpha.id,
            achievement_id=achievement.id,
            learner_id=learner.id,
            live_key=f"{achievement.id}:{learner.id}",
            awarded_at=datetime(2026, 3, 14, tzinfo=timezone.utc),
            document={"type": ["VerifiableCredential"]},
        )
    )
    db.commit()
    return {"alpha": alpha, "beta": beta, "moodle": moodle, "canvas": canvas,
            "other": other}


def _fact(connection: LmsConnection) -> CompletionFact:
    return CompletionFact(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        lms_user_id="42",
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
        source=FactSource.EVENT,
    )


def _moodle_event() -> dict:
    body = json.loads((FIXTURES / "moodle" / "event_course_completed.json").read_text())
    body["token"] = SECRET
    return body


def _canvas_event() -> dict:
    return json.loads(
        (FIXTURES / "canvas" / "live_event_course_completed.json").read_text()
    )


def _fact_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(CompletionFactRecord))


def test_disconnect_wipes_secrets_keeps_history(app, db, seeded):
    """The row, its learner and credential stay, and the token, digest and site
    key are cleared."""
    moodle = seeded["moodle"]

    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    db.expire_all()
    stored = db.get(LmsConnection, moodle.id)
    assert stored.state == ConnectionState.DISCONNECTED.value
    assert stored.disconnected_by == ACTOR
    assert stored.disconnected_at is not None
    assert stored.api_token_encrypted is None
    assert stored.webhook_secret_sha256 is None
    assert stored.site_key is None
    assert stored.base_url == "http://127.0.0.1:9"
    assert db.scalar(select(func.count()).select_from(Credential)) == 1
    assert db.scalar(select(func.count()).select_from(Learner)) == 1
    assert db.scalar(select(func.count()).select_from(Achievement)) == 1
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "lms_connection.disconnected")
    )
    assert event.provider_id == seeded["alpha"].id
    assert event.actor == ACTOR
    assert event.target == f"lms_connection:{moodle.public_id}"
    assert db.get(LmsConnection, seeded["other"].id).state == "ok"


def test_disconnect_canvas_deletes_credentials(app, db, seeded):
    """A Canvas connection's REST credentials are deleted with it."""
    canvas = seeded["canvas"]

    disconnect_connection(db, ACTOR, canvas)
    db.commit()

    remaining = db.scalar(
        select(func.count()).select_from(CanvasCredential).where(
            CanvasCredential.lms_connection_id == canvas.id
        )
    )
    assert remaining == 0


def test_disconnect_twice_rejected(app, db, seeded):
    """A second disconnect raises and writes no second audit event."""
    moodle = seeded["moodle"]
    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    with pytest.raises(ActionError) as raised:
        disconnect_connection(db, "os:other", moodle)
    db.rollback()

    assert raised.value.code == "connection_disconnected"
    assert "was disconnected" in raised.value.message
    db.expire_all()
    assert db.get(LmsConnection, moodle.id).disconnected_by == ACTOR
    events = db.scalar(
        select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "lms_connection.disconnected"
        )
    )
    assert events == 1


def test_concurrent_disconnect_records_once(app, db, seeded):
    """Of two sessions that both read the connection as OK, the second to write
    is rejected, so one audit event and the first actor stay."""
    bridge = app.extensions["hpass"]
    moodle_id = seeded["moodle"].id
    with bridge.session() as first, bridge.session() as second:
        first_copy = first.get(LmsConnection, moodle_id)
        second_copy = second.get(LmsConnection, moodle_id)
        assert second_copy.state == "ok"
        disconnect_connection(first, "os:first", first_copy)
        first.commit()

        with pytest.raises(ActionError) as raised:
            disconnect_connection(second, "os:second", second_copy)
        second.rollback()

    assert raised.value.code == "connection_disconnected"
    db.expire_all()
    assert db.get(LmsConnection, moodle_id).disconnected_by == "os:first"
    events = db.scalar(
        select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "lms_connection.disconnected"
        )
    )
    assert events == 1


def test_disconnect_cancels_active_backfill(app, db, seeded):
    """A pending backfill of the connection is cancelled."""
    moodle = seeded["moodle"]
    job = BackfillJob(
        provider_id=moodle.provider_id,
        lms_connection_id=moodle.id,
        lms_course_id="101",
        achievement_ids=[],
        trigger="manual",
    )
    db.add(job)
    db.commit()

    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    db.expire_all()
    assert db.get(BackfillJob, job.id).status == BackfillStatus.CANCELLED.value


def test_moodle_event_after_disconnect_gone(client, db, seeded):
    """A Moodle event for a disconnected connection gets 410 saying what to do."""
    moodle = seeded["moodle"]
    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    response = client.post(f"/webhooks/moodle/{moodle.public_id}", json=_moodle_event())
    xapi = client.post(
        f"/webhooks/moodle/{moodle.public_id}/xapi/statements", json={"token": SECRET}
    )

    assert response.status_code == 410
    assert response.json["error"] == "connection_disconnected"
    assert "was disconnected in the HPass bridge" in response.json["message"]
    assert "remove this webhook in Moodle" in response.json["message"]
    assert xapi.status_code == 410
    assert _fact_count(db) == 0


@pytest.mark.parametrize("signed", [False, True], ids=["json", "jwt"])
def test_canvas_event_after_disconnect_gone(client, db, seeded, signed):
    """JSON and signed Canvas Live Events for a disconnected connection get 410."""
    canvas = seeded["canvas"]
    disconnect_connection(db, ACTOR, canvas)
    db.commit()
    url = f"/webhooks/canvas/{canvas.public_id}"

    if signed:
        response = client.post(
            url, data=b"eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            content_type="application/jwt",
        )
    else:
        response = client.post(f"{url}?token={SECRET}", json=_canvas_event())

    assert response.status_code == 410
    assert "Live Events subscription in Canvas" in response.json["message"]
    assert _fact_count(db) == 0


def test_webhook_cache_sees_disconnect(app, db, seeded):
    """A disconnect committed in this process clears the cache at once, and one
    from another process is seen after the cache's max age."""
    bridge = app.extensions["hpass"]
    now = [1000.0]
    cache = WebhookConnections(bridge.session_factory, clock=lambda: now[0], max_age=5.0)
    moodle, other = seeded["moodle"], seeded["other"]
    assert cache.get(moodle.public_id, "moodle").disconnected is False
    assert cache.get(other.public_id, "moodle").disconnected is False

    with bridge.session() as session:
        disconnect_connection(session, ACTOR, session.get(LmsConnection, moodle.id))
        session.commit()
    in_process = cache.get(moodle.public_id, "moodle")
    # That commit cleared every entry, so this caches the other one again.
    cache.get(other.public_id, "moodle")
    # A session from a factory the cache does not listen on plays the part of
    # another process, such as a CLI command.
    with sessionmaker(bridge.engine)() as session:
        disconnect_connection(session, ACTOR, session.get(LmsConnection, other.id))
        session.commit()
    stale = cache.get(other.public_id, "moodle")
    now[0] += 5.1
    fresh = cache.get(other.public_id, "moodle")

    assert in_process.disconnected is True
    assert in_process.webhook_secret_sha256 is None
    assert stale.disconnected is False
    assert fresh.disconnected is True


def test_stale_cached_event_never_awards(app, client, db, seeded):
    """An event accepted from a stale cache entry is stored, and its evaluation
    finishes as not confirmed without reading the LMS or leaving a dead letter."""
    moodle = seeded["moodle"]
    record, message = record_fact(db, _fact(moodle))
    db.commit()
    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    with app.app_context():
        outcome = run_outbox_message.run(message.id)

    assert outcome == "done"
    db.expire_all()
    fact = db.get(CompletionFactRecord, record.id)
    assert fact.outcome == FactOutcome.NOT_CONFIRMED.value
    assert "was disconnected" in fact.outcome_detail
    assert db.get(OutboxMessage, message.id).status == OutboxStatus.DONE.value
    assert db.get(LmsConnection, moodle.id).state == "disconnected"


def test_reread_skipped_after_disconnect(app, db, seeded):
    """A queued Moodle re-read of a disconnected connection finishes doing nothing."""
    moodle = seeded["moodle"]
    message = enqueue(
        db,
        provider_id=moodle.provider_id,
        kind=REREAD_MOODLE_LEARNER,
        payload={"connection_id": moodle.id, "course_id": "101", "user_id": "42",
                 "reason": "user_graded"},
        idempotency_key="reread-disconnected",
    )
    db.commit()
    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    with app.app_context():
        outcome = run_outbox_message.run(message.id)

    assert outcome == "done"
    db.expire_all()
    assert db.get(OutboxMessage, message.id).status == OutboxStatus.DONE.value
    assert db.get(LmsConnection, moodle.id).state == "disconnected"
    assert _fact_count(db) == 0


def test_polls_skip_disconnected(app, db, seeded):
    """Polls neither start for nor run on a disconnected connection, and leave its
    state as it is."""
    moodle = seeded["moodle"]
    disconnect_connection(db, ACTOR, moodle)
    db.commit()

    with app.app_context():
        ids = polled_connection_ids(LmsKind.MOODLE.value)
        outcome = poll_moodle_connection.run(moodle.id)

    assert moodle.id not in ids
    assert seeded["other"].id in ids
    assert outcome == "skipped"
    db.expire_all()
    assert db.get(LmsConnection, moodle.id).state == "disconnected"
    dead = db.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.DEAD.value
        )
    )
    assert dead == 0


@pytest.fixture
def runner(app, settings, monkeypatch):
    """A CLI runner whose commands open the app's instance folder and database."""
    monkeypatch.setenv("HPASS_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("HPASS_PUBLIC_BASE_URL", settings.public_base_url)
    monkeypatch.setenv("HPASS_LOOPBACK_DEV", "1")
    monkeypatch.delenv("HPASS_DATABASE_URL", raising=False)
    return app.test_cli_runner()


def _invoke(runner, *arguments, input=None):
    return runner.invoke(main, ["connection", "disconnect", *arguments], input=input)


def test_cli_disconnect_with_yes(runner, db, seeded):
    """--yes --json disconnects and prints the connection in its new state."""
    moodle = seeded["moodle"]

    result = _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] == "disconnected"
    assert body["connection"]["state"] == "disconnected"
    assert body["connection"]["disconnected_by"].startswith("os:")
    db.expire_all()
    assert db.get(LmsConnection, moodle.id).disconnected


def test_cli_disconnect_asks_first(runner, db, seeded):
    """Without --yes the command prompts, and only "y" disconnects."""
    moodle = seeded["moodle"]

    declined = _invoke(runner, moodle.public_id, "--provider", "alpha", input="n\n")
    no_answer = _invoke(runner, moodle.public_id, "--provider", "alpha", input="")
    db.expire_all()
    state_after_no = db.get(LmsConnection, moodle.id).state
    accepted = _invoke(runner, moodle.public_id, "--provider", "alpha", input="y\n")

    assert declined.exit_code == 1
    assert "not disconnected because the confirmation was not given" in declined.output
    assert no_answer.exit_code == 1
    assert state_after_no == "ok"
    assert accepted.exit_code == 0, accepted.output
    assert "Alpha Moodle" in accepted.output
    assert "Remove its webhook in the LMS" in accepted.output
    db.expire_all()
    assert db.get(LmsConnection, moodle.id).disconnected


@pytest.mark.parametrize(
    ("target", "provider", "exit_code", "error"),
    [
        ("other", "alpha", 2, "connection_not_found"),
        ("unknown", "alpha", 2, "connection_not_found"),
        ("moodle", "nobody", 2, "provider_not_found"),
    ],
    ids=["other-provider", "unknown-id", "unknown-provider"],
)
def test_cli_disconnect_bad_input(runner, db, seeded, target, provider, exit_code, error):
    """Another provider's id, an unknown id or provider change nothing."""
    public_id = seeded[target].public_id if target in seeded else "no-such-id"

    result = _invoke(runner, public_id, "--provider", provider, "--yes", "--json")

    assert result.exit_code == exit_code
    assert json.loads(result.stdout)["error"] == error
    db.expire_all()
    states = db.scalars(select(LmsConnection.state)).all()
    assert set(states) == {"ok"}


def test_cli_disconnect_already_disconnected(runner, db, seeded):
    """A second disconnect exits 1 with a message naming when it happened."""
    moodle = seeded["moodle"]
    _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes")

    again = _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes", "--json")

    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"] == "connection_disconnected"


def test_cli_test_disconnected_rejected(runner, db, seeded):
    """`connection test` of a disconnected connection says so instead of failing
    on its missing token."""
    moodle = seeded["moodle"]
    _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes")

    result = runner.invoke(main, ["connection", "test", moodle.public_id, "--json"])

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "connection_disconnected"
