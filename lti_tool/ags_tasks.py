"""Celery tasks that poll courses' AGS line items and results for grade facts.

The beat task starts one task per course with a stored AGS endpoint. Each course
task is safe to run twice, because line items are upserted and grade facts are
deduplicated. See `lti_tool.ags_poll` for when AGS is the grade source.
"""

from __future__ import annotations

import structlog
from celery import shared_task

from connectors.contacts import record_failure, record_success
from connectors.models import ContactSource
from lti_tool.ags_poll import client_for, load_course, poll_course, pollable_course_ids
from lti_tool.bridge import current_bridge
from lti_tool.logs import get_logger
from lti_tool.lti.ags import AgsError, AgsRateLimited
from lti_tool.tasks import dispatch, send_task_each

log = get_logger(__name__)

POLL_AGS_COURSES = "lti_tool.ags_tasks.poll_ags_courses"
POLL_AGS_COURSE = "lti_tool.ags_tasks.poll_ags_course"


@shared_task(name=POLL_AGS_COURSES)
def poll_ags_courses() -> int:
    """Start one AGS poll per course with an AGS endpoint; return how many started."""
    with current_bridge().session() as session:
        course_ids = pollable_course_ids(session)

    return send_task_each(POLL_AGS_COURSE, course_ids)


@shared_task(name=POLL_AGS_COURSE)
def poll_ags_course(course_id: int) -> str:
    """Read one course's line items and results and store new grade facts.

    Returns "done", "skipped" (no usable course), "rate_limited" or "failed". Facts
    stored before a failure are committed, because each is complete on its own and
    the next poll skips them as repeats.
    """
    bridge = current_bridge()
    structlog.contextvars.bind_contextvars(lti_course_id=course_id)

    with bridge.session() as session:
        target = load_course(session, course_id)
        if target is None or not target.course.ags_scopes:
            log.warning(
                "ags_poll_skipped",
                reason="course not found, without a connection, on a disconnected "
                "connection, or without AGS claim",
            )
            return "skipped"

        ids = dict(
            provider_id=target.course.provider_id,
            lms_connection_id=target.connection.id,
            registration=target.registration.public_id,
        )
        structlog.contextvars.bind_contextvars(**ids)
        with client_for(bridge, target) as client:
            try:
                result = poll_course(session, client, target)
            except AgsRateLimited as error:
                record_failure(
                    session, target.connection, ContactSource.AGS_POLL, error
                )
                session.commit()
                log.warning(
                    "ags_poll_rate_limited",
                    error=str(error),
                    retry_after=error.retry_after,
                    url=error.url,
                    status=error.status,
                )
                return "rate_limited"
            except AgsError as error:
                record_failure(
                    session, target.connection, ContactSource.AGS_POLL, error
                )
                session.commit()
                log.error(
                    "ags_poll_failed",
                    error=str(error),
                    error_type=type(error).__name__,
                    url=error.url,
                    status=error.status,
                )
                return "failed"
        record_success(session, target.connection, ContactSource.AGS_POLL)
        session.commit()

    log.info(
        "ags_poll_done",
        line_items=result.line_items,
        line_items_read=result.line_items_read,
        results_read=result.results_read,
        facts_new=result.facts_new,
        results_unmatched=result.unmatched,
    )
    dispatch(result.message_ids)
    return "done"
