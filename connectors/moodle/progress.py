"""Read a learner's progress in a Moodle course, for award rule evaluation."""

from __future__ import annotations

from badge_engine.rules import ActivityProgress, LearnerProgress
from connectors.moodle.client import MoodleClient


def read_learner_progress(
    client: MoodleClient, lms_course_id: str, lms_user_id: str
) -> LearnerProgress:
    """Re-read course completion from Moodle: an event is a trigger, this is the truth.

    Raises the client's typed errors (MoodleTokenInvalid, MoodleNoCompletionCriteria,
    MoodleUnavailable, ...).
    """
    status = client.get_course_completion_status(lms_course_id, lms_user_id)
    return LearnerProgress(
        course_completed=status.completed,
        course_completed_at=status.time_completed,
        activities={},
    )


__all__ = ["read_learner_progress", "ActivityProgress"]
