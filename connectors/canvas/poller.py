"""Reconcile a Canvas course: read every learner's progress, store missed completions.

Live Events can be lost, so a scheduled poll reads `bulk_user_progress` page by
page and stores a completion fact for each learner Canvas reports complete. The
facts deduplicate with those from events. Each page is committed with the cursor
that points at the next one, so a run stopped by throttling or a revoked token
resumes where it stopped and nothing is counted twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.facts import CompletionFact, CompletionState, FactSource
from connectors.canvas.client import CanvasClient
from connectors.canvas.errors import (
    CanvasError,
    CanvasEventInvalid,
    CanvasResponseInvalid,
    CanvasTokenInvalid,
    CanvasUnavailable,
)
from connectors.canvas.facts import store_completion_fact
from connectors.canvas.ids import local_id
from connectors.canvas.models import CanvasPollCursor
from connectors.canvas.progress import parse_course_progress
from connectors.models import LmsConnection
from connectors.poll_cursors import course_cursor

logger = logging.getLogger(__name__)


@dataclass
class PollReport:
    """Counts of one reconciliation run; `error` is set when the run stopped early."""

    pages: int = 0
    learners: int = 0
    completed: int = 0
    new_facts: int = 0
    skipped: int = 0
    finished: bool = False
    error: CanvasError | None = None
    message_ids: list[int] = field(default_factory=list)


def reconcile_course(
    session: Session,
    client: CanvasClient,
    connection: LmsConnection,
    lms_course_id: str,
    *,
    home_shard: int | None = None,
) -> PollReport:
    """Read the course's `bulk_user_progress` from the cursor on, committing per page.

    Returns a report whose `message_ids` the caller dispatches. A run that Canvas
    keeps throttling or that loses its token stops with `error` set and the cursor
    on the unread page; CanvasTokenInvalid is also re-raised after the commit, so
    the caller marks the connection broken.
    """
    cursor = _cursor(session, connection, lms_course_id)
    if cursor.next_page_url is None:
        cursor.run_started_at = utcnow()
        cursor.pages_read = 0
        cursor.learners_read = 0
    session.commit()

    report = PollReport()
    try:
        for page in client.iter_bulk_user_progress(lms_course_id, cursor.next_page_url):
            _store_page(
                session, connection, lms_course_id, page.items, home_shard, report
            )
            report.pages += 1
            cursor.pages_read += 1
            cursor.learners_read += len(page.items)
            cursor.next_page_url = page.next_url
            session.commit()
    except (CanvasUnavailable, CanvasTokenInvalid, CanvasResponseInvalid) as error:
        session.rollback()
        report.error = error
        logger.warning(
            "Canvas reconciliation stopped, resuming from the cursor next time: "
            "provider_id=%s connection_id=%s course_id=%s pages=%d error=%s",
            connection.provider_id,
            connection.id,
            lms_course_id,
            report.pages,
            type(error).__name__,
        )
        if isinstance(error, CanvasTokenInvalid):
            raise
        return report

    cursor.next_page_url = None
    cursor.last_finished_at = utcnow()
    session.commit()
    report.finished = True
    logger.info(
        "Canvas reconciliation finished: provider_id=%s connection_id=%s course_id=%s "
        "pages=%d learners=%d completed=%d new_facts=%d skipped=%d",
        connection.provider_id,
        connection.id,
        lms_course_id,
        report.pages,
        report.learners,
        report.completed,
        report.new_facts,
        report.skipped,
    )
    return report


def _cursor(
    session: Session, connection: LmsConnection, lms_course_id: str
) -> CanvasPollCursor:
    return course_cursor(
        session,
        CanvasPollCursor,
        connection,
        lms_course_id,
        pages_read=0,
        learners_read=0,
    )


def _store_page(
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    items: list,
    home_shard: int | None,
    report: PollReport,
) -> None:
    for entry in items:
        report.learners += 1
        try:
            user_id = local_id(
                (entry or {}).get("id"), field="id", home_shard=home_shard
            )
            progress = parse_course_progress(
                entry.get("progress"), where=f"bulk_user_progress user {user_id}"
            )
        except (CanvasEventInvalid, CanvasResponseInvalid, AttributeError) as error:
            report.skipped += 1
            logger.warning(
                "Skipping a bulk_user_progress entry: provider_id=%s connection_id=%s "
                "course_id=%s error=%s",
                connection.provider_id,
                connection.id,
                lms_course_id,
                error,
            )
            continue
        if not progress.completed:
            continue

        report.completed += 1
        fact = CompletionFact(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id=lms_course_id,
            lms_user_id=user_id,
            activity_id=None,
            state=CompletionState.COMPLETE,
            occurred_at=progress.completed_at,
            source=FactSource.POLL,
            raw_payload={"id": entry.get("id"), "progress": entry.get("progress")},
        )
        stored = store_completion_fact(session, fact)
        if stored.created:
            report.new_facts += 1
            report.message_ids.append(stored.message_id)
