from datetime import datetime, timedelta, timezone

import pytest

from badge_engine.facts import CompletionFact, CompletionState, FactSource

WHEN = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def _fact(**changes):
    values = dict(
        provider_id=1,
        lms_connection_id=2,
        lms_course_id="101",
        lms_user_id="3001",
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=WHEN,
        source=FactSource.EVENT,
        source_event_id="e1",
    )
    values.update(changes)
    return CompletionFact(**values)


def test_dedupe_key_same_for_event_and_poll():
    """An event and a poll that report the same change share one key."""
    event = _fact()
    poll = _fact(source=FactSource.POLL, source_event_id=None)

    assert event.dedupe_key == poll.dedupe_key


def test_dedupe_key_same_across_time_zones():
    """The same instant written in another zone is the same fact."""
    shifted = WHEN.astimezone(timezone(timedelta(hours=3)))

    assert _fact().dedupe_key == _fact(occurred_at=shifted).dedupe_key


def test_dedupe_key_differs_by_state():
    """A reversal is a new fact, not a repeat of the completion."""
    assert _fact().dedupe_key != _fact(state=CompletionState.INCOMPLETE).dedupe_key


def test_naive_time_rejected():
    """A naive occurred_at raises, because its zone is unknown."""
    with pytest.raises(ValueError, match="timezone-aware"):
        _fact(occurred_at=datetime(2025, 1, 1))


def test_grade_fact_key_ignores_time():
    """Two polls that read the same grade at different times share one key."""
    first = _fact(activity_id="ags-1", grade_percent=90.0)
    later = _fact(
        activity_id="ags-1", grade_percent=90.0, occurred_at=WHEN + timedelta(hours=1)
    )

    assert first.dedupe_key == later.dedupe_key


def test_grade_fact_key_follows_percent():
    """A changed grade is a new fact, and a grade fact differs from a completion."""
    low = _fact(activity_id="ags-1", grade_percent=50.0)
    high = _fact(activity_id="ags-1", grade_percent=90.0)
    completion = _fact(activity_id="ags-1")

    assert low.dedupe_key != high.dedupe_key
    assert high.dedupe_key != completion.dedupe_key


def test_grade_fact_rejects_non_finite():
    """A grade percentage that is not a finite number is rejected."""
    with pytest.raises(ValueError, match="finite"):
        _fact(grade_percent=float("nan"))
