"""Benchmark: backfill credentials in bulk against one transaction per credential.

Loads a course with ACHIEVEMENTS badges and LEARNERS learners who all completed it
into an in-memory LMS roster (the LMS state loaded in advance), on PostgreSQL, then:

1. baseline: for a sample of (learner, achievement) pairs, in this process, read
   progress, evaluate, issue, sign, store and queue delivery, committing once per
   credential;
2. bulk: the course's achievements split over WORKERS backfill jobs, sent through a
   Redis broker of the benchmark's own to as many real Celery worker processes
   (bench/_backfill_worker.py), each running `lti_tool.backfill.run_job`.

The provider has an Open Badge Factory account, so each credential gets one
delivery and one outbox message, which the workers send to a broker queue that no
benchmark worker consumes. Prints credentials per second of both, the total time,
the ratio, the time extrapolated to 250,000 credentials, each worker's peak resident
memory and the machine's load average.

    .venv/bin/python bench/backfill.py              # quick: 2,000 x 10
    .venv/bin/python bench/backfill.py --full       # the target: 25,000 x 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import free_port, scratch_postgres

ROOT = Path(__file__).resolve().parent.parent
TARGET_CREDENTIALS = 250_000
TARGET_SECONDS = 180
FULL_LEARNERS = 25_000
COMPLETED_AT = datetime(2025, 1, 1, tzinfo=UTC)
# A run whose jobs see no new learner for this long has failed; the workers' logs
# contain the reason.
STALL_SECONDS = 120


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


def _environment(folder: Path, database_url: str, broker_url: str) -> dict[str, str]:
    """Build the HPASS_* variables the benchmark and its workers share."""
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(folder / "instance"),
        "HPASS_DATABASE_URL": database_url,
        "HPASS_BROKER_URL": broker_url,
        "HPASS_PUBLIC_BASE_URL": "http://127.0.0.1:5999",
        "HPASS_LOOPBACK_DEV": "1",
        "HPASS_SECRET_KEY": "benchmark-secret-key",
        "HPASS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


def _app(environment: dict[str, str]):
    from lti_tool.app import create_app
    from lti_tool.config import load_settings

    settings = load_settings(environ=environment)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    return create_app(settings)


def seed(bridge, achievements: int, tag: str) -> list[int]:
    """Add a provider with an OBF account and a course with `achievements` badges."""
    from badge_engine.models import Achievement, Provider
    from badge_engine.rules import COURSE_COMPLETED_RULE
    from connectors.hpass.models import ObfConnection
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
        session.add(
            ObfConnection(
                provider_id=provider.id,
                api_base_url="http://127.0.0.1:9",
                client_id="bench",
                client_secret_encrypted=bridge.vault.encrypt("unused"),
            )
        )
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


class RedisServer:
    """A redis-server of the benchmark's own on a free loopback port, in memory only."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("redis-server is not on PATH; install Redis to run this")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        _wait(lambda: _redis_answers(self.url), 10, "redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        return False


def _wait(condition, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.1)


