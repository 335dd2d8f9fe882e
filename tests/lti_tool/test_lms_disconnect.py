"""Disconnecting an LMS connection: secrets wiped, history kept, webhook events
rejected with 410, polls, re-reads and evaluations skipped without dead letters,
the `connection disconnect` command with its confirmation and errors, and the
counts of the badges and LTI registrations that stay on a disconnected connection."""

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
from lti_tool.lti.registrations import create_registration
from lti_tool.operations.lms import (
    ConnectionUsage,
    connection_usage,
    disconnect_connection,
    disconnect_warning,
)
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
    learner = Learner(
        provider_id=alpha.id, lms_connection_id=moodle.id, lms_user_id="42"
    )
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
    return {
        "alpha": alpha,
        "beta": beta,
        "moodle": moodle,
        "canvas": canvas,
        "other": other,
    }


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
        select(func.count())
        .select_from(CanvasCredential)
        .where(CanvasCredential.lms_connection_id == canvas.id)
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
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "lms_connection.disconnected")
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
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "lms_connection.disconnected")
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
            url,
            data=b"eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
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
    cache = WebhookConnections(
        bridge.session_factory, clock=lambda: now[0], max_age=5.0
    )
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
        payload={
            "connection_id": moodle.id,
            "course_id": "101",
            "user_id": "42",
            "reason": "user_graded",
        },
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
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD.value)
    )
    assert dead == 0


@pytest.fixture
def runner(app, settings, monkeypatch):
    """A CLI runner whose commands open the app's instance folder and database."""
    monkeypatch.setenv("HPASS_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("HPASS_PUBLIC_BASE_URL", settings.public_base_url)
    monkeypatch.setenv("HPASS_LOOPBACK_DEV", "1")
    # The app's own keys, because the commands create no key files.
    monkeypatch.setenv("HPASS_SECRET_KEY", settings.secret_key.decode())
    monkeypatch.setenv("HPASS_ENCRYPTION_KEYS", settings.encryption_keys[0].decode())
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
def test_cli_disconnect_bad_input(
    runner, db, seeded, target, provider, exit_code, error
):
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


def _badge(
    provider: Provider, connection: LmsConnection, course_id: str
) -> Achievement:
    return Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=course_id,
        name=f"Badge of course {course_id}",
        description="A badge.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )


def _registration(app, db, provider: Provider, connection: LmsConnection, name: str):
    return create_registration(
        db,
        app.extensions["hpass"].vault,
        provider,
        issuer=f"https://{name}.example.org",
        client_id=f"client-{name}",
        auth_login_url=f"https://{name}.example.org/auth",
        key_set_url=f"https://{name}.example.org/jwks",
        deployment_ids=("1",),
        lms_connection_id=connection.id,
    )


@pytest.fixture
def used(app, db, seeded):
    """Alpha's Moodle connection with 3 badges in 2 courses and 2 LTI registrations.

    Beta has a badge and a registration on its own connection, and one badge row
    that names alpha's connection id, which no provider-scoped count may include.
    """
    alpha, beta = seeded["alpha"], seeded["beta"]
    moodle, other = seeded["moodle"], seeded["other"]
    db.add_all(
        [
            _badge(alpha, moodle, "101"),
            _badge(alpha, moodle, "202"),
            _badge(alpha, seeded["canvas"], "303"),
            _badge(beta, other, "101"),
            _badge(beta, moodle, "404"),
        ]
    )
    _registration(app, db, alpha, moodle, "alpha-one")
    _registration(app, db, alpha, moodle, "alpha-two")
    _registration(app, db, beta, other, "beta-one")
    db.commit()
    return seeded


def test_usage_counts_provider_rows(db, used):
    """Badges, their distinct courses and registrations of the connection count,
    and rows of another connection or provider do not."""
    usage = connection_usage(db, used["moodle"])

    assert usage.achievements == 3
    assert usage.courses == 2
    assert usage.registrations == 2
    assert usage.as_dict() == {
        "achievements": 3,
        "courses": 2,
        "lti_registrations": 2,
    }


def test_usage_counts_zero(db, used):
    """A connection without badges or registrations counts zero everywhere."""
    fresh = LmsConnection(
        provider_id=used["alpha"].id,
        kind=LmsKind.MOODLE.value,
        name="Empty Moodle",
        base_url="http://127.0.0.1:7",
    )
    db.add(fresh)
    db.commit()

    usage = connection_usage(db, fresh)

    assert usage.as_dict() == {"achievements": 0, "courses": 0, "lti_registrations": 0}


def test_usage_of_other_provider(db, used):
    """Beta's connection counts only beta's badge and registration."""
    usage = connection_usage(db, used["other"])

    assert usage.achievements == 1
    assert usage.courses == 1
    assert usage.registrations == 1


def test_disconnect_returns_and_audits_usage(db, used):
    """The disconnect returns the counts and records them in the audit event."""
    usage = disconnect_connection(db, ACTOR, used["moodle"])
    db.commit()

    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "lms_connection.disconnected")
    )
    assert usage.achievements == 3
    assert event.detail["achievements"] == 3
    assert event.detail["courses"] == 2
    assert event.detail["lti_registrations"] == 2


