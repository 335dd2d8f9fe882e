from datetime import timedelta

from badge_engine.db import utcnow
from badge_engine.outbox import (
    OutboxMessage,
    OutboxStatus,
    backoff_delay,
    claim,
    due_message_ids,
    enqueue,
    mark_dispatched,
    mark_done,
    mark_failed,
)
from tests.support.seed import add_provider


def _message(db, key="k1"):
    provider = add_provider(db)
    message = enqueue(
        db,
        provider_id=provider.id,
        kind="test.kind",
        payload={"x": 1},
        idempotency_key=key,
    )
    db.commit()
    return message


def test_enqueue_same_key_returns_existing(db):
    """A second message with the same idempotency key is the first one."""
    first = _message(db)

    second = enqueue(
        db,
        provider_id=first.provider_id,
        kind="test.kind",
        payload={},
        idempotency_key="k1",
    )

    assert second.id == first.id
    assert db.query(OutboxMessage).count() == 1


def test_claim_only_once(db):
    """Two claims of the same due message: the first wins, the second gets None."""
    message = _message(db)

    first = claim(db, message.id, lease_seconds=60)
    db.commit()
    second = claim(db, message.id, lease_seconds=60)

    assert first is not None
    assert first.status == OutboxStatus.IN_PROGRESS.value
    assert first.attempts == 1
    assert second is None


def test_claim_after_lease_expired(db):
    """A message whose worker died (lease expired) can be claimed again."""
    message = _message(db)
    claim(db, message.id, lease_seconds=60)
    db.commit()

    later = utcnow() + timedelta(seconds=61)
    again = claim(db, message.id, lease_seconds=60, now=later)

    assert again is not None
    assert again.attempts == 2


def test_claim_not_before_next_attempt(db):
    """A message scheduled for later is not claimable now."""
    message = _message(db)
    message.next_attempt_at = utcnow() + timedelta(minutes=5)
    db.commit()

    assert claim(db, message.id, lease_seconds=60) is None


def test_mark_failed_schedules_retry(db):
    """A failure below the limit puts the message back to pending, later."""
    message = claim(db, _message(db).id, lease_seconds=60)

    mark_failed(message, "portfolio answered 500", max_attempts=3)

    assert message.status == OutboxStatus.PENDING.value
    assert message.next_attempt_at > utcnow()
    assert message.last_error == "portfolio answered 500"


def test_mark_failed_respects_retry_after(db):
    """A Retry-After longer than the backoff wins."""
    message = claim(db, _message(db).id, lease_seconds=60)

    mark_failed(message, "429", max_attempts=3, retry_after=timedelta(hours=2))

    assert message.next_attempt_at > utcnow() + timedelta(minutes=119)


def test_mark_failed_dead_after_max_attempts(db):
    """The last allowed failure moves the message to the dead-letter status."""
    message = claim(db, _message(db).id, lease_seconds=60)

    mark_failed(message, "still failing", max_attempts=1)

    assert message.status == OutboxStatus.DEAD.value


def test_mark_done_clears_lease(db):
    """A finished message is done, without lease or error."""
    message = claim(db, _message(db).id, lease_seconds=60)

    mark_done(message)

    assert message.status == OutboxStatus.DONE.value
    assert message.locked_until is None
    assert message.completed_at is not None


def test_due_ids_skip_recently_dispatched(db):
    """The sweep does not resend a message handed to the broker a moment ago."""
    message = _message(db)
    mark_dispatched(db, [message.id])
    db.commit()

    assert due_message_ids(db, redispatch_after_seconds=60) == []
    later = utcnow() + timedelta(seconds=61)
    assert due_message_ids(db, redispatch_after_seconds=60, now=later) == [message.id]


def test_due_ids_include_expired_lease(db):
    """A message stuck in progress past its lease is due again."""
    message = _message(db)
    claim(db, message.id, lease_seconds=1)
    db.commit()

    later = utcnow() + timedelta(seconds=2)

    assert due_message_ids(db, redispatch_after_seconds=60, now=later) == [message.id]


def test_backoff_grows_and_caps():
    """Backoff doubles per attempt and never exceeds six hours."""
    assert backoff_delay(1) <= timedelta(seconds=10)
    assert backoff_delay(5) >= timedelta(seconds=80)
    assert backoff_delay(50) <= timedelta(hours=6)