def _memory_kib(pid: int, field: str) -> int:
    """Read VmRSS (current) or VmHWM (peak) resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_workers(environment, folder: Path, learners: int, count: int):
    """Start `count` benchmark workers and wait until each consumes tasks."""
    workers = []
    for number in range(count):
        ready = folder / f"bench-worker-{number}.ready"
        log = open(folder / f"bench-worker-{number}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_backfill_worker.py")],
            env={
                **environment,
                "BENCH_LEARNERS": str(learners),
                "BENCH_READY_FILE": str(ready),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers.append((process, ready, log))
    for process, ready, _ in workers:
        _wait(
            lambda: ready.exists() or process.poll() is not None,
            120,
            "a benchmark worker did not start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"a benchmark worker exited; see {folder}/*.log")
    return workers


def stop_workers(workers) -> None:
    for process, _, log in workers:
        if process.poll() is None:
            process.terminate()
    for process, _, log in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def run_bulk(app, workers, achievement_ids: list[int]):
    """Send one backfill job per worker and wait until all end; return their figures."""
    from sqlalchemy import select

    from badge_engine.models import Achievement
    from lti_tool.backfill import (
        BackfillJob,
        BackfillTrigger,
        send_backfill,
        start_backfill,
    )

    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        achievements = [session.get(Achievement, i) for i in achievement_ids]
        job_ids = []
        for index in range(len(workers)):
            share = achievements[index :: len(workers)]
            if share:
                job = start_backfill(
                    session,
                    achievements=share,
                    trigger=BackfillTrigger.ACHIEVEMENT_CREATED,
                )
                job_ids.append(job.id)
        session.commit()

    peaks = [0] * len(workers)
    # CPU used before the run (imports, start-up, the baseline's connections) is
    # subtracted from the figures below.
    worker_cpu_before = sum(_cpu_seconds(process.pid) for process, _, _ in workers)
    database_cpu_before = _database_cpu(bridge)
    progress, progressed_at = -1, time.monotonic()
    started = time.perf_counter()
    with app.app_context():
        for job_id in job_ids:
            send_backfill(job_id)
    while True:
        for number, (process, _, _) in enumerate(workers):
            if process.poll() is not None:
                raise RuntimeError(f"benchmark worker {number} exited during the run")
            peaks[number] = max(peaks[number], _memory_kib(process.pid, "VmRSS"))
        with bridge.session() as session:
            jobs = session.scalars(
                select(BackfillJob).where(BackfillJob.id.in_(job_ids))
            ).all()
            statuses = [job.status for job in jobs]
            errors = [job.last_error for job in jobs if job.last_error]
            seen = sum(job.learners_seen for job in jobs)
        if all(status in ("done", "failed", "cancelled") for status in statuses):
            break
        if seen != progress:
            progress, progressed_at = seen, time.monotonic()
        elif time.monotonic() - progressed_at > STALL_SECONDS:
            raise RuntimeError(
                f"no backfill progress for {STALL_SECONDS} s (jobs {statuses}); "
                "see the bench-worker-*.log files of the run"
            )
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    for number, (process, _, _) in enumerate(workers):
        peaks[number] = max(peaks[number], _memory_kib(process.pid, "VmHWM"))
    worker_cpu = sum(_cpu_seconds(process.pid) for process, _, _ in workers)
    database_cpu = _database_cpu(bridge)
    return (
        elapsed,
        statuses,
        errors,
        peaks,
        worker_cpu - worker_cpu_before,
        {
            pid: cpu - database_cpu_before.get(pid, 0.0)
            for pid, cpu in database_cpu.items()
        }
        if database_cpu is not None and database_cpu_before is not None
        else None,
    )


def _cpu_seconds(pid: int) -> float:
    """Read the user plus system CPU time a process used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu(bridge) -> dict[int, float] | None:
    """Read the CPU time of each PostgreSQL backend serving the benchmark database.

    Returns None when the server runs elsewhere or its processes are not readable.
    """
    from sqlalchemy import text

    with bridge.engine.connect() as connection:
        pids = connection.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
    try:
        return {pid: _cpu_seconds(pid) for pid in pids}
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--learners", type=int, default=2000, help="Learners in the course."
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"Run the target scenario: {FULL_LEARNERS:,} learners (overrides --learners).",
    )
    parser.add_argument(
        "--achievements", type=int, default=10, help="Badges of the course."
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery worker processes."
    )
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=300,
        help="Credentials issued by the baseline.",
    )
    args = parser.parse_args()
    learners = FULL_LEARNERS if args.full else args.learners

    from sqlalchemy import func, select

    from badge_engine.models import Credential
    from badge_engine.outbox import OutboxMessage
    from lti_tool.schema import upgrade

    load_before = os.getloadavg()
    redis_server = RedisServer()
    workers = []
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            scratch_postgres("hpass_bench_backfill") as url,
        ):
            environment = _environment(Path(folder), url, redis_server.url)
            upgrade(url)
            app = _app(environment)
            bridge = app.extensions["hpass"]

            baseline_ids = seed(bridge, args.achievements, "baseline")
            with app.app_context():
                baseline_rate = run_baseline(
                    bridge,
                    PreloadedRoster(args.baseline_sample),
                    baseline_ids,
                    args.baseline_sample,
                )

            bulk_ids = seed(bridge, args.achievements, "bulk")
            workers = start_workers(environment, Path(folder), learners, args.workers)
            load_start = os.getloadavg()
            try:
                elapsed, statuses, errors, peaks, worker_cpu, backends = run_bulk(
                    app, workers, bulk_ids
                )
                database_cpu = sum(backends.values()) if backends else None
            except RuntimeError:
                _print_worker_logs(Path(folder))
                raise
            load_end = os.getloadavg()
            stop_workers(workers)
            workers = []
            with bridge.session() as session:
                issued = session.scalar(
                    select(func.count(Credential.id)).where(
                        Credential.achievement_id.in_(bulk_ids)
                    )
                )
                pairs = session.scalar(
                    select(func.count(func.distinct(Credential.live_key))).where(
                        Credential.achievement_id.in_(bulk_ids)
                    )
                )
                indexes = session.scalar(
                    select(
                        func.count(func.distinct(Credential.status_list_index))
                    ).where(Credential.achievement_id.in_(bulk_ids))
                )
                queued = session.scalar(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.kind == "credential.deliver"
                    )
                )
            bridge.engine.dispose()
    finally:
        stop_workers(workers)
        redis_server.stop()

    expected = learners * args.achievements
    bulk_rate = issued / elapsed
    print(f"PostgreSQL, Redis broker, {args.workers} Celery workers")
    print(
        f"load average (1, 5, 15 min): before {_load(load_before)}, bulk start "
        f"{_load(load_start)}, bulk end {_load(load_end)}"
    )
    print(
        f"baseline (one transaction per credential): {baseline_rate:,.1f} credentials/s "
        f"over {args.baseline_sample} credentials"
    )
    print(
        f"bulk backfill: {issued:,} of {expected:,} credentials in {elapsed:.1f} s = "
        f"{bulk_rate:,.1f} credentials/s (jobs {', '.join(statuses)})"
    )
    print(
        f"check: {pairs:,} distinct live pairs, {indexes:,} distinct status indexes, "
        f"{queued:,} delivery messages queued"
    )
    if errors:
        print(f"job errors: {errors}")
    print(
        f"CPU: workers {worker_cpu:.1f} s, PostgreSQL backends "
        + (f"{database_cpu:.1f} s" if database_cpu is not None else "not readable")
        + f" = {issued / (worker_cpu + (database_cpu or 0)):,.0f} credentials per "
        "CPU second (a bound for an idle machine: 2 cores give twice that)"
    )
    print(f"ratio bulk / baseline: {bulk_rate / baseline_rate:.1f}")
    print(
        f"extrapolated for {TARGET_CREDENTIALS:,} credentials: bulk "
        f"{TARGET_CREDENTIALS / bulk_rate / 60:.1f} min, baseline "
        f"{TARGET_CREDENTIALS / baseline_rate / 60:.1f} min "
        f"(target {TARGET_SECONDS / 60:.0f} min)"
    )
    for number, peak in enumerate(peaks):
        print(f"worker {number}: peak resident memory {peak / 1024:.0f} MiB")


def _print_worker_logs(folder: Path) -> None:
    for log in sorted(folder.glob("bench-worker-*.log")):
        print(f"--- last lines of {log.name}", file=sys.stderr)
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)


def _load(values) -> str:
    return " ".join(f"{value:.1f}" for value in values)


if __name__ == "__main__":
    main()
