"""Expiry reminder emails through the outbox: files on the embedded default, and a
real SMTP server (aiosmtpd) on loopback in production mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement, Credential, Learner
from badge_engine.outbox import OutboxMessage, OutboxStatus, enqueue
from badge_engine.renewal import SEND_EMAIL, queue_expiry_reminders
from lti_tool.tasks import run_outbox_message
from tests.support.smtp import free_port
from tests.support.seed import add_moodle_connection, add_provider

AWARDED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def reminder(app, db):
    """One expiry reminder queued for a credential 20 days before validUntil."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db, slug="mailer", name="Mailer")
    provider.email = "staff@mailer.example"
    connection = add_moodle_connection(
        db, vault, provider, "http://127.0.0.1:9", "unused-token"
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="5",
        email="learner@mailer.example",
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="First aid",
        description="First aid.",
        criteria_narrative="Complete the course.",
        award_rule={"version": 1, "rule": {"kind": "course_completed"}},
        valid_for_days=365,
    )
    db.add_all([learner, achievement])
    db.flush()
    credential = Credential(
        provider_id=provider.id,
        achievement_id=achievement.id,
        learner_id=learner.id,
        live_key=f"{achievement.id}:{learner.id}",
        awarded_at=AWARDED,
        valid_until=AWARDED + timedelta(days=365),
        document={"type": ["VerifiableCredential"]},
    )
    db.add(credential)
    db.flush()
    [message] = queue_expiry_reminders(
        db,
        provider.id,
        base_url="http://127.0.0.1:5999",
        now=credential.valid_until - timedelta(days=20),
    )
    db.commit()
    return message.id


def _run(app, message_id: int) -> str:
    with app.app_context():
        return run_outbox_message.run(message_id)


def _status(db, message_id: int) -> str:
    db.expire_all()
    return db.get(OutboxMessage, message_id).status


def test_reminder_written_to_instance(app, db, settings, reminder, monkeypatch):
    """Without an SMTP URL the reminder is written as an .eml file in the instance."""
    monkeypatch.delenv("HPASS_SMTP_URL", raising=False)

    outcome = _run(app, reminder)

    assert outcome == "done"
    [path] = (settings.instance_path / "mail").glob("*.eml")
    email = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert email["To"] == "learner@mailer.example, staff@mailer.example"
    assert "First aid" in email["Subject"]
    assert "expires on 2027-01-01" in email["Subject"]
    assert _status(db, reminder) == OutboxStatus.DONE.value


def test_reminder_sent_by_smtp(app, db, settings, reminder, smtp_server, monkeypatch):
    """With an SMTP URL the reminder goes to the SMTP server and no file is written."""
    controller, inbox = smtp_server
    monkeypatch.setenv("HPASS_SMTP_URL", f"smtp://127.0.0.1:{controller.port}")
    monkeypatch.setenv("HPASS_MAIL_FROM", "badges@mailer.example")

    outcome = _run(app, reminder)

    assert outcome == "done"
    [envelope] = inbox.messages
    assert envelope.mail_from == "badges@mailer.example"
    assert envelope.rcpt_tos == ["learner@mailer.example", "staff@mailer.example"]
    assert b"expires on 2027-01-01" in envelope.content
    assert not (settings.instance_path / "mail").exists()


def test_smtp_down_retries(app, db, reminder, monkeypatch):
    """An SMTP server that refuses connections leaves the reminder pending for a
    retry instead of losing it."""
    monkeypatch.setenv("HPASS_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")

    outcome = _run(app, reminder)

    assert outcome == "failed"
    assert _status(db, reminder) == OutboxStatus.PENDING.value
    db.expire_all()
    assert "sending email failed" in db.get(OutboxMessage, reminder).last_error


def test_bad_payload_dead_letter(app, db, reminder):
    """An email message without recipients goes to the dead-letter list at once."""
    message = db.get(OutboxMessage, reminder)
    broken = enqueue(
        db,
        provider_id=message.provider_id,
        kind=SEND_EMAIL,
        payload={"to": [], "subject": "x", "body": "y"},
        idempotency_key="broken-email",
    )
    db.commit()

    outcome = _run(app, broken.id)

    assert outcome == "failed"
    assert _status(db, broken.id) == OutboxStatus.DEAD.value
    db.expire_all()
    assert "'to' must list addresses" in db.get(OutboxMessage, broken.id).last_error


def test_bad_smtp_url_rejected(app, db, reminder, monkeypatch):
    """An SMTP URL with another scheme is reported, and the message is not lost."""
    monkeypatch.setenv("HPASS_SMTP_URL", "http://127.0.0.1:25")

    outcome = _run(app, reminder)

    assert outcome == "failed"
    assert _status(db, reminder) != OutboxStatus.DONE.value
    assert db.scalar(select(OutboxMessage.id).where(OutboxMessage.id == reminder))


def test_scheduled_run_queues_once(app, db):
    """The scheduled reminder run queues a reminder once across repeated runs."""
    from lti_tool.renewal_tasks import queue_all_expiry_reminders

    vault = app.extensions["hpass"].vault
    provider = add_provider(db, slug="sched", name="Sched")
    connection = add_moodle_connection(
        db, vault, provider, "http://127.0.0.1:9", "unused-token"
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="6",
        email="soon@sched.example",
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Water safety",
        description="Water safety.",
        criteria_narrative="Complete the course.",
        award_rule={"version": 1, "rule": {"kind": "course_completed"}},
        valid_for_days=30,
    )
    db.add_all([learner, achievement])
    db.flush()
    now = datetime.now(UTC)
    db.add(
        Credential(
            provider_id=provider.id,
            achievement_id=achievement.id,
            learner_id=learner.id,
            live_key=f"{achievement.id}:{learner.id}",
            awarded_at=now - timedelta(days=25),
            valid_until=now + timedelta(days=5),
            document={"type": ["VerifiableCredential"]},
        )
    )
    db.commit()

    with app.app_context():
        first = queue_all_expiry_reminders.run()
    with app.app_context():
        queue_all_expiry_reminders.run()

    messages = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == SEND_EMAIL)
    ).all()
    assert first == 1
    assert len(messages) == 1
    assert messages[0].idempotency_key.endswith(":7")
