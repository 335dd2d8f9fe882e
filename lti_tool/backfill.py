"""Backfill: issue an achievement to every enrolled learner who already earned it.

When a badge is created or its rule changes, events will not come again for learners
who finished long ago. A backfill job pages through the course's enrolled learners,
re-reads each one's progress from the LMS, evaluates the rules of the job's
achievements and issues in bulk.

Exactly once under crashes: each page is one transaction that writes the credentials,
their delivery messages and the job's cursor and counters together. A worker killed
mid-page loses only that uncommitted page. Its lease then runs out, the resume sweep
sends the job again, and the next worker redoes the page. Credentials committed before the
crash are found by their unique `live_key` and counted as already held. A job is
claimed under a lease with an owner token, so two workers never run the same page at
once.

A page issues in bulk (`badge_engine.bulk_issuing`): one lookup of held pairs, one
signing key, status list indexes reserved in blocks before the page transaction
opens, and multi-row inserts. Two jobs of one provider therefore run side by side
on two workers without waiting for each other's pages.

Progress and cancelling are stored on the job row for the instructor page:
`backfill_progress()` and `request_cancel()`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from celery import shared_task
from flask import current_app
from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, dialect_insert, utcnow
from badge_engine.bulk_issuing import AwardRequest, issue_credentials_in_bulk, live_keys
from badge_engine.issuing import live_key_of
from badge_engine.models import Achievement, Learner, Provider
from badge_engine.rules import (
    LearnerProgress,
    evaluate_validated_rule,
    validate_award_rule,
)
from badge_engine.status import StatusIndexPool
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.roster import EnrolledLearner, MoodleRoster, RosterPage
from lti_tool.bridge import Bridge, current_bridge
from lti_tool.logs import get_logger

log = get_logger(__name__)

RUN_BACKFILL = "lti_tool.backfill.run_backfill"
RESUME_BACKFILLS = "lti_tool.backfill.resume_backfills"


class BackfillStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


ACTIVE = (BackfillStatus.PENDING.value, BackfillStatus.RUNNING.value)


class BackfillTrigger(str, enum.Enum):
    ACHIEVEMENT_CREATED = "achievement_created"
    RULE_CHANGED = "rule_changed"
    MANUAL = "manual"


class BackfillJob(Base):
    """One backfill of a course's achievements, with its cursor and counters.

    Counters count (learner, achievement) pairs: `issued` new credentials,
    `already_held` pairs with a live credential, `not_met` pairs whose rule is not
    met, `rejected` pairs that cannot be issued as they stand (a learner without an
    email or LMS user id). `failed_reads` counts learners whose progress could not
    be read. The job goes on past both, and `last_error` contains the reasons.
    """

    __tablename__ = "backfill_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    achievement_ids: Mapped[list[int]] = mapped_column(JSON)
    trigger: Mapped[str] = mapped_column(String(30))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(12), default=BackfillStatus.PENDING.value
    )
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    next_offset: Mapped[int] = mapped_column(default=0)
    learners_seen: Mapped[int] = mapped_column(default=0)
    issued: Mapped[int] = mapped_column(default=0)
    already_held: Mapped[int] = mapped_column(default=0)
    not_met: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_reads: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The achievement of a single-achievement job until a stop is requested, else
    # NULL. A partial unique index keeps one such active job per achievement,
    # so concurrent requests for the same badge cannot add a second one.
    active_achievement_id: Mapped[int | None]

    # Set by `start_backfill` when a request joined this active job instead of
    # adding one; not stored.
    joined = False

    __table_args__ = (
        Index("ix_backfill_jobs_status_lease", "status", "lease_until"),
        Index(
            "uq_backfill_jobs_active_achievement",
            "active_achievement_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'running')"),
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )


class CourseRoster(Protocol):
    """The LMS reads a backfill needs: enrolled learners page by page, and progress."""

    def enrolled_learners(
        self, lms_course_id: str, offset: int, limit: int
    ) -> RosterPage: ...

    def read_progress(
        self, lms_course_id: str, lms_user_id: str
    ) -> LearnerProgress: ...


def _moodle_roster(bridge: Bridge, connection: LmsConnection) -> CourseRoster:
    from lti_tool.pipeline import moodle_client_for

    return MoodleRoster(moodle_client_for(bridge, connection))


# LMS kind -> factory; another connector adds itself with register_roster().
ROSTER_FACTORIES: dict[str, Callable[[Bridge, LmsConnection], CourseRoster]] = {
    LmsKind.MOODLE.value: _moodle_roster,
}


def register_roster(
    kind: str, factory: Callable[[Bridge, LmsConnection], CourseRoster]
) -> None:
    ROSTER_FACTORIES[kind] = factory


class BackfillError(ValueError):
    """A backfill request is invalid; the message names the value and the fix."""


# --- Functions for the instructor page ------------------------------------------


# Attempts to add a job when concurrent requests for the same achievements keep
# adding theirs first.
START_ATTEMPTS = 3


def start_backfill(
    session: Session,
    *,
    achievements: list[Achievement],
    trigger: BackfillTrigger,
    requested_by: str | None = None,
) -> BackfillJob:
    """Add a backfill job for achievements of one course, or join the running one.

    A manual request while an active job covers the same achievements returns that
    job with `joined` set, so repeated clicks show one job's progress. A new or
    changed rule instead requests a stop of older active jobs and adds a job. The caller
    commits, then calls `send_backfill(job.id)` for a job it added; the resume
    sweep sends it anyway if that call is lost.
    """
    if not achievements:
        raise BackfillError("no achievements given; pass the course's achievements")
    first = achievements[0]
    course = (first.provider_id, first.lms_connection_id, first.lms_course_id)
    for achievement in achievements:
        if (
            achievement.provider_id,
            achievement.lms_connection_id,
            achievement.lms_course_id,
        ) != course:
            raise BackfillError(
                f"achievement {achievement.id} is in another course than achievement "
                f"{first.id}; start one backfill per course"
            )

    ids = sorted(achievement.id for achievement in achievements)
    trigger = BackfillTrigger(trigger)
    for _attempt in range(START_ATTEMPTS):
        overlapping = [
            older
            for older in _active_jobs(session, first.provider_id, first.lms_course_id)
            if set(older.achievement_ids) & set(ids)
        ]
        if trigger is BackfillTrigger.MANUAL:
            for older in overlapping:
                if not older.cancel_requested and set(ids) <= set(
                    older.achievement_ids
                ):
                    older.joined = True
                    return older
        for older in overlapping:
            # A newer rule supersedes what the older job evaluates.
            _stop_claiming(older)

        job = BackfillJob(
            provider_id=first.provider_id,
            lms_connection_id=first.lms_connection_id,
            lms_course_id=first.lms_course_id,
            achievement_ids=ids,
            active_achievement_id=ids[0] if len(ids) == 1 else None,
            trigger=trigger.value,
            requested_by=requested_by,
        )
        try:
            # A savepoint, so losing the race keeps the caller's other changes.
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            # A concurrent request added the active job of this achievement and
            # committed first; the next attempt joins or supersedes it.
            log.info("backfill_start_raced", achievements=ids, trigger=trigger.value)
            continue
        return job

    raise BackfillError(
        f"backfills of achievements {ids} keep being started concurrently; "
        "try again in a moment"
    )


def _stop_claiming(job: BackfillJob) -> None:
    """Ask an active job to stop, and free its achievement for a new job."""
    job.cancel_requested = True
    job.active_achievement_id = None


def _active_jobs(session: Session, provider_id: int, lms_course_id: str):
    return session.scalars(
        select(BackfillJob).where(
            BackfillJob.provider_id == provider_id,
            BackfillJob.lms_course_id == lms_course_id,
            BackfillJob.status.in_(ACTIVE),
        )
    ).all()


def request_cancel(
    session: Session, *, provider_id: int, job_public_id: str
) -> BackfillJob:
    """Ask a job to stop after its current page; a job not started stops at once.

    Credentials issued before the cancel stay issued. The caller commits.
    """
    job = session.scalar(
        select(BackfillJob).where(
            BackfillJob.provider_id == provider_id,
            BackfillJob.public_id == job_public_id,
        )
    )
    if job is None:
        raise BackfillError(
            f"backfill {job_public_id!r} not found for provider {provider_id}; "
            "reload the page"
        )
    if job.status not in ACTIVE:
        return job
    _stop_claiming(job)
    if job.status == BackfillStatus.PENDING.value:
        job.status = BackfillStatus.CANCELLED.value
        job.finished_at = utcnow()
    return job


@dataclass(frozen=True)
class BackfillProgress:
    public_id: str
    status: str
    trigger: str
    achievement_ids: list[int]
    learners_seen: int
    issued: int
    already_held: int
    not_met: int
    rejected: int
    failed_reads: int
    cancel_requested: bool
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def backfill_progress(
    session: Session,
    *,
    provider_id: int,
    lms_course_id: str | None = None,
    limit: int = 20,
) -> list[BackfillProgress]:
    """Return the provider's latest backfills, newest first, for a progress table.

    NOTE: Moodle's enrolment list has no total count, so progress is the number of
    learners seen, not a percentage.
    """
    query = select(BackfillJob).where(BackfillJob.provider_id == provider_id)
    if lms_course_id is not None:
        query = query.where(BackfillJob.lms_course_id == lms_course_id)
    jobs = session.scalars(query.order_by(BackfillJob.id.desc()).limit(limit))
    return [
        BackfillProgress(
            public_id=job.public_id,
            status=job.status,
            trigger=job.trigger,
            achievement_ids=list(job.achievement_ids),
            learners_seen=job.learners_seen,
            issued=job.issued,
            already_held=job.already_held,
            not_met=job.not_met,
            rejected=job.rejected,
            failed_reads=job.failed_reads,
            cancel_requested=job.cancel_requested,
            last_error=job.last_error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )
        for job in jobs
    ]


def send_backfill(job_id: int) -> None:
    """Hand a committed job to the broker; a broker that is down costs only speed."""
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(RUN_BACKFILL, args=[job_id])
    except Exception as error:  # noqa: BLE001 - the resume sweep sends it again
        log.warning("backfill_send_failed", job_id=job_id, error=str(error))


# --- Running a job ----------------------------------------------------------------


def claim_job(
    session: Session, job_id: int, *, owner: str, lease_seconds: float
) -> bool:
    """Take a pending job, or a running one whose lease ran out, in one UPDATE."""
    now = utcnow()
    claimable = (BackfillJob.status == BackfillStatus.PENDING.value) | (
        (BackfillJob.status == BackfillStatus.RUNNING.value)
        & (BackfillJob.lease_until < now)
    )
    result = session.execute(
        update(BackfillJob)
        .where(
            BackfillJob.id == job_id, claimable, BackfillJob.cancel_requested.is_(False)
        )
        .values(
            status=BackfillStatus.RUNNING.value,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _end_cancelled_pending(session: Session, job_id: int) -> bool:
    """Mark a pending job with a cancel request as cancelled; return whether it was.

    `claim_job` never takes such a job, so a job superseded before it started would
    otherwise stay pending, and the resume sweep would send it again and again.
    """
    result = session.execute(
        update(BackfillJob)
        .where(
            BackfillJob.id == job_id,
            BackfillJob.status == BackfillStatus.PENDING.value,
            BackfillJob.cancel_requested.is_(True),
        )
        .values(status=BackfillStatus.CANCELLED.value, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _renew_lease(
    session: Session, job_id: int, owner: str, lease_seconds: float
) -> bool:
    """Extend our lease; False when another worker took the job over."""
    result = session.execute(
        update(BackfillJob)
        .where(
            BackfillJob.id == job_id,
            BackfillJob.lease_owner == owner,
            BackfillJob.status == BackfillStatus.RUNNING.value,
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


@dataclass
class _PageRead:
    page: RosterPage
    progress: dict[str, LearnerProgress | None]
    errors: list[str]


def _read_page(roster: CourseRoster, job: BackfillJob, page_size: int) -> _PageRead:
    """Read one page of learners and their progress, before any transaction opens."""
    page = roster.enrolled_learners(job.lms_course_id, job.next_offset, page_size)
    progress: dict[str, LearnerProgress | None] = {}
    errors = []
    for learner in page.learners:
        try:
            progress[learner.lms_user_id] = roster.read_progress(
                job.lms_course_id, learner.lms_user_id
            )
        except Exception as error:  # noqa: BLE001 - one learner must not stop the job
            progress[learner.lms_user_id] = None
            errors.append(
                f"learner {learner.lms_user_id}: {type(error).__name__}: {error}"
            )
    return _PageRead(page, progress, errors)


def learner_for(
    session: Session, job: BackfillJob, enrolled: EnrolledLearner
) -> Learner:
    learner = session.scalar(
        select(Learner).where(
            Learner.provider_id == job.provider_id,
            Learner.lms_connection_id == job.lms_connection_id,
            Learner.lms_user_id == enrolled.lms_user_id,
        )
    )
    if learner is not None:
        return learner

    learner = Learner(
        provider_id=job.provider_id,
        lms_connection_id=job.lms_connection_id,
        lms_user_id=enrolled.lms_user_id,
        name=enrolled.name,
        email=enrolled.email,
    )
    try:
        with session.begin_nested():
            session.add(learner)
            session.flush()
    except IntegrityError:
        # An event for the same learner created the row first; use theirs.
        return session.scalars(
            select(Learner).where(
                Learner.provider_id == job.provider_id,
                Learner.lms_connection_id == job.lms_connection_id,
                Learner.lms_user_id == enrolled.lms_user_id,
            )
        ).one()
    return learner


def ensure_learners(
    bridge: Bridge, job: BackfillJob, enrolled: list[EnrolledLearner]
) -> None:
    """Create the page's missing learner rows in a short transaction of their own.

    Inside the page's long transaction, an insert of a learner that another job or an
    event inserts at the same time would wait for that whole transaction to end. One
    multi-row INSERT that skips rows an event created first writes them all.
    """
    with bridge.session() as session:
        existing = _page_learners(session, job, enrolled, create=False)
        missing = {
            learner.lms_user_id: learner
            for learner in enrolled
            if learner.lms_user_id not in existing
        }
        if not missing:
            return
        now = utcnow()
        rows = [
            {
                "provider_id": job.provider_id,
                "lms_connection_id": job.lms_connection_id,
                "lms_user_id": learner.lms_user_id,
                "name": learner.name,
                "email": learner.email,
                "created_at": now,
            }
            for learner in missing.values()
        ]
        statement = dialect_insert(
            session.get_bind().dialect.name, Learner.__table__
        ).on_conflict_do_nothing(
            index_elements=["provider_id", "lms_connection_id", "lms_user_id"]
        )
        session.execute(statement, rows)
        session.commit()


def _page_learners(
    session: Session,
    job: BackfillJob,
    enrolled: list[EnrolledLearner],
    *,
    create: bool = True,
) -> dict[str, Learner]:
    user_ids = [learner.lms_user_id for learner in enrolled]
    rows = session.scalars(
        select(Learner).where(
            Learner.provider_id == job.provider_id,
            Learner.lms_connection_id == job.lms_connection_id,
            Learner.lms_user_id.in_(user_ids),
        )
    )
    learners = {row.lms_user_id: row for row in rows}
    if create:
        for learner in enrolled:
            if learner.lms_user_id not in learners:
                learners[learner.lms_user_id] = learner_for(session, job, learner)
    return learners


def _held_pairs(
    session: Session,
    job: BackfillJob,
    achievements: list[Achievement],
    learners,
) -> set[str]:
    """Return the live keys of the page's (achievement, learner) pairs."""
    keys = [
        live_key_of(achievement.id, learner.id)
        for achievement in achievements
        for learner in learners
    ]
    return live_keys(session, job.provider_id, keys)


