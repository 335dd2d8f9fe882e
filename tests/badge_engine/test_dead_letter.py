"""Dead-letter list: list, retry and discard dead outbox messages with a reason."""

from __future__ import annotations

import pytest

from badge_engine.dead_letter import (
    DISCARDED,
    DeadLetterError,
    count_dead_letters,
    dead_letter_history,
    discard_dead_letter,
    list_dead_letters,
    retry_dead_letter,
)
from badge_engine.outbox import OutboxStatus, enqueue, mark_failed
from tests.support.seed import add_provider


def _dead(db, provider, key: str):
    message = enqueue(
        db,
        provider_id=provider.id,
        kind="credential.deliver",
        payload={},
        idempotency_key=key,
    )
    message.attempts = 3
    mark_failed(message, "portfolio answered 422: invalid credential", max_attempts=3)
    db.flush()
    return message


def test_list_shows_own_dead_only(db):
    """The list shows the provider's dead messages with their error, newest first."""
    academy = add_provider(db)
    other = add_provider(db, slug="other", name="Other")
    first = _dead(db, academy, "a1")
    second = _dead(db, academy, "a2")
    _dead(db, other, "o1")

    listed = list_dead_letters(db, provider_id=academy.id)

    assert [letter.id for letter in listed] == [second.id, first.id]
    assert listed[0].last_error == "portfolio answered 422: invalid credential"
    assert count_dead_letters(db, provider_id=academy.id) == 2


def test_retry_makes_message_due(db):
    """A retried message is pending with a fresh attempt count, and the retry is kept."""
    provider = add_provider(db)
    message = _dead(db, provider, "r1")

    retry_dead_letter(
        db, provider_id=provider.id, message_id=message.id, actor="admin@a"
    )

    assert message.status == OutboxStatus.PENDING.value
    assert message.attempts == 0
    history = dead_letter_history(db, provider_id=provider.id, message_id=message.id)
    assert [action.action for action in history] == ["retry"]
    assert history[0].error_at_action.startswith("portfolio answered 422")


def test_discard_needs_reason(db):
    """Discarding without a reason raises and changes nothing."""
    provider = add_provider(db)
    message = _dead(db, provider, "d1")

    with pytest.raises(DeadLetterError, match="a reason is required"):
        discard_dead_letter(
            db,
            provider_id=provider.id,
            message_id=message.id,
            actor="admin",
            reason=" ",
        )

    assert message.status == OutboxStatus.DEAD.value


def test_discard_records_reason(db):
    """A discarded message leaves the list and keeps the admin's reason."""
    provider = add_provider(db)
    message = _dead(db, provider, "d2")

    discard_dead_letter(
        db,
        provider_id=provider.id,
        message_id=message.id,
        actor="admin",
        reason="learner deleted their portfolio",
    )

    assert message.status == DISCARDED
    assert list_dead_letters(db, provider_id=provider.id) == []
    history = dead_letter_history(db, provider_id=provider.id, message_id=message.id)
    assert history[0].reason == "learner deleted their portfolio"


def test_actions_rejected_on_live_or_foreign(db):
    """Only a dead message of the same provider can be retried or discarded."""
    provider = add_provider(db)
    other = add_provider(db, slug="other", name="Other")
    live = enqueue(
        db,
        provider_id=provider.id,
        kind="fact.evaluate",
        payload={},
        idempotency_key="l",
    )
    foreign = _dead(db, other, "f")
    db.flush()

    with pytest.raises(DeadLetterError, match="is pending, not dead"):
        retry_dead_letter(db, provider_id=provider.id, message_id=live.id, actor="a")
    with pytest.raises(DeadLetterError, match="not found for provider"):
        retry_dead_letter(db, provider_id=provider.id, message_id=foreign.id, actor="a")
