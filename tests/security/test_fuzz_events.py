"""Fuzz the Moodle and Canvas event parsers: only their documented errors may escape."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.canvas.errors import CanvasEventInvalid
from connectors.canvas.events import parse_live_event
from connectors.moodle.errors import MoodleEventInvalid
from connectors.moodle.events import (
    parse_reread_trigger,
    parse_webhook_event,
    parse_xapi_hints,
)
from tests.security.fuzzing import fuzz_settings, json_values, load_fixture, mutated

IDS = {"provider_id": 1, "lms_connection_id": 7}
MOODLE_EVENTS = [
    load_fixture(f"moodle/{name}.json")
    for name in (
        "event_course_completed",
        "event_course_module_completion_updated",
        "event_user_graded",
        "event_badge_awarded",
    )
]
XAPI_STATEMENTS = [
    load_fixture(f"moodle/{name}.json")
    for name in ("xapi_statement_course_completed", "xapi_statement_module_completed")
]
CANVAS_EVENTS = [
    load_fixture(f"canvas/{name}.json")
    for name in (
        "live_event_course_completed",
        "live_event_course_progress",
        "live_event_grade_change",
        "live_event_submission_created",
    )
]


def _moodle_bodies():
    return json_values | st.sampled_from(MOODLE_EVENTS).flatmap(mutated)


@fuzz_settings
@given(body=_moodle_bodies())
def test_moodle_event_fuzz(body):
    """A Moodle webhook body gives a fact, None, or MoodleEventInvalid."""
    try:
        parse_webhook_event(body, **IDS)
    except MoodleEventInvalid:
        pass
    try:
        parse_reread_trigger(body)
    except MoodleEventInvalid:
        pass


@fuzz_settings
@given(
    body=json_values
    | st.lists(st.sampled_from(XAPI_STATEMENTS).flatmap(mutated), max_size=4)
    | st.sampled_from(XAPI_STATEMENTS).flatmap(mutated)
)
def test_moodle_xapi_fuzz(body):
    """xAPI statements give hints and a skipped count, or MoodleEventInvalid."""
    try:
        hints, skipped = parse_xapi_hints(body)
    except MoodleEventInvalid:
        return
    assert isinstance(hints, list)
    assert skipped >= 0


@fuzz_settings
@given(
    event=json_values | st.sampled_from(CANVAS_EVENTS).flatmap(mutated),
    home_shard=st.none() | st.integers(min_value=0, max_value=2**40),
)
def test_canvas_event_fuzz(event, home_shard):
    """A decoded Canvas Live Event gives a result or CanvasEventInvalid."""
    try:
        parse_live_event(event, home_shard=home_shard, **IDS)
    except CanvasEventInvalid:
        pass
