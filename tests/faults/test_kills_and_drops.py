"""Workers killed and database connections dropped in the middle of an award."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.stack import wait_for
from tests.faults.conftest import assert_exactly, settle

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60


class CredentialInsertBlocker:
    """Hold a lock that makes every INSERT into credentials wait, as a slow disk would.

    EXCLUSIVE mode lets readers through but blocks writers, so a worker gets past its
    reads and signing and then waits inside its transaction, mid-award.
    """

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.connection = self.engine.connect()
        self.transaction = self.connection.begin()
        self.connection.execute(text("LOCK TABLE credentials IN EXCLUSIVE MODE"))

    def waiting_backend_pids(self) -> list[int]:
        with self.engine.connect() as probe:
            rows = probe.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'INSERT INTO credentials%'"
                )
            )
            return [row[0] for row in rows]

    def release(self) -> None:
        if self.transaction.is_active:
            self.transaction.rollback()
        self.connection.close()

    def close(self) -> None:
        self.release()
        self.engine.dispose()


@pytest.fixture
def blocker(own_database):
    made = []

    def start():
        made.append(CredentialInsertBlocker(own_database))
        return made[-1]

    yield start
    for item in made:
        item.close()


def _complete_demo_learner(stack) -> None:
    assert stack.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)


def test_worker_killed_mid_award(pg_stack, blocker):
    """A worker killed inside its award transaction leaves nothing; the rerun issues once."""
    stack = pg_stack()
    lock = blocker()

    _complete_demo_learner(stack)
    waiting = wait_for(lock.waiting_backend_pids, WAIT_SECONDS)
    assert waiting, "the worker never reached the credential insert\n" + stack.logs()
    stack.kill_worker()
    lock.release()

    stack.start_worker()
    result = settle(stack)
    assert_exactly(result, facts=1, credentials=1, delivered=1, stack=stack)


def test_connection_dropped_mid_award(pg_stack, blocker):
    """A database connection terminated mid-transaction is retried and issues once."""
    stack = pg_stack()
    lock = blocker()

    _complete_demo_learner(stack)
    waiting = wait_for(lock.waiting_backend_pids, WAIT_SECONDS)
    assert waiting, "the worker never reached the credential insert\n" + stack.logs()
    with lock.engine.connect() as admin:
        for pid in waiting:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    lock.release()

    result = settle(stack)
    assert_exactly(result, facts=1, credentials=1, delivered=1, stack=stack)


def test_connections_dropped_repeatedly(pg_stack, own_database):
    """Every bridge connection terminated while learners complete: each gets one badge."""
    from tests.faults.conftest import add_learners

    stack = pg_stack(workers=2)
    user_ids = add_learners(stack, 6)
    engine = create_engine(own_database)

    for user_id in user_ids:
        stack.peers.moodle.complete_course(DEMO_COURSE_ID, user_id)
        with engine.connect() as admin:
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state <> 'idle'"
                )
            )
    engine.dispose()

    result = settle(stack)
    assert_exactly(result, facts=6, credentials=6, delivered=6, stack=stack)
