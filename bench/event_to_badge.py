"""Benchmark: time from a Moodle completion event to the credential in the portfolio.

Runs the demo system on the embedded default (SQLite and the embedded broker) with
one real Celery worker process. For each of LEARNERS learners, one at a time, the
Moodle stand-in completes the course and posts its webhook. The clock stops when
the bridge records the portfolio's acceptance (`Delivery.delivered_at`). The path
in between: store the fact, evaluate it (re-reading Moodle over HTTP), issue and
sign the credential, queue and run the delivery to the portfolio over HTTP.

The baseline, run in the same process, is a GET /health round trip to the same
server: the floor any request to the bridge pays.

    /work/venv/bin/python bench/event_to_badge.py [--learners 30] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import scratch_postgres

FIRST_LEARNER = 7001


def add_learners(stack, count: int) -> list[int]:
    from badge_engine.models import Learner
    from connectors.hpass.models import PortfolioAccount
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
    from lti_tool.demo.setup import PORTFOLIO_PATH

    moodle, bridge = stack.peers.moodle, stack.bridge
    user_ids = list(range(FIRST_LEARNER, FIRST_LEARNER + count))
    with bridge.session() as session:
        demo_learner = session.get(Learner, stack.peers.ids.learner_id)
        for user_id in user_ids:
            moodle.users[user_id] = f"Learner {user_id}"
            moodle.courses[DEMO_COURSE_ID].tracked_user_ids.add(user_id)
            learner = Learner(
                provider_id=demo_learner.provider_id,
                lms_connection_id=demo_learner.lms_connection_id,
                lms_user_id=str(user_id),
                email=f"learner{user_id}@example.org",
            )
            session.add(learner)
            session.flush()
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


def delivered_at(stack, user_id: int):
    from sqlalchemy import select

    from badge_engine.models import Credential, Learner
    from connectors.hpass.models import Delivery

    with stack.bridge.session() as session:
        return session.scalar(
            select(Delivery.delivered_at)
            .join(Credential, Credential.id == Delivery.credential_id)
            .join(Learner, Learner.id == Credential.learner_id)
            .where(
                Learner.lms_user_id == str(user_id), Delivery.delivered_at.is_not(None)
            )
        )


def measure(stack, user_id: int, timeout: float = 60.0) -> float:
    from badge_engine.db import utcnow
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID

    started = utcnow()
    stack.peers.moodle.complete_course(DEMO_COURSE_ID, user_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = delivered_at(stack, user_id)
        if finished is not None:
            return (finished - started).total_seconds()
        time.sleep(0.01)
    raise RuntimeError(
        f"learner {user_id} got no delivered badge in {timeout} s:\n" + stack.logs()
    )


def health_round_trip(base_url: str, count: int = 50) -> float:
    with requests.Session() as session:
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            session.get(f"{base_url}/health", timeout=10).raise_for_status()
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    from lti_tool.demo.stack import DemoStack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30, help="Events measured.")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="PostgreSQL and Redis instead of the default.",
    )
    args = parser.parse_args()

    # The folder is removed after the stack stops, because stopping writes the
    # demo state into it.
    with tempfile.TemporaryDirectory() as folder, ExitStack() as cleanup:
        options = {"extra_env": {"HPASS_LOG_LEVEL": "WARNING"}}
        if args.postgres:
            options["database_url"] = cleanup.enter_context(
                scratch_postgres("hpass_bench_event")
            )
            options["broker_url"] = "redis://127.0.0.1:6379/13"
        stack = cleanup.enter_context(DemoStack(Path(folder) / "instance", **options))
        stack.start_web()
        stack.start_worker()
        user_ids = add_learners(stack, args.learners + 1)

        warm_up = measure(stack, user_ids[0])
        latencies = [measure(stack, user_id) for user_id in user_ids[1:]]
        floor = health_round_trip(stack.base_url)

    latencies.sort()
    median = statistics.median(latencies)
    backend = "PostgreSQL + Redis" if args.postgres else "SQLite + embedded broker"
    print(f"backend: {backend}; one worker; {len(latencies)} events, one at a time")
    print(f"warm-up event (not counted): {warm_up * 1000:.0f} ms")
    print(
        f"event to delivered badge: median {median * 1000:.0f} ms, "
        f"p90 {latencies[int(len(latencies) * 0.9) - 1] * 1000:.0f} ms, "
        f"min {latencies[0] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    print(f"baseline GET /health round trip: median {floor * 1000:.1f} ms")
    print(f"ratio median / baseline: {median / floor:.0f}")


if __name__ == "__main__":
    main()
