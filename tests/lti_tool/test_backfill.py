"""Backfill jobs run in-process against an in-memory LMS roster."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement, Credential
from badge_engine.rules import COURSE_COMPLETED_RULE, LearnerProgress
from connectors.moodle.roster import EnrolledLearner, RosterPage
from lti_tool import backfill
from lti_tool.backfill import (
    BackfillError,
    BackfillJob,
    BackfillStatus,
    BackfillTrigger,
    backfill_progress,
    request_cancel,
    run_job,
    start_backfill,
)
from tests.support.seed import add_moodle_connection, add_provider

COMPLETED = datetime(2025, 3, 1, tzinfo=timezone.utc)


class MemoryRoster:
    """An LMS roster kept in memory: learners in id order and who completed."""

    def __init__(
        self, learners: int, completed: set[str], failing: set[str] = frozenset()
    ):
        self.user_ids = [str(1000 + index) for index in range(learners)]
        self.completed = completed
        self.failing = failing
        self.pages_read = 0

    def enrolled_learners(self, lms_course_id, offset, limit) -> RosterPage:
        self.pages_read += 1
        page = self.user_ids[offset : offset + limit]
        learners = [
            EnrolledLearner(user_id, f"User {user_id}", None) for user_id in page
        ]
        return RosterPage(learners, users_read=len(page), is_last=len(page) < limit)

    def read_progress(self, lms_course_id, lms_user_id) -> LearnerProgress:
        if lms_user_id in self.failing:
            raise ConnectionError("Moodle timed out")
        done = lms_user_id in self.completed
        return LearnerProgress(done, COMPLETED if done else None)


@pytest.fixture
def course(app, db):
    bridge = app.extensions["hpass"]
    provider = add_provider(db)
    connection = add_moodle_connection(
        db, bridge.vault, provider, "http://127.0.0.1:1", "t"
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Safe travel",
        description="Plans safe travel.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    db.add(achievement)
    db.commit()
    return bridge, provider, achievement


def _use_roster(monkeypatch, roster) -> None:
    monkeypatch.setitem(
        backfill.ROSTER_FACTORIES, "moodle", lambda bridge, conn: roster
    )


def _credential_count(db) -> int:
    return db.scalar(select(func.count(Credential.id)))


def test_backfill_issues_to_completed_only(app, db, course, monkeypatch):
    """A backfill issues once to each learner who completed, and counts the rest."""
    bridge, provider, achievement = course
    roster = MemoryRoster(25, completed={"1000", "1003", "1024"})
    _use_roster(monkeypatch, roster)
    job = start_backfill(db, achievements=[achievement], trigger=BackfillTrigger.MANUAL)
    db.commit()

    status = run_job(bridge, job.id, page_size=10)
    db.expire_all()

    assert status == "done"
    assert _credential_count(db) == 3
    progress = backfill_progress(db, provider_id=provider.id)[0]
    assert progress.learners_seen == 25
    assert progress.issued == 3
    assert progress.not_met == 22
    assert roster.pages_read == 3


def test_backfill_rerun_issues_nothing_new(app, db, course, monkeypatch):
    """A second backfill finds every credential already held."""
    bridge, provider, achievement = course
    _use_roster(monkeypatch, MemoryRoster(12, completed={"1001", "1002"}))
    for _ in range(2):
        job = start_backfill(
            db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
        )
        db.commit()
        run_job(bridge, job.id, page_size=5)
    db.expire_all()

    latest = backfill_progress(db, provider_id=provider.id)[0]
    assert _credential_count(db) == 2
    assert latest.issued == 0
    assert latest.already_held == 2


def test_backfill_counts_held_after_reset(app, db, course, monkeypatch):
    """A learner whose LMS progress was reset still counts as holding the badge."""
    bridge, provider, achievement = course
    roster = MemoryRoster(3, completed={"1001"})
    _use_roster(monkeypatch, roster)
    first = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()
    run_job(bridge, first.id, page_size=10)

    roster.completed = set()
    second = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()
    status = run_job(bridge, second.id, page_size=10)
    db.expire_all()
    latest = db.get(BackfillJob, second.id)

    assert status == "done"
    assert latest.issued == 0
    assert latest.already_held == 1
    assert latest.not_met == 2
    assert _credential_count(db) == 1


def test_backfill_revoked_not_counted_held(app, db, course, monkeypatch):
    """A revoked credential is not held: a learner who no longer qualifies is not met."""
    bridge, provider, achievement = course
    roster = MemoryRoster(1, completed={"1000"})
    _use_roster(monkeypatch, roster)
    first = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()
    run_job(bridge, first.id, page_size=10)
    credential = db.scalar(select(Credential))
    credential.live_key = None
    credential.status = "revoked"
    credential.revoked_at = COMPLETED
    credential.revocation_reason = "Awarded by mistake."
    db.commit()

    roster.completed = set()
    second = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()
    run_job(bridge, second.id, page_size=10)
    db.expire_all()
    latest = db.get(BackfillJob, second.id)

    assert latest.already_held == 0
    assert latest.not_met == 1
    assert latest.issued == 0


def test_backfill_read_failure_counted(app, db, course, monkeypatch):
    """A learner whose progress cannot be read is counted and named, the job goes on."""
    bridge, provider, achievement = course
    _use_roster(monkeypatch, MemoryRoster(5, completed={"1000"}, failing={"1002"}))
    job = start_backfill(db, achievements=[achievement], trigger=BackfillTrigger.MANUAL)
    db.commit()

    run_job(bridge, job.id)
    db.expire_all()

    progress = backfill_progress(db, provider_id=provider.id)[0]
    assert progress.status == "done"
    assert progress.failed_reads == 1
    assert "learner 1002: ConnectionError" in progress.last_error


def test_cancel_pending_job_stops_at_once(app, db, course, monkeypatch):
    """Cancelling a job that has not started ends it without reading the LMS."""
    bridge, provider, achievement = course
    roster = MemoryRoster(5, completed={"1000"})
    _use_roster(monkeypatch, roster)
    job = start_backfill(db, achievements=[achievement], trigger=BackfillTrigger.MANUAL)
    db.commit()

    request_cancel(db, provider_id=provider.id, job_public_id=job.public_id)
    db.commit()

    assert run_job(bridge, job.id) == "skipped"
    db.expire_all()
    assert roster.pages_read == 0
    assert db.get(BackfillJob, job.id).status == "cancelled"


def test_new_backfill_supersedes_active(app, db, course):
    """A rule change's backfill requests the older active one to stop."""
    _, _, achievement = course
    older = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    newer = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.RULE_CHANGED
    )

    assert older.cancel_requested
    assert not newer.cancel_requested


