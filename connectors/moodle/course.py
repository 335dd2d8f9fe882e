"""Read a Moodle course's activities for the instructor's award rule builder."""

from __future__ import annotations

from connectors.moodle.client import CourseModule, MoodleClient
from connectors.moodle.conversions import CompletionTracking


def list_rule_activities(client: MoodleClient, course_id: int) -> list[CourseModule]:
    """List the course's activities that track completion, in course order.

    An award rule can only depend on an activity whose completion Moodle records,
    so modules without completion tracking are left out.
    """
    return [
        module
        for module in client.get_course_contents(course_id)
        if module.completion != CompletionTracking.NONE
    ]
