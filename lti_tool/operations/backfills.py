"""Backfill actions: start a job for an achievement, read its progress, cancel it.

A job runs on the Celery workers (`lti_tool.backfill.run_backfill`), never in the
request or command that starts it, unless the operator's command runs it in place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Achievement, Provider
from connectors.models import LmsConnection
from lti_tool.backfill import (
    ACTIVE,
    ROSTER_FACTORIES,
    BackfillError,
    BackfillJob,
    BackfillTrigger,
    job_summary,
    request_cancel,
    start_backfill,
)
from lti_tool.operations import ActionError, InvalidInput, NotFound, audit, iso
from lti_tool.operations.lms import check_connected

LIST_LIMIT_MAX = 100


def backfill_dict(session: Session, job: BackfillJob) -> dict[str, Any]:
    achievements = session.scalars(
        select(Achievement.public_id).where(
            Achievement.provider_id == job.provider_id,
            Achievement.id.in_(job.achievement_ids),
        )
    )
    return {
        "id": job.public_id,
        "course_id": job.lms_course_id,
        "achievements": sorted(achievements),
        "trigger": job.trigger,
        **job_summary(job),
        "cancel_requested": job.cancel_requested,
        "last_error": job.last_error,
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
    }


def start_achievement_backfill(
    session: Session,
    actor: str,
    achievement: Achievement,
    trigger: BackfillTrigger = BackfillTrigger.MANUAL,
    *,
    actor_detail: dict[str, Any] | None = None,
) -> BackfillJob:
    """Add a job for one achievement, or join its active one (`job.joined` set).

    `actor_detail` is added to the audit event's detail, such as the launch role
    of an LTI actor. The caller commits, then sends a job it added to the workers.
    """
    connection = session.scalar(
        select(LmsConnection).where(
            LmsConnection.provider_id == achievement.provider_id,
            LmsConnection.id == achievement.lms_connection_id,
        )
    )
    check_connected(connection)
    kind = connection.kind
    if kind not in ROSTER_FACTORIES:
        raise InvalidInput(
            f"LMS kind {kind!r} has no roster reader, so achievement "
            f"{achievement.public_id} cannot be backfilled; learners get it from "
            "their next completion event instead",
            code="no_roster_reader",
        )
    try:
        job = start_backfill(
            session,
            achievements=[achievement],
            trigger=trigger,
            requested_by=actor,
        )
    except BackfillError as error:
        raise InvalidInput(str(error), code="invalid_backfill") from None
    audit(
        session,
        actor,
        "backfill.joined" if job.joined else "backfill.started",
        provider_id=achievement.provider_id,
        target=f"backfill:{job.public_id}",
        detail={
            "achievement": achievement.public_id,
            "trigger": job.trigger,
            **(actor_detail or {}),
        },
    )

    return job


def start_automatic_backfill(
    session: Session,
    actor: str,
    achievement: Achievement,
    trigger: BackfillTrigger = BackfillTrigger.RULE_CHANGED,
    *,
    actor_detail: dict[str, Any] | None = None,
) -> tuple[BackfillJob | None, ActionError | None]:
    """Start the backfill that a new badge or a changed award rule calls for.

    Returns the job, or the error that kept it from starting, such as a
    disconnected LMS connection. The badge or its rule is kept either way, so the
    caller reports the error as a warning, commits, and sends a job it added.
    """
    try:
        job = start_achievement_backfill(
            session, actor, achievement, trigger=trigger, actor_detail=actor_detail
        )
    except ActionError as error:
        return None, error

    return job, None


def find_backfill(session: Session, public_id: str, provider_id: int) -> BackfillJob:
    job = session.scalar(
        select(BackfillJob).where(
            BackfillJob.provider_id == provider_id,
            BackfillJob.public_id == public_id,
        )
    )
    if job is None:
        raise NotFound(
            f"no backfill {public_id!r}; list the provider's backfills to find its id",
            code="backfill_not_found",
        )

    return job


def list_backfills(
    session: Session, provider: Provider, limit: int = 20
) -> list[BackfillJob]:
    """Return the provider's latest backfills, newest first."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput(
            f"limit must be from 1 to {LIST_LIMIT_MAX}, got {limit}",
            code="invalid_limit",
        )
    query = (
        select(BackfillJob)
        .where(BackfillJob.provider_id == provider.id)
        .order_by(BackfillJob.id.desc())
        .limit(limit)
    )

    return list(session.scalars(query))


class BackfillNotActive(ActionError):
    """The backfill to cancel has already ended: done, cancelled or failed."""

    code = "backfill_not_active"

    def __init__(self, job: BackfillJob) -> None:
        super().__init__(
            f"backfill {job.public_id} is already {job.status}, so there is nothing "
            "to cancel; the badges it issued stay issued"
        )
        self.status = job.status


def cancel_backfill(
    session: Session,
    actor: str,
    job: BackfillJob,
    *,
    actor_detail: dict[str, Any] | None = None,
) -> BackfillJob:
    """Ask the job to stop after its current page.

    Raises `BackfillNotActive`, and records nothing, when the job has already ended.
    `actor_detail` is added to the audit event's detail.
    """
    if job.status not in ACTIVE:
        raise BackfillNotActive(job)
    request_cancel(session, provider_id=job.provider_id, job_public_id=job.public_id)
    audit(
        session,
        actor,
        "backfill.cancel_requested",
        provider_id=job.provider_id,
        target=f"backfill:{job.public_id}",
        detail={"status": job.status, **(actor_detail or {})},
    )

    return job
