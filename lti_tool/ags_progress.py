"""A learner's AGS grades, read from the grade facts the AGS poll stored.

The poll is the read of the platform. Each grade fact contains the score a poll saw,
so the newest fact of each line item is the learner's current grade there.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import CompletionFactRecord
from badge_engine.facts import CompletionState
from badge_engine.rules import ActivityProgress, GradeProgress, LearnerProgress
from connectors.canvas.models import CanvasCredential
from connectors.models import LmsConnection, LmsKind
from lti_tool.models import AGS_ACTIVITY_PREFIX


def lms_api_available(session: Session, connection: LmsConnection) -> bool:
    """Return True when the bridge has REST API credentials for the connection.

    Moodle keeps its web service token on the connection and Canvas keeps its
    tokens in `canvas_credentials`. A connection with neither was registered by LTI
    only, and AGS is its one grade source.
    """
    if connection.kind == LmsKind.CANVAS.value:
        credential_id = session.scalar(
            select(CanvasCredential.id).where(
                CanvasCredential.provider_id == connection.provider_id,
                CanvasCredential.lms_connection_id == connection.id,
            )
        )
        return credential_id is not None

    return connection.api_token_encrypted is not None


def ags_grades(
    session: Session,
    *,
    provider_id: int,
    lms_connection_id: int,
    lms_course_id: str,
    lms_user_id: str,
) -> dict[str, GradeProgress]:
    """Return the learner's newest AGS grade of each line item in the course.

    Each grade is dated by the first poll that saw that score, which is the award
    date a grade rule on it gives.
    """
    rows = session.execute(
        select(
            CompletionFactRecord.activity_id,
            CompletionFactRecord.grade_percent,
            CompletionFactRecord.occurred_at,
        )
        .where(
            CompletionFactRecord.provider_id == provider_id,
            CompletionFactRecord.lms_connection_id == lms_connection_id,
            CompletionFactRecord.lms_course_id == lms_course_id,
            CompletionFactRecord.lms_user_id == lms_user_id,
            CompletionFactRecord.activity_id.startswith(AGS_ACTIVITY_PREFIX),
            CompletionFactRecord.grade_percent.is_not(None),
        )
        .order_by(CompletionFactRecord.id.desc())
    )
    grades: dict[str, GradeProgress] = {}
    for activity_id, percent, occurred_at in rows:
        grades.setdefault(activity_id, GradeProgress(percent, occurred_at))
    return grades


def learner_progress_from_ags(session: Session, fact) -> LearnerProgress:
    """Return progress holding only AGS grades, for a connection with no LMS API.

    Course completion is unknown without the API, so it is False and a rule on it
    is never met.
    """
    return merge_grades(
        LearnerProgress(course_completed=False), _fact_grades(session, fact)
    )


def with_ags_grades(
    session: Session, fact, progress: LearnerProgress
) -> LearnerProgress:
    """Return `progress` with the learner's AGS grades added beside the LMS's."""
    return merge_grades(progress, _fact_grades(session, fact))


def merge_grades(
    progress: LearnerProgress, grades: dict[str, GradeProgress]
) -> LearnerProgress:
    """Return `progress` with AGS grades added as grades and as completed activities.

    A line item with a score counts as completed, so an activity completion rule
    on it (the kind the instructor page builds) is met once the learner is graded.
    A grade rule on it compares the percentage.
    """
    if not grades:
        return progress

    graded = {
        activity_id: ActivityProgress(CompletionState.COMPLETE, grade.graded_at)
        for activity_id, grade in grades.items()
    }
    return dataclasses.replace(
        progress,
        grades={**progress.grades, **grades},
        activities={**progress.activities, **graded},
    )


def _fact_grades(session: Session, fact) -> dict[str, GradeProgress]:
    return ags_grades(
        session,
        provider_id=fact.provider_id,
        lms_connection_id=fact.lms_connection_id,
        lms_course_id=fact.lms_course_id,
        lms_user_id=fact.lms_user_id,
    )