def _write_page(
    session: Session,
    bridge: Bridge,
    job: BackfillJob,
    achievements: list[Achievement],
    read: _PageRead,
    status_indexes: StatusIndexPool,
) -> list[int]:
    """Issue what the page earned and advance the cursor; return delivery message ids."""
    from lti_tool.pipeline import queue_deliveries_in_bulk

    learners = _page_learners(session, job, read.page.learners)
    for achievement in achievements:
        validate_award_rule(achievement.award_rule)
    held_keys = _held_pairs(session, job, achievements, learners.values())
    requests = []
    for enrolled in read.page.learners:
        progress = read.progress[enrolled.lms_user_id]
        if progress is None:
            job.failed_reads += 1
            continue
        learner = learners[enrolled.lms_user_id]
        for achievement in achievements:
            # A live credential counts as held even when the learner no longer
            # meets the rule, such as after their LMS progress was reset.
            if live_key_of(achievement.id, learner.id) in held_keys:
                job.already_held += 1
                continue
            outcome = evaluate_validated_rule(achievement.award_rule, progress)
            if not outcome.met:
                job.not_met += 1
                continue
            requests.append(
                AwardRequest(
                    achievement=achievement,
                    learner=learner,
                    # Without an LMS time the backfill can only date the award now.
                    awarded_at=outcome.met_at or utcnow(),
                )
            )

    provider = session.get(Provider, job.provider_id)
    result = issue_credentials_in_bulk(
        session,
        vault=bridge.vault,
        base_url=bridge.settings.public_base_url,
        provider=provider,
        requests=requests,
        status_indexes=status_indexes,
    )
    job.issued += len(result.issued)
    job.already_held += len(result.already_held)
    job.rejected += len(result.rejected)
    errors = list(read.errors)
    for rejected in result.rejected:
        errors.append(
            f"achievement {rejected.request.achievement.id}: {rejected.reason}"
        )
        log.warning(
            "backfill_award_rejected",
            achievement_id=rejected.request.achievement.id,
            learner_id=rejected.request.learner.id,
            lms_user_id=rejected.request.learner.lms_user_id,
            reason=rejected.reason,
        )
    follow_ups = queue_deliveries_in_bulk(session, job.provider_id, result.issued)

    job.learners_seen += len(read.page.learners)
    job.next_offset += read.page.users_read
    if errors:
        job.last_error = "; ".join(errors)[-2000:]
    return follow_ups


