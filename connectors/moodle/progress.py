"""Read a learner's progress in a Moodle course, for award rule evaluation."""

from __future__ import annotations

from badge_engine.rules import ActivityProgress, LearnerProgress
from connectors.moodle.client import ActivityCompletion, MoodleClient


def read_learner_progress(
    client: MoodleClient, lms_course_id: str, lms_user_id: str
) -> LearnerProgress:
    """Re-read course and activity completion from Moodle, because an event is only
    a trigger.

    A course counts as completed only when Moodle reports it complete and no
    activity carries a teacher's override back to incomplete, because Moodle may
    keep a recorded course completion after such an override.
    NOTE: that Moodle keeps it is read from Moodle's completion code, not checked
    against a live site; the check is safe either way.

    Raises the client's typed errors (MoodleTokenInvalid, MoodleNoCompletionCriteria,
    MoodleUnavailable, ...).
    """
    status = client.get_course_completion_status(lms_course_id, lms_user_id)
    activities = client.get_activities_completion_status(lms_course_id, lms_user_id)

    overridden = overridden_to_incomplete(activities)
    completed = status.completed and not overridden
    return LearnerProgress(
        course_completed=completed,
        course_completed_at=status.time_completed if completed else None,
        activities={
            str(activity.cmid): ActivityProgress(
                state=activity.state, completed_at=activity.time_completed
            )
            for activity in activities
        },
    )


def overridden_to_incomplete(
    activities: list[ActivityCompletion],
) -> list[ActivityCompletion]:
    """Return the activities a teacher set back to incomplete (or failed)."""
    return [
        activity
        for activity in activities
        if activity.overridden_by is not None and not activity.state.counts_as_complete
    ]


def reversal_detail(activities: list[ActivityCompletion]) -> str:
    """Describe teacher overrides for the instructor who decides on a revocation."""
    parts = [
        f"course module {activity.cmid} set to {activity.state.value} by user "
        f"{activity.overridden_by}"
        for activity in overridden_to_incomplete(activities)
    ]
    return "; ".join(parts)
