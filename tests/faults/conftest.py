"""A demo system on PostgreSQL and Redis with real workers, and checks of its final counts.

Every fault test ends the same way: wait until no work is left in the outbox, then
compare the counts of facts, credentials and deliveries with what the input implies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from badge_engine.models import CompletionFactRecord, Credential, Learner
from badge_engine.outbox import OutboxMessage
from connectors.hpass.models import Delivery, PortfolioAccount
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.setup import PORTFOLIO_PATH
from lti_tool.demo.stack import DemoStack, free_port, wait_for
from tests.support.databases import POSTGRES_URL, require_service

SETTLE_SECONDS = 120
FIRST_EXTRA_LEARNER = 5001


class RedisServer:
    """A redis-server of the test's own on a free loopback port, without persistence."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            require_service("redis-server", FileNotFoundError("not on PATH"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        assert wait_for(lambda: self._ping(client), 10), "redis-server did not start"
        client.close()

    @staticmethod
    def _ping(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_database():
    """A PostgreSQL database of this test's own, so tests run beside others on one server."""
    name = f"hpass_faults_{os.getpid()}_{free_port()}"
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure means the server is absent
        require_service("PostgreSQL at " + POSTGRES_URL, error)
    url = (
        make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    )
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_stack(tmp_path, own_database, own_redis):
    """Start a demo system on PostgreSQL and Redis: `workers` workers and the scheduler."""
    stacks = []

    def start(*, workers: int = 1, broker_url: str | None = None, **env) -> DemoStack:
        extra_env = {
            "HPASS_OUTBOX_LEASE_SECONDS": "3",
            **{key.upper(): str(value) for key, value in env.items()},
        }
        stack = DemoStack(
            tmp_path / f"instance-{len(stacks)}",
            database_url=own_database,
            broker_url=broker_url or own_redis.url,
            extra_env=extra_env,
        )
        stacks.append(stack)
        stack.start_web()
        stack.start_worker()
        for _ in range(workers - 1):
            stack.start_extra_worker()
        stack.start_scheduler()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def sqlite_stack(tmp_path):
    """Start a demo system on the embedded default (SQLite and the embedded broker)."""
    stacks = []

    def start(**env) -> DemoStack:
        extra_env = {
            "HPASS_OUTBOX_LEASE_SECONDS": "3",
            **{key.upper(): str(value) for key, value in env.items()},
        }
        stack = DemoStack(tmp_path / f"instance-{len(stacks)}", extra_env=extra_env)
        stacks.append(stack)
        stack.start_web()
        stack.start_worker()
        stack.start_scheduler()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


def add_learners(stack: DemoStack, count: int, *, portfolio: bool = True) -> list[int]:
    """Enrol `count` more learners in the demo course, each with a linked portfolio."""
    moodle = stack.peers.moodle
    user_ids = list(range(FIRST_EXTRA_LEARNER, FIRST_EXTRA_LEARNER + count))
    course = moodle.courses[DEMO_COURSE_ID]
    bridge = stack.bridge
    with bridge.session() as session:
        for user_id in user_ids:
            moodle.users[user_id] = f"Learner {user_id}"
            course.tracked_user_ids.add(user_id)
            learner = Learner(
                provider_id=stack.peers.ids.provider_id,
                lms_connection_id=_connection_id(session, stack),
                lms_user_id=str(user_id),
                name=f"Learner {user_id}",
                email=f"learner{user_id}@example.org",
            )
            session.add(learner)
            session.flush()
            if portfolio:
                session.add(
                    PortfolioAccount(
                        provider_id=learner.provider_id,
                        learner_id=learner.id,
                        api_base_url=stack.base_url + PORTFOLIO_PATH,
                        access_token_encrypted=bridge.vault.encrypt(
                            stack.peers.secrets.portfolio_token
                        ),
                    )
                )
        session.commit()
    return user_ids


def _connection_id(session, stack: DemoStack) -> int:
    demo_learner = session.get(Learner, stack.peers.ids.learner_id)
    return demo_learner.lms_connection_id


@dataclass
class Counts:
    facts: int
    credentials: int
    duplicate_live_pairs: int
    deliveries: dict[str, int]
    outbox: dict[str, int]
    unexplained: list[str]


def counts(stack: DemoStack) -> Counts:
    with stack.bridge.session() as session:
        # The outbox is read first. Each query reads the rows committed before it
        # starts, so once this query finds no work left, the queries below read
        # every row that work wrote. Read last, a message could be done while an
        # earlier delivery query still returned the delivery as queued.
        outbox = dict(
            session.execute(
                select(OutboxMessage.status, func.count()).group_by(
                    OutboxMessage.status
                )
            ).all()
        )
        facts = session.scalar(select(func.count(CompletionFactRecord.id)))
        credentials = session.scalar(select(func.count(Credential.id)))
        pairs = session.execute(
            select(Credential.achievement_id, Credential.learner_id)
            .group_by(Credential.achievement_id, Credential.learner_id)
            .having(func.count() > 1)
        ).all()
        deliveries = dict(
            session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ).all()
        )
        # Work that is not done must carry its reason. A dead message without an
        # error is stuck silently.
        unexplained = [
            f"outbox {message.id} {message.kind} {message.status}"
            for message in session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.status == "dead", OutboxMessage.last_error.is_(None)
                )
            )
        ]
    return Counts(facts, credentials, len(pairs), deliveries, outbox, unexplained)


def settle(stack: DemoStack, timeout: float = SETTLE_SECONDS) -> Counts:
    """Wait until no outbox message is pending or in progress, and return the counts."""

    def settled():
        current = counts(stack)
        busy = current.outbox.get("pending", 0) + current.outbox.get("in_progress", 0)
        return current if busy == 0 else None

    result = wait_for(settled, timeout, interval=0.5)
    assert result is not None, f"outbox never settled: {counts(stack)}\n" + stack.logs()
    return result


def assert_exactly(
    result: Counts, *, facts: int, credentials: int, delivered: int, stack: DemoStack
) -> None:
    context = f"{result}\n" + stack.logs()
    assert result.facts == facts, context
    assert result.credentials == credentials, context
    assert result.duplicate_live_pairs == 0, context
    assert result.deliveries.get("delivered", 0) == delivered, context
    assert sum(result.deliveries.values()) == delivered, context
    assert result.outbox.get("dead", 0) == 0, context
    assert result.unexplained == [], context
    assert len(stack.peers.portfolio.credentials()) == delivered, context
