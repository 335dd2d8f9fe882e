"""The broker stopping mid-run, and a worker killed in the middle of a bulk backfill."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement
from lti_tool.backfill import (
    BackfillJob,
    BackfillTrigger,
    send_backfill,
    start_backfill,
)
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.stack import wait_for
from tests.faults.conftest import add_learners, assert_exactly, settle

pytestmark = pytest.mark.slow

COMPLETED_AT = 1735689600


def test_broker_stops_and_starts(pg_stack, own_redis):
    """Events accepted while the broker is down are awarded once after it returns."""
    stack = pg_stack(broker_url=own_redis.url)
    moodle = stack.peers.moodle
    user_ids = add_learners(stack, 6)

    for user_id in user_ids[:2]:
        moodle.complete_course(DEMO_COURSE_ID, user_id, COMPLETED_AT)
    own_redis.stop()
    for user_id in user_ids[2:4]:
        moodle.complete_course(DEMO_COURSE_ID, user_id, COMPLETED_AT)
    time.sleep(3)
    own_redis.start()
    for user_id in user_ids[4:]:
        moodle.complete_course(DEMO_COURSE_ID, user_id, COMPLETED_AT)

    failed_posts = [d for d in moodle.deliveries if d.error]
    assert failed_posts == []
    result = settle(stack, timeout=180)
    assert_exactly(result, facts=6, credentials=6, delivered=6, stack=stack)


def _job(stack, job_id: int) -> BackfillJob:
    with stack.bridge.session() as session:
        return session.get(BackfillJob, job_id)


@pytest.mark.parametrize("stack_fixture", ["pg_stack", "sqlite_stack"])
def test_worker_killed_mid_backfill(request, stack_fixture):
    """A worker killed during a bulk backfill resumes it; each earned badge exists once."""
    # Small pages keep the job running long enough to be killed between two commits.
    stack = request.getfixturevalue(stack_fixture)(
        hpass_outbox_lease_seconds=5, hpass_backfill_page_size=10
    )
    moodle = stack.peers.moodle
    user_ids = add_learners(stack, 400, portfolio=False)
    completed = user_ids[::2]
    for user_id in completed:
        for cmid in (4001, 4002):
            moodle.set_activity_state(DEMO_COURSE_ID, user_id, cmid, 1, COMPLETED_AT)
        moodle.set_course_completed(DEMO_COURSE_ID, user_id, True, COMPLETED_AT)

    with stack.bridge.session() as session:
        achievement = session.scalars(select(Achievement)).one()
        job = start_backfill(
            session, achievements=[achievement], trigger=BackfillTrigger.RULE_CHANGED
        )
        session.commit()
        job_id = job.id
    with stack.app.app_context():
        send_backfill(job_id)

    started = wait_for(lambda: _job(stack, job_id).issued > 0, 90)
    assert started, "the backfill never issued\n" + stack.logs()
    stack.kill_worker()
    assert _job(stack, job_id).status == "running"
    assert _job(stack, job_id).issued < len(completed)

    stack.start_worker()
    finished = wait_for(lambda: _job(stack, job_id).status == "done", 180)
    assert finished, f"backfill did not finish: {_job(stack, job_id)}\n" + stack.logs()

    job = _job(stack, job_id)
    assert job.issued == len(completed)
    assert job.already_held == 0
    assert job.not_met == len(user_ids) - len(completed) + 1
    result = settle(stack)
    assert_exactly(
        result, facts=0, credentials=len(completed), delivered=0, stack=stack
    )