def test_superseded_pending_job_ends_cancelled(app, db, course, monkeypatch):
    """A job superseded before it started ends cancelled when its task runs."""
    bridge, _, achievement = course
    roster = MemoryRoster(5, completed={"1000"})
    _use_roster(monkeypatch, roster)
    older = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    start_backfill(db, achievements=[achievement], trigger=BackfillTrigger.RULE_CHANGED)
    db.commit()

    outcome = run_job(bridge, older.id)
    db.expire_all()
    ended = db.get(BackfillJob, older.id)

    assert outcome == "skipped"
    assert roster.pages_read == 0
    assert ended.status == "cancelled"
    assert ended.finished_at is not None
    assert older.id not in backfill.stalled_job_ids(db, pending_after_seconds=0)


def test_manual_start_joins_active_job(app, db, course):
    """A second manual request while the badge's job is pending returns that job."""
    _, _, achievement = course
    first = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()

    second = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()

    assert second.id == first.id
    assert second.joined
    assert not second.cancel_requested
    assert db.scalar(select(func.count(BackfillJob.id))) == 1


def test_manual_start_after_cancel_adds_job(app, db, course, monkeypatch):
    """A job asked to stop is not joined: a new request adds a job."""
    _, provider, achievement = course
    first = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()
    # A running job keeps its status until its worker notices the cancel.
    first.status = "running"
    request_cancel(db, provider_id=provider.id, job_public_id=first.public_id)
    db.commit()

    second = start_backfill(
        db, achievements=[achievement], trigger=BackfillTrigger.MANUAL
    )
    db.commit()

    assert second.id != first.id
    assert not second.joined
    assert db.get(BackfillJob, first.id).status == "running"


def test_active_job_unique_per_achievement(app, db, course):
    """The database itself rejects a second active job of one achievement."""
    from sqlalchemy.exc import IntegrityError

    _, _, achievement = course
    start_backfill(db, achievements=[achievement], trigger=BackfillTrigger.MANUAL)
    db.commit()
    db.add(
        BackfillJob(
            provider_id=achievement.provider_id,
            lms_connection_id=achievement.lms_connection_id,
            lms_course_id=achievement.lms_course_id,
            achievement_ids=[achievement.id],
            active_achievement_id=achievement.id,
            trigger="manual",
        )
    )

    with pytest.raises(IntegrityError):
        db.commit()


def test_cancel_unknown_job_rejected(app, db, course):
    """Cancelling a job of another provider or an unknown id raises a clear error."""
    _, provider, _ = course

    with pytest.raises(BackfillError, match="not found for provider"):
        request_cancel(db, provider_id=provider.id, job_public_id="nope")