def test_warning_names_counts_and_consequences():
    """The prompt's warning counts the rows, says the badges can no longer be
    earned, that credentials stay valid and what to do."""
    text = "\n".join(disconnect_warning(ConnectionUsage(3, 2, 1)))

    assert "This connection has 3 badges in 2 courses and 1 LTI registration." in text
    assert "these badges can no longer be earned" in text
    assert "Credentials already issued stay valid." in text
    assert "does not take over these badges or LTI registrations" in text
    assert "register the LTI platform with the new connection" in text
    assert "add the badges again in each course" in text


def test_warning_singular_and_zero():
    """One badge in one course reads in the singular, and an unused connection
    gets no advice about badges."""
    single = "\n".join(disconnect_warning(ConnectionUsage(1, 1, 0)))
    unused = "\n".join(disconnect_warning(ConnectionUsage(0, 0, 0)))

    assert "1 badge in 1 course and no LTI registration." in single
    assert "This connection has no badge and no LTI registration." in unused
    assert "can no longer be earned" not in unused
    assert "does not take over" not in unused
    assert "Credentials already issued stay valid." in unused


def test_cli_prompt_shows_usage(runner, db, used):
    """The confirmation prompt counts the badges, courses and registrations before
    the question, and a "no" changes nothing."""
    moodle = used["moodle"]

    declined = _invoke(runner, moodle.public_id, "--provider", "alpha", input="n\n")

    assert declined.exit_code == 1
    assert (
        "This connection has 3 badges in 2 courses and 2 LTI registrations."
        in declined.output
    )
    assert "these badges can no longer be earned" in declined.output
    assert "Credentials already issued stay valid." in declined.output
    assert "does not take over these badges" in declined.output
    warning_at = declined.output.index("This connection has")
    question_at = declined.output.index("Disconnect moodle connection")
    assert warning_at < question_at
    db.expire_all()
    assert db.get(LmsConnection, moodle.id).state == "ok"


def test_cli_prompt_without_usage(runner, db, seeded):
    """Canvas without badges: the prompt says so and gives no badge advice."""
    canvas = seeded["canvas"]

    result = _invoke(runner, canvas.public_id, "--provider", "alpha", input="y\n")

    assert result.exit_code == 0, result.output
    assert "This connection has no badge and no LTI registration." in result.output
    assert "can no longer be earned" not in result.output
    assert "stay on it" not in result.output


def test_cli_json_reports_usage(runner, db, used):
    """--json prints the counts beside the connection."""
    moodle = used["moodle"]

    result = _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes", "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["usage"] == {
        "achievements": 3,
        "courses": 2,
        "lti_registrations": 2,
    }