def _page_award_bound(read: _PageRead, job: BackfillJob) -> int:
    """Return the most credentials the page can issue: readable learners x badges."""
    readable = sum(1 for progress in read.progress.values() if progress is not None)
    return readable * len(job.achievement_ids)


def run_job(
    bridge: Bridge, job_id: int, *, page_size: int | None = None, dispatch=None
) -> str:
    """Run a job page by page until it ends, is cancelled or is taken over.

    `page_size` is the learners per page (None: the `backfill_page_size` setting).
    `dispatch` sends delivery message ids after each commit (None: leave them to
    the outbox sweep). Returns the job's status when this call stopped.
    """
    page_size = page_size or bridge.settings.backfill_page_size
    owner = str(uuid.uuid4())
    lease_seconds = bridge.settings.outbox_lease_seconds
    with bridge.session() as session:
        claimed = claim_job(session, job_id, owner=owner, lease_seconds=lease_seconds)
        session.commit()
    if not claimed:
        with bridge.session() as session:
            cancelled = _end_cancelled_pending(session, job_id)
            session.commit()
        log.info("backfill_not_claimable", job_id=job_id, cancelled=cancelled)
        return "skipped"

    with bridge.session() as session:
        job = session.get(BackfillJob, job_id)
        if job.started_at is None:
            job.started_at = utcnow()
            session.commit()
        connection = session.scalar(
            select(LmsConnection).where(
                LmsConnection.id == job.lms_connection_id,
                LmsConnection.provider_id == job.provider_id,
            )
        )
        if connection.disconnected:
            return _fail(
                session,
                job,
                f"LMS connection {connection.public_id} was disconnected, so its "
                "learners cannot be read; connect the site again and start a new "
                "backfill",
            )
        factory = ROSTER_FACTORIES.get(connection.kind)
        if factory is None:
            return _fail(
                session, job, f"LMS kind {connection.kind!r} has no roster reader"
            )
        roster = factory(bridge, connection)

    status_indexes = StatusIndexPool(job.provider_id)
    structlog.contextvars.bind_contextvars(
        backfill_job_id=job_id, provider_id=job.provider_id
    )
    log.info(
        "backfill_started", offset=job.next_offset, achievement_ids=job.achievement_ids
    )
    while True:
        try:
            read = _read_page(roster, job, page_size)
        except Exception as error:  # noqa: BLE001 - the sweep retries after the lease
            with bridge.session() as session:
                job = session.get(BackfillJob, job_id)
                job.last_error = f"reading enrolled learners failed: {error}"[:2000]
                session.commit()
            log.warning("backfill_page_read_failed", error=str(error))
            return BackfillStatus.RUNNING.value

        ensure_learners(bridge, job, read.page.learners)
        with bridge.session() as session:
            # Reserved and committed before the page transaction opens, so another
            # worker of the provider does not wait for this page to get its indexes.
            status_indexes.reserve(session, _page_award_bound(read, job))
        with bridge.session() as session:
            if not _renew_lease(session, job_id, owner, lease_seconds):
                session.rollback()
                log.warning("backfill_lease_lost")
                return "taken_over"
            job = session.get(BackfillJob, job_id)
            if job.cancel_requested:
                job.status = BackfillStatus.CANCELLED.value
                job.finished_at = utcnow()
                job.lease_owner = None
                session.commit()
                log.info("backfill_cancelled", learners_seen=job.learners_seen)
                return job.status
            achievements = _job_achievements(session, job)
            follow_ups = _write_page(
                session, bridge, job, achievements, read, status_indexes
            )
            if read.page.is_last:
                job.status = BackfillStatus.DONE.value
                job.finished_at = utcnow()
                job.lease_owner = None
            session.commit()
            session.expunge(job)

        if dispatch is not None and follow_ups:
            dispatch(follow_ups)
        if job.status == BackfillStatus.DONE.value:
            log.info(
                "backfill_done",
                learners_seen=job.learners_seen,
                issued=job.issued,
                already_held=job.already_held,
            )
            return job.status