def test_start_without_achievements_rejected(app, db):
    """A backfill needs at least one achievement."""
    with pytest.raises(BackfillError, match="no achievements given"):
        start_backfill(db, achievements=[], trigger=BackfillTrigger.MANUAL)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_course(request, settings):
    """A provider's badge on SQLite or on the PostgreSQL server."""
    from lti_tool import intake
    from lti_tool.app import create_app
    from lti_tool.schema import upgrade
    from tests.support.databases import reset_postgres

    if request.param == "postgres":
        settings.database_url = reset_postgres()
    upgrade(settings.database_url)
    app = create_app(settings)
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session)
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:1", "t"
        )
        achievement = Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id="101",
            name="Safe travel",
            description="Plans safe travel.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
        session.add(achievement)
        session.commit()
        achievement_id = achievement.id
    yield bridge, achievement_id
    intake.stop(app)
    bridge.engine.dispose()


def test_concurrent_manual_starts_add_one_job(backend_course, monkeypatch):
    """Three requests that all saw no active job still leave one job, shared by all."""
    import threading

    bridge, achievement_id = backend_course
    requests = 3
    all_looked = threading.Barrier(requests, timeout=30)
    first_look = threading.local()
    real_active_jobs = backfill._active_jobs

    def stale_first_look(session, provider_id, lms_course_id):
        # Each request's first look finds nothing, as when all three read before
        # any of them inserted; the unique index has to catch the rest.
        if not getattr(first_look, "done", False):
            first_look.done = True
            all_looked.wait()
            return []
        return real_active_jobs(session, provider_id, lms_course_id)

    monkeypatch.setattr(backfill, "_active_jobs", stale_first_look)
    results: list = []
    errors: list = []

    def request_backfill() -> None:
        try:
            with bridge.session() as session:
                achievement = session.get(Achievement, achievement_id)
                job = start_backfill(
                    session, achievements=[achievement], trigger=BackfillTrigger.MANUAL
                )
                session.commit()
                results.append((job.id, job.joined))
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)

    threads = [threading.Thread(target=request_backfill) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len({job_id for job_id, _ in results}) == 1
    assert sorted(joined for _, joined in results) == [False, True, True]
    with bridge.session() as session:
        assert session.scalar(select(func.count(BackfillJob.id))) == 1


QUIZ_RULE = {
    "version": 1,
    "rule": {"kind": "activities_completed", "activity_ids": ["4001"], "match": "any"},
}


def test_rule_change_supersedes_manual_job(backend_course):
    """A rule change requests a stop of the badge's pending job and adds the active one."""
    from lti_tool.operations.achievements import edit_achievement
    from lti_tool.operations.backfills import (
        start_achievement_backfill,
        start_automatic_backfill,
    )

    bridge, achievement_id = backend_course
    with bridge.session() as session:
        achievement = session.get(Achievement, achievement_id)
        manual = start_achievement_backfill(session, "test", achievement)
        session.commit()
        manual_id = manual.id

    with bridge.session() as session:
        achievement = session.get(Achievement, achievement_id)
        fields = edit_achievement(
            session,
            "test",
            achievement,
            bridge=bridge,
            rule=QUIZ_RULE,
            skip_lms_check=True,
        )
        job, error = start_automatic_backfill(session, "test", achievement)
        session.commit()
        new_id = job.id

    assert fields == ["award_rule"]
    assert error is None
    with bridge.session() as session:
        older = session.get(BackfillJob, manual_id)
        newer = session.get(BackfillJob, new_id)
        assert older.cancel_requested
        assert older.active_achievement_id is None
        assert newer.trigger == BackfillTrigger.RULE_CHANGED.value
        assert newer.active_achievement_id == achievement_id
        assert session.get(Achievement, achievement_id).award_rule == QUIZ_RULE


def test_cancel_of_ended_job_rejected(backend_course):
    """Cancelling a finished job raises, naming its status, and records nothing."""
    from lti_tool.accounts import AuditEvent
    from lti_tool.operations.backfills import (
        BackfillNotActive,
        cancel_backfill,
        start_achievement_backfill,
    )

    bridge, achievement_id = backend_course
    with bridge.session() as session:
        achievement = session.get(Achievement, achievement_id)
        job = start_achievement_backfill(session, "test", achievement)
        job.status = BackfillStatus.DONE.value
        session.commit()

        with pytest.raises(BackfillNotActive, match="is already done") as raised:
            cancel_backfill(session, "test", job)
        session.rollback()

        assert raised.value.http_status == 409
        assert raised.value.code == "backfill_not_active"
        assert not session.get(BackfillJob, job.id).cancel_requested
        cancel_events = session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "backfill.cancel_requested"
            )
        )
        assert cancel_events == 0