def test_cli_text_names_usage(runner, used):
    """The text output says what stays on the disconnected connection."""
    result = _invoke(runner, used["moodle"].public_id, "--provider", "alpha", "--yes")

    assert result.exit_code == 0, result.output
    assert "Its 3 badges in 2 courses and 2 LTI registrations stay on it" in (
        result.stdout
    )
    assert "can no longer be earned" in result.stdout


# A rule other than the badges' stored one, so that an edit changes it.
ACTIVITY_RULE = {
    "version": 1,
    "rule": {"kind": "activity_completed", "activity_id": "4001"},
}


def _rule_file(tmp_path, rule: dict = COURSE_COMPLETED_RULE) -> str:
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule))
    return str(path)


def test_cli_add_on_disconnected_explains(runner, db, seeded, tmp_path):
    """`achievement add` on a disconnected connection says that a new connection
    does not take over its badges, and saves nothing."""
    moodle = seeded["moodle"]
    _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes")
    before = db.scalar(select(func.count()).select_from(Achievement))

    result = runner.invoke(
        main,
        [
            "achievement",
            "add",
            "--provider",
            "alpha",
            "--connection",
            moodle.public_id,
            "--course",
            "101",
            "--name",
            "New",
            "--description",
            "A badge.",
            "--criteria",
            "Complete it.",
            "--rule-file",
            _rule_file(tmp_path),
            "--json",
        ],
    )

    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["error"] == "connection_disconnected"
    assert "its badges can no longer be earned" in body["message"]
    assert (
        "does not take over this connection's badges or LTI registrations"
        in (body["message"])
    )
    assert "add the badges again on it" in body["message"]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Achievement)) == before


def test_cli_edit_rule_on_disconnected_explains(runner, db, seeded, tmp_path):
    """`achievement edit --rule` of a badge on a disconnected connection gives the
    same explanation and leaves the rule unchanged."""
    moodle = seeded["moodle"]
    badge = db.scalar(
        select(Achievement).where(Achievement.lms_connection_id == moodle.id)
    )
    _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes")

    result = runner.invoke(
        main,
        [
            "achievement",
            "edit",
            badge.public_id,
            "--rule-file",
            _rule_file(tmp_path, ACTIVITY_RULE),
            "--json",
        ],
    )

    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["error"] == "connection_disconnected"
    assert "does not take over this connection's badges" in body["message"]
    db.expire_all()
    assert db.get(Achievement, badge.id).award_rule == COURSE_COMPLETED_RULE


def test_cli_edit_name_on_disconnected_warns(runner, db, seeded):
    """A text change on a badge of a disconnected connection is saved with a
    warning that the badge can no longer be earned and is not taken over."""
    moodle = seeded["moodle"]
    badge = db.scalar(
        select(Achievement).where(Achievement.lms_connection_id == moodle.id)
    )
    before = runner.invoke(
        main, ["achievement", "edit", badge.public_id, "--name", "Before", "--json"]
    )
    _invoke(runner, moodle.public_id, "--provider", "alpha", "--yes")

    result = runner.invoke(
        main, ["achievement", "edit", badge.public_id, "--name", "Renamed", "--json"]
    )

    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["warnings"] == []
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["fields"] == ["name"]
    assert len(body["warnings"]) == 1
    assert "learners can no longer earn this badge" in body["warnings"][0]
    assert "does not take over this badge" in body["warnings"][0]
    assert "warning: LMS connection" in result.stderr
    db.expire_all()
    assert db.get(Achievement, badge.id).name == "Renamed"


def test_warning_registrations_only():
    """Registrations without badges get the advice about registrations alone."""
    text = "\n".join(disconnect_warning(ConnectionUsage(0, 0, 2)))

    assert "This connection has no badge and 2 LTI registrations." in text
    assert "does not take over these LTI registrations" in text
    assert "can no longer be earned" not in text
    assert "add the badges again in each course" not in text
