"""The award pipeline's re-read of a Canvas learner, with Canvas errors mapped.

`lti_tool.pipeline._read_progress` calls `read_canvas_progress` for a Canvas
connection. Canvas errors become the pipeline's RetryLater and GiveUp here, so
the pipeline's own error handling stays the Moodle one.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from badge_engine.facts import CompletionState
from badge_engine.models import CompletionFactRecord
from badge_engine.rules import LearnerProgress
from connectors.canvas.connection import client_for_connection, mark_broken
from connectors.canvas.errors import (
    CanvasError,
    CanvasNotModuleBased,
    CanvasScopeMissing,
    CanvasTokenInvalid,
    CanvasUnavailable,
)
from connectors.canvas.progress import read_learner_progress
from connectors.contacts import record_failure
from connectors.models import ContactSource, LmsConnection
from lti_tool.bridge import Bridge
from lti_tool.logs import get_logger
from lti_tool.pipeline import GiveUp, RetryLater

log = get_logger(__name__)


def read_canvas_progress(
    bridge: Bridge, connection: LmsConnection, fact: CompletionFactRecord
) -> LearnerProgress:
    """Re-read the learner's course progress from Canvas.

    The completion time is the earliest one Canvas reported for this learner and
    course, in a stored event or poll fact or in the re-read. Canvas may send
    course_completed again with a later `completed_at`, and the award date is the
    first completion. Stored facts come only from authenticated events and polls.
    """
    session = object_session(fact)
    timeout = bridge.settings.http_timeout_seconds
    ids = dict(
        connection_id=connection.id, fact_id=fact.id, provider_id=fact.provider_id
    )
    try:
        client = client_for_connection(
            session,
            bridge.vault,
            connection,
            policy=bridge.outbound_policy,
            timeout=(3.05, timeout),
            max_retries=3,
        )
        progress = read_learner_progress(client, fact.lms_course_id, fact.lms_user_id)
    except (CanvasTokenInvalid, CanvasScopeMissing) as error:
        mark_broken(connection, error)
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        log.error("canvas_token_invalid", **ids)
        raise RetryLater(str(error), retry_after=timedelta(hours=1)) from None
    except CanvasUnavailable as error:
        retry_after = (
            timedelta(seconds=error.retry_after) if error.retry_after else None
        )
        # The outbox rolls this transaction back, so the failure is committed here.
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error), retry_after=retry_after) from None
    except CanvasNotModuleBased as error:
        # Retrying cannot help until the instructor adds module requirements, so
        # the message waits for a person with the instructions in its error.
        log.warning("canvas_course_not_module_based", **ids)
        raise GiveUp(str(error)) from None
    except CanvasError as error:
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error)) from None

    # A refresh during the re-read updated the stored tokens; keep them.
    session.flush()
    if not progress.course_completed:
        return progress

    first = session.scalar(
        select(func.min(CompletionFactRecord.occurred_at)).where(
            CompletionFactRecord.provider_id == fact.provider_id,
            CompletionFactRecord.lms_connection_id == fact.lms_connection_id,
            CompletionFactRecord.lms_course_id == fact.lms_course_id,
            CompletionFactRecord.lms_user_id == fact.lms_user_id,
            CompletionFactRecord.activity_id.is_(None),
            CompletionFactRecord.state == CompletionState.COMPLETE.value,
        )
    )
    completed_at = progress.course_completed_at
    if first is not None and (completed_at is None or first < completed_at):
        completed_at = first
    return LearnerProgress(
        course_completed=True,
        course_completed_at=completed_at,
        activities=progress.activities,
    )
