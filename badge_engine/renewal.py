"""Validity periods, expiry reminders and renewal after a course reset.

An achievement with `valid_for_days` gives each credential a `validUntil` that many
days after its award date. Before that day the learner and the provider receive
reminders through the outbox. When the LMS reports the course completed again after a
reset, the pipeline issues a new credential that links to the previous one. The
previous one becomes superseded: still valid as issued, and never revoked.

A completion counts as new only when it is later than the live credential's award
date and the bridge saw the completion reversed in between (a reset, or a teacher
setting it back). A repeated event for the same completion carries the same LMS time,
so it never yields a second credential.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.models import Achievement, Credential, CredentialStatus, Learner
from badge_engine.outbox import OutboxMessage, enqueue

SEND_EMAIL = "email.send"
# Days before validUntil on which a reminder goes out.
REMINDER_DAYS = (30, 7)


def valid_until_for(achievement: Achievement, awarded_at: datetime) -> datetime | None:
    """Return the validUntil of a credential awarded at `awarded_at`, or None."""
    if not achievement.valid_for_days:
        return None
    return awarded_at + timedelta(days=achievement.valid_for_days)


def is_recompletion(live: Credential, awarded_at: datetime) -> bool:
    """Check whether a completion at `awarded_at` is a new one (see the module doc)."""
    reversed_at = live.completion_reversed_at
    return (
        reversed_at is not None
        and awarded_at > live.awarded_at
        and awarded_at >= reversed_at
    )


def retire_for_renewal(session: Session, live: Credential) -> None:
    """Mark the live credential superseded by a renewal, freeing its live key.

    The caller links `superseded_by_id` once the new credential has an id.
    """
    live.status = CredentialStatus.SUPERSEDED.value
    live.live_key = None
    live.superseded_at = utcnow()
    live.supersede_reason = "renewal"
    session.flush()


def queue_expiry_reminders(
    session: Session,
    provider_id: int,
    *,
    base_url: str,
    now: datetime | None = None,
) -> list[OutboxMessage]:
    """Queue a reminder email for each of the provider's live credentials that
    expires within one of REMINDER_DAYS, once per credential and reminder day.

    The outbox idempotency key makes a repeated run (or two schedulers) queue each
    reminder once. The learner and the provider's contact address receive it.
    """
    now = now or utcnow()
    horizon = now + timedelta(days=max(REMINDER_DAYS))
    credentials = session.scalars(
        select(Credential)
        .where(
            Credential.provider_id == provider_id,
            Credential.status == CredentialStatus.LIVE.value,
            Credential.valid_until.is_not(None),
            Credential.valid_until > now,
            Credential.valid_until <= horizon,
        )
        .order_by(Credential.id)
    ).all()

    messages = []
    for credential in credentials:
        days_left = (credential.valid_until - now).days
        due = [days for days in REMINDER_DAYS if days_left < days]
        if not due:
            continue
        days_before = min(due)
        recipients = _reminder_recipients(session, credential)
        if not recipients:
            continue
        messages.append(
            enqueue(
                session,
                provider_id=provider_id,
                kind=SEND_EMAIL,
                payload=_reminder_email(credential, recipients, base_url),
                idempotency_key=f"expiry-reminder:{credential.id}:{days_before}",
            )
        )
    return messages


def _reminder_recipients(session: Session, credential: Credential) -> list[str]:
    learner = session.get(Learner, credential.learner_id)
    provider = credential.achievement.provider
    recipients = [learner.email] if learner and learner.email else []
    if provider.email and provider.email not in recipients:
        recipients.append(provider.email)
    return recipients


def _reminder_email(
    credential: Credential, recipients: list[str], base_url: str
) -> dict:
    achievement = credential.achievement
    until = credential.valid_until.date().isoformat()
    link = f"{base_url}/credentials/{credential.public_id}"
    return {
        "to": recipients,
        "subject": f"Your badge \u201c{achievement.name}\u201d expires on {until}",
        "body": (
            f"The badge \u201c{achievement.name}\u201d is valid until {until}.\n"
            "Complete the course again before then to receive a renewed badge; "
            "the current one stays in your portfolio with its history.\n\n"
            f"Verification page: {link}\n"
        ),
        "credential_id": credential.public_id,
    }