def _job_achievements(session: Session, job: BackfillJob) -> list[Achievement]:
    return list(
        session.scalars(
            select(Achievement)
            .where(
                Achievement.provider_id == job.provider_id,
                Achievement.id.in_(job.achievement_ids),
            )
            .order_by(Achievement.id)
        )
    )


def _fail(session: Session, job: BackfillJob, reason: str) -> str:
    job.status = BackfillStatus.FAILED.value
    job.last_error = reason
    job.finished_at = utcnow()
    session.commit()
    log.error("backfill_failed", job_id=job.id, error=reason)
    return job.status


def stalled_job_ids(
    session: Session, *, pending_after_seconds: float = 30.0
) -> list[int]:
    """Return jobs no worker holds: running with an expired lease, or pending a while."""
    now = utcnow()
    query = select(BackfillJob.id).where(
        (
            (BackfillJob.status == BackfillStatus.RUNNING.value)
            & (BackfillJob.lease_until < now)
        )
        | (
            (BackfillJob.status == BackfillStatus.PENDING.value)
            & (BackfillJob.created_at < now - timedelta(seconds=pending_after_seconds))
        )
    )
    return list(session.scalars(query.limit(100)))


# --- Celery tasks -----------------------------------------------------------------


@shared_task(name=RUN_BACKFILL)
def run_backfill(job_id: int) -> str:
    from lti_tool.tasks import dispatch

    return run_job(current_bridge(), job_id, dispatch=dispatch)


@shared_task(name=RESUME_BACKFILLS)
def resume_backfills() -> int:
    """Send jobs whose worker died (or whose first send was lost) again."""
    bridge = current_bridge()
    with bridge.session() as session:
        ids = stalled_job_ids(
            session,
            pending_after_seconds=max(10.0, bridge.settings.outbox_sweep_seconds * 6),
        )
    for job_id in ids:
        send_backfill(job_id)
    if ids:
        log.info("backfill_resume_sent", job_ids=ids)
    return len(ids)


def job_summary(job: BackfillJob) -> dict[str, Any]:
    return {
        "status": job.status,
        "learners_seen": job.learners_seen,
        "issued": job.issued,
        "already_held": job.already_held,
        "not_met": job.not_met,
        "rejected": job.rejected,
        "failed_reads": job.failed_reads,
    }


def register(app) -> None:
    """Schedule the resume sweep; importing this module registered the tasks."""
    celery = app.extensions["celery"]
    interval = max(5.0, app.extensions["hpass"].settings.outbox_sweep_seconds)
    celery.conf.beat_schedule["resume-backfills"] = {
        "task": RESUME_BACKFILLS,
        "schedule": interval,
    }
