"""A burst of 10,000 events for one course against PostgreSQL, Redis and two workers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from tests.faults.conftest import add_learners, assert_exactly, settle

pytestmark = pytest.mark.slow

LEARNERS = 2500
COMPLETED_AT = 1735689600
QUIZ, PAGE = 4001, 4002


def _learner_events(moodle, user_id: int) -> list[dict]:
    """Four distinct events for one learner who completes the course."""
    moodle.set_activity_state(DEMO_COURSE_ID, user_id, QUIZ, 1, COMPLETED_AT + 60)
    moodle.set_activity_state(DEMO_COURSE_ID, user_id, PAGE, 1, COMPLETED_AT + 120)
    moodle.set_course_completed(DEMO_COURSE_ID, user_id, True, COMPLETED_AT + 120)
    return [
        moodle.build_module_completion_event(
            DEMO_COURSE_ID, user_id, QUIZ, 1, COMPLETED_AT
        ),
        moodle.build_module_completion_event(
            DEMO_COURSE_ID, user_id, QUIZ, 1, COMPLETED_AT + 60
        ),
        moodle.build_module_completion_event(
            DEMO_COURSE_ID, user_id, PAGE, 1, COMPLETED_AT + 120
        ),
        moodle.build_course_completed_event(
            DEMO_COURSE_ID, user_id, COMPLETED_AT + 120
        ),
    ]


@pytest.mark.timeout(1800)
def test_burst_of_ten_thousand_events(pg_stack):
    """10,000 events for one course give 10,000 facts and one badge per learner."""
    stack = pg_stack(workers=2)
    moodle = stack.peers.moodle
    user_ids = add_learners(stack, LEARNERS)
    events = [
        event for user_id in user_ids for event in _learner_events(moodle, user_id)
    ]
    assert len(events) == 10_000

    local = threading.local()

    def post(event: dict) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session.post(
            moodle.webhook_url, json=event, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, events))

    assert statuses.count(202) == len(events), {
        s: statuses.count(s) for s in set(statuses)
    }
    result = settle(stack, timeout=1800)
    assert_exactly(
        result, facts=len(events), credentials=LEARNERS, delivered=LEARNERS, stack=stack
    )
