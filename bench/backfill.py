"""Benchmark: backfill credentials in bulk against one transaction per credential.

Loads a course with ACHIEVEMENTS badges and LEARNERS learners who all completed it
into an in-memory LMS roster (the LMS state loaded in advance), then:

1. baseline: for a sample of (learner, achievement) pairs, read progress, evaluate,
   issue, sign, store and queue delivery, committing once per credential;
2. bulk: backfill jobs split over WORKERS processes, each committing one page of
   learners per transaction (lti_tool.backfill.run_job).

Prints credentials per second of both, the ratio, the extrapolated time for
250,000 credentials, and each worker process's peak resident memory.

    /work/venv/bin/python bench/backfill.py --learners 500 --achievements 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import bench_settings, scratch_postgres

TARGET_CREDENTIALS = 250_000
COMPLETED_AT = datetime(2025, 1, 1, tzinfo=UTC)


class PreloadedRoster:
    """The LMS state loaded in advance: every learner completed the course."""

    def __init__(self, learners: int) -> None:
        self.user_ids = [str(10_000 + index) for index in range(learners)]

    def enrolled_learners(self, lms_course_id, offset, limit):
        from connectors.moodle.roster import EnrolledLearner, RosterPage

        page = self.user_ids[offset : offset + limit]
        learners = [
            EnrolledLearner(user_id, f"Learner {user_id}", f"l{user_id}@example.org")
            for user_id in page
        ]
        return RosterPage(learners, users_read=len(page), is_last=len(page) < limit)

    def read_progress(self, lms_course_id, lms_user_id):
        from badge_engine.rules import LearnerProgress

        return LearnerProgress(True, COMPLETED_AT)


def _bridge(settings):
    from lti_tool.app import create_app

    return create_app(settings)


def seed(bridge, achievements: int, tag: str) -> list[int]:
    from badge_engine.models import Achievement, Provider
    from badge_engine.rules import COURSE_COMPLETED_RULE
    from connectors.models import LmsConnection, LmsKind

    with bridge.session() as session:
        provider = Provider(
            slug=f"bench-{tag}", name="Bench", url="https://bench.invalid"
        )
        session.add(provider)
        session.flush()
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="Bench Moodle",
            base_url="http://127.0.0.1:9",
            api_token_encrypted=bridge.vault.encrypt("unused"),
        )
        session.add(connection)
        session.flush()
        rows = [
            Achievement(
                provider_id=provider.id,
                lms_connection_id=connection.id,
                lms_course_id=f"course-{tag}",
                name=f"Badge {number}",
                description="Benchmark badge.",
                criteria_narrative="Complete the course.",
                award_rule=COURSE_COMPLETED_RULE,
            )
            for number in range(achievements)
        ]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def run_baseline(bridge, roster, achievement_ids: list[int], sample: int) -> float:
    """One transaction per credential; return credentials per second."""
    from sqlalchemy import select

    from badge_engine.issuing import issue_credential
    from badge_engine.models import Achievement
    from badge_engine.rules import evaluate_award_rule
    from lti_tool.backfill import BackfillJob, learner_for
    from lti_tool.pipeline import queue_deliveries

    pairs = [
        (learner, achievement_id)
        for learner in roster.enrolled_learners("c", 0, sample).learners
        for achievement_id in achievement_ids
    ][:sample]
    started = time.perf_counter()
    for enrolled, achievement_id in pairs:
        with bridge.session() as session:
            achievement = session.scalar(
                select(Achievement).where(Achievement.id == achievement_id)
            )
            job = BackfillJob(
                provider_id=achievement.provider_id,
                lms_connection_id=achievement.lms_connection_id,
            )
            progress = roster.read_progress(
                achievement.lms_course_id, enrolled.lms_user_id
            )
            outcome = evaluate_award_rule(achievement.award_rule, progress)
            learner = learner_for(session, job, enrolled)
            result = issue_credential(
                session,
                vault=bridge.vault,
                base_url=bridge.settings.public_base_url,
                achievement=achievement,
                learner=learner,
                awarded_at=outcome.met_at,
            )
            queue_deliveries(session, result.credential)
            session.commit()
    return len(pairs) / (time.perf_counter() - started)


def _worker(settings, learners: int, job_id: int, results) -> None:
    from lti_tool import backfill

    app = _bridge(settings)
    roster = PreloadedRoster(learners)
    backfill.ROSTER_FACTORIES["moodle"] = lambda bridge, connection: roster
    bridge = app.extensions["hpass"]
    with app.app_context():
        status = backfill.run_job(bridge, job_id)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put((job_id, status, peak_mib))


def run_bulk(settings, bridge, learners: int, achievement_ids: list[int], workers: int):
    """Split the achievements over `workers` backfill jobs run in parallel processes."""
    from badge_engine.models import Achievement
    from lti_tool.backfill import BackfillTrigger, start_backfill

    with bridge.session() as session:
        achievements = [session.get(Achievement, i) for i in achievement_ids]
        job_ids = []
        for index in range(workers):
            share = achievements[index::workers]
            if share:
                job = start_backfill(
                    session,
                    achievements=share,
                    trigger=BackfillTrigger.ACHIEVEMENT_CREATED,
                )
                job_ids.append(job.id)
        session.commit()

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(settings, learners, job_id, results))
        for job_id in job_ids
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    outcomes = []
    while len(outcomes) < len(processes):
        try:
            outcomes.append(results.get(timeout=5))
        except queue.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(
                    f"a worker process exited with codes {dead}"
                ) from None
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    return elapsed, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--learners", type=int, default=500, help="Learners in the course."
    )
    parser.add_argument(
        "--achievements", type=int, default=10, help="Badges of the course."
    )
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=300,
        help="Credentials issued by the baseline.",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="Use SQLite instead of PostgreSQL."
    )
    args = parser.parse_args()

    from sqlalchemy import func, select

    from badge_engine.models import Credential
    from badge_engine.outbox import OutboxMessage
    from lti_tool.schema import upgrade

    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_postgres("hpass_bench_backfill") as url,
    ):
        database_url = None if args.sqlite else url
        settings = bench_settings(Path(folder) / "instance", database_url)
        upgrade(settings.database_url)
        app = _bridge(settings)
        bridge = app.extensions["hpass"]
        roster = PreloadedRoster(args.learners)

        baseline_ids = seed(bridge, args.achievements, "baseline")
        with app.app_context():
            baseline_rate = run_baseline(
                bridge, roster, baseline_ids, args.baseline_sample
            )

        bulk_ids = seed(bridge, args.achievements, "bulk")
        elapsed, outcomes = run_bulk(
            settings, bridge, args.learners, bulk_ids, args.workers
        )
        with bridge.session() as session:
            issued = session.scalar(
                select(func.count(Credential.id)).where(
                    Credential.achievement_id.in_(bulk_ids)
                )
            )
            queued = session.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "credential.deliver"
                )
            )
        bridge.engine.dispose()

    expected = args.learners * args.achievements
    bulk_rate = issued / elapsed
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"backend: {backend}, workers: {args.workers}")
    print(
        f"baseline (one transaction per credential): {baseline_rate:,.1f} credentials/s "
        f"over {args.baseline_sample} credentials"
    )
    print(
        f"bulk backfill: {issued:,} of {expected:,} credentials in {elapsed:.1f} s = "
        f"{bulk_rate:,.1f} credentials/s"
    )
    print(f"ratio bulk / baseline: {bulk_rate / baseline_rate:.2f}")
    print(
        f"extrapolated for {TARGET_CREDENTIALS:,} credentials: bulk "
        f"{TARGET_CREDENTIALS / bulk_rate / 60:.1f} min, baseline "
        f"{TARGET_CREDENTIALS / baseline_rate / 60:.1f} min"
    )
    print(f"delivery messages queued: {queued:,} (learners here link no portfolio)")
    for job_id, status, peak in outcomes:
        print(f"worker for job {job_id}: {status}, peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
