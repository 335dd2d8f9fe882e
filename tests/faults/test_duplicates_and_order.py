"""Repeated and reordered events against PostgreSQL, Redis and two real workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from tests.faults.conftest import assert_exactly, settle

pytestmark = pytest.mark.slow

COMPLETED_AT = 1735689600
QUIZ, PAGE = 4001, 4002


def test_same_event_five_times_two_workers(pg_stack):
    """One event sent five times at once to two workers gives one fact, badge, push."""
    stack = pg_stack(workers=2)
    moodle = stack.peers.moodle
    for cmid in (QUIZ, PAGE):
        moodle.set_activity_state(
            DEMO_COURSE_ID, DEMO_LEARNER_ID, cmid, 1, COMPLETED_AT
        )
    moodle.set_course_completed(DEMO_COURSE_ID, DEMO_LEARNER_ID, True, COMPLETED_AT)
    event = moodle.build_course_completed_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, COMPLETED_AT
    )

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(lambda _: moodle.post_event(event), range(5)))

    result = settle(stack)
    assert all(status in (200, 202) for status in statuses), statuses
    assert statuses.count(202) == 1, statuses
    assert_exactly(result, facts=1, credentials=1, delivered=1, stack=stack)


def test_reversal_before_completion(pg_stack):
    """A reversal that arrives before the completion it undoes leaves no badge."""
    stack = pg_stack()
    moodle = stack.peers.moodle
    completion = moodle.build_module_completion_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, PAGE, 1, COMPLETED_AT
    )
    reversal = moodle.build_module_completion_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, PAGE, 0, COMPLETED_AT + 60, actor_id=2
    )
    # Moodle's state after both: the teacher's reversal is the last word.
    moodle.set_activity_state(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, PAGE, 0, COMPLETED_AT + 60
    )

    assert moodle.post_event(reversal) == 202
    assert moodle.post_event(completion) == 202

    result = settle(stack)
    assert_exactly(result, facts=2, credentials=0, delivered=0, stack=stack)


def test_completion_after_reversal_awards_once(pg_stack):
    """Completed, reversed, completed again, delivered in reverse order: one badge."""
    stack = pg_stack()
    moodle = stack.peers.moodle
    first, undone, final = COMPLETED_AT, COMPLETED_AT + 100, COMPLETED_AT + 200
    learner, course = DEMO_LEARNER_ID, DEMO_COURSE_ID
    events = [
        moodle.build_module_completion_event(course, learner, PAGE, 1, first),
        moodle.build_module_completion_event(
            course, learner, PAGE, 0, undone, actor_id=2
        ),
        moodle.build_course_completed_event(course, learner, final),
    ]
    moodle.set_activity_state(course, learner, QUIZ, 1, final)
    moodle.set_activity_state(course, learner, PAGE, 1, final)
    moodle.set_course_completed(course, learner, True, final)

    for event in reversed(events):
        assert moodle.post_event(event) == 202

    result = settle(stack)
    assert_exactly(result, facts=3, credentials=1, delivered=1, stack=stack)
