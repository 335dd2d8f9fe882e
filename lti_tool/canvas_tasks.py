"""Celery tasks that reconcile Canvas connections with a scheduled poll.

Live Events can be lost, so each Canvas connection that is not broken is polled
course by course (the courses its achievements name) through
`bulk_user_progress`. Each course's cursor makes a stopped run resume.
"""

from __future__ import annotations

import structlog
from celery import shared_task
from sqlalchemy import select

from badge_engine.models import Achievement
from connectors.canvas.connection import client_for_connection, mark_broken
from connectors.canvas.errors import CanvasError, CanvasTokenInvalid
from connectors.canvas.models import CanvasCredential
from connectors.canvas.poller import reconcile_course
from connectors.contacts import record_failure, record_success
from connectors.models import ContactSource, LmsKind
from lti_tool.bridge import current_bridge
from lti_tool.logs import get_logger
from lti_tool.tasks import (
    dispatch,
    polled_connection,
    polled_connection_ids,
    send_task_each,
)

log = get_logger(__name__)

POLL_CANVAS_CONNECTIONS = "lti_tool.canvas_tasks.poll_canvas_connections"
POLL_CANVAS_CONNECTION = "lti_tool.canvas_tasks.poll_canvas_connection"


@shared_task(name=POLL_CANVAS_CONNECTIONS)
def poll_canvas_connections() -> int:
    """Start one reconciliation per Canvas connection that is OK."""
    return send_task_each(
        POLL_CANVAS_CONNECTION, polled_connection_ids(LmsKind.CANVAS.value)
    )


@shared_task(name=POLL_CANVAS_CONNECTION)
def poll_canvas_connection(connection_id: int) -> str:
    """Reconcile every course of one Canvas connection that has an achievement.

    Safe to run twice: facts are deduplicated and each course's cursor only moves
    forward. Rejected credentials mark the connection broken, which stops its
    polls until the provider admin reconnects.
    """
    bridge = current_bridge()
    structlog.contextvars.bind_contextvars(connection_id=connection_id)
    message_ids: list[int] = []
    with bridge.session() as session:
        connection = polled_connection(session, connection_id, LmsKind.CANVAS.value)
        if connection is None:
            log.warning("canvas_poll_skipped", reason="not a polled Canvas connection")
            return "skipped"
        structlog.contextvars.bind_contextvars(provider_id=connection.provider_id)

        course_ids = session.scalars(
            select(Achievement.lms_course_id)
            .where(
                Achievement.provider_id == connection.provider_id,
                Achievement.lms_connection_id == connection.id,
            )
            .distinct()
            .order_by(Achievement.lms_course_id)
        ).all()
        home_shard = session.scalar(
            select(CanvasCredential.home_shard).where(
                CanvasCredential.provider_id == connection.provider_id,
                CanvasCredential.lms_connection_id == connection.id,
            )
        )
        outcome = "done"
        stop_error = None
        try:
            client = client_for_connection(
                session, bridge.vault, connection, policy=bridge.outbound_policy
            )
            for course_id in course_ids:
                report = reconcile_course(
                    session, client, connection, course_id, home_shard=home_shard
                )
                message_ids += report.message_ids
                if not report.finished:
                    outcome = "partial"
                    stop_error = report.error or stop_error
        except CanvasTokenInvalid as error:
            session.rollback()
            mark_broken(connection, error)
            outcome = "broken"
            stop_error = error
        except CanvasError as error:
            session.rollback()
            log.warning("canvas_poll_failed", error=str(error))
            outcome = "failed"
            stop_error = error
        if stop_error is not None:
            record_failure(session, connection, ContactSource.POLL, stop_error)
        elif course_ids:
            # A connection without achievements was not read, so it was not reached.
            record_success(session, connection, ContactSource.POLL)
        session.commit()

    log.info("canvas_poll_done", outcome=outcome, courses=len(course_ids))
    dispatch(message_ids)
    return outcome
