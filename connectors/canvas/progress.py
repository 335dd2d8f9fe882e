"""Read a learner's progress in a Canvas course, for award rule evaluation.

Canvas counts a course complete when the learner meets every module completion
requirement (`must_view`, `must_submit`, `min_score`, `min_percentage`,
`must_mark_done`, `must_contribute`). Then `users/:id/progress` reports
`requirement_completed_count == requirement_count` and a `completed_at`, which
the `course_completed` award rule reads as it reads Moodle's course completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from badge_engine.facts import CompletionState
from badge_engine.rules import ActivityProgress, GradeProgress, LearnerProgress
from connectors.canvas.client import CanvasClient
from connectors.canvas.errors import CanvasEventInvalid, CanvasResponseInvalid
from connectors.canvas.events import parse_timestamp

REQUIREMENT_TYPES = (
    "must_view",
    "must_submit",
    "min_score",
    "min_percentage",
    "must_mark_done",
    "must_contribute",
)


@dataclass(frozen=True)
class CourseProgress:
    """One learner's `course_progress` counts as Canvas reports them."""

    requirement_count: int
    requirement_completed_count: int
    completed_at: datetime | None

    @property
    def completed(self) -> bool:
        return (
            self.completed_at is not None
            and self.requirement_count > 0
            and self.requirement_completed_count >= self.requirement_count
        )


@dataclass(frozen=True)
class CompletionRequirement:
    """One module item's completion requirement, for the rule builder.

    `threshold` is `min_score` or `min_percentage` where the type has one.
    """

    module_id: str
    module_name: str
    item_id: str
    item_title: str
    item_type: str
    requirement_type: str
    threshold: float | None


def parse_course_progress(body: Any, *, where: str) -> CourseProgress:
    """Check a progress object's shape; an error object or a wrong count raises.

    Raises:
        CanvasResponseInvalid: `body` is not a progress object with counts.
    """
    if not isinstance(body, dict) or "error" in body or "errors" in body:
        raise CanvasResponseInvalid(
            f"Canvas returned {body!r:.200} for {where} instead of progress counts; "
            f"check that the course has module completion requirements.",
            path=where,
        )
    counts = []
    for name in ("requirement_count", "requirement_completed_count"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CanvasResponseInvalid(
                f"Canvas returned {name}={value!r} for {where}; expected a count.",
                path=where,
            )
        counts.append(value)
    try:
        completed_at = parse_timestamp(
            body.get("completed_at"), f"{where} completed_at"
        )
    except CanvasEventInvalid as error:
        raise CanvasResponseInvalid(str(error), path=where) from None

    return CourseProgress(counts[0], counts[1], completed_at)


def read_learner_progress(
    client: CanvasClient, lms_course_id: str, lms_user_id: str
) -> LearnerProgress:
    """Re-read progress from Canvas, because an event is only a trigger.

    Reads course progress, each module item's requirement state, the enrollment's
    course score and the learner's submission scores (four requests, each paged).
    Activities and grades are keyed by module item id, the id award rules name.

    Raises the client's typed errors: CanvasNotModuleBased when the course has no
    module completion requirements (tell the instructor to add them or use grade
    rules), CanvasTokenInvalid, CanvasUnavailable, CanvasResponseInvalid.
    """
    where = f"courses/{lms_course_id}/users/{lms_user_id}/progress"
    body = client.get_user_progress(lms_course_id, lms_user_id)
    progress = parse_course_progress(body, where=where)
    modules = client.list_modules(lms_course_id, student_id=lms_user_id)
    enrollments = client.list_student_enrollments(lms_course_id, user_id=lms_user_id)
    submissions = client.list_student_submissions(lms_course_id, lms_user_id)

    return LearnerProgress(
        course_completed=progress.completed,
        course_completed_at=progress.completed_at if progress.completed else None,
        activities=activity_progress(modules),
        course_grade=course_grade(enrollments),
        grades=item_grades(modules, submissions),
    )


def activity_progress(modules: list) -> dict[str, ActivityProgress]:
    """Map each module item with a requirement to complete or incomplete.

    NOTE: Canvas reports no completion time per module item (only per module), so
    an activity rule's award date falls back to the triggering fact's time.
    """
    activities = {}
    for item in _items(modules):
        requirement = item.get("completion_requirement")
        if not isinstance(requirement, dict):
            continue
        state = (
            CompletionState.COMPLETE
            if requirement.get("completed") is True
            else CompletionState.INCOMPLETE
        )
        activities[str(item.get("id"))] = ActivityProgress(state=state)
    return activities


def course_grade(enrollments: list) -> GradeProgress | None:
    """Return the enrollment's `current_score`, a percentage that skips ungraded work.

    `current_score` matches Moodle's course total with empty grades excluded (the
    Moodle default); `final_score` would count ungraded work as zero. Canvas gives
    no grading time for it, so `graded_at` is None.
    """
    for enrollment in enrollments:
        grades = enrollment.get("grades") if isinstance(enrollment, dict) else None
        if isinstance(grades, dict):
            score = grades.get("current_score")
            percent = float(score) if isinstance(score, (int, float)) else None
            return GradeProgress(percent=percent)
    return None


def item_grades(modules: list, submissions: list) -> dict[str, GradeProgress]:
    """Map each graded module item to its score as a percentage of points possible.

    A module item of type Assignment or Quiz points at its assignment by
    `content_id`; a submission names its `assignment_id`.
    """
    by_assignment = {}
    for submission in submissions:
        if isinstance(submission, dict) and submission.get("assignment_id") is not None:
            by_assignment[str(submission["assignment_id"])] = submission

    grades = {}
    for item in _items(modules):
        submission = by_assignment.get(str(item.get("content_id")))
        if submission is None:
            continue
        points = (submission.get("assignment") or {}).get("points_possible")
        score = submission.get("score")
        percent = None
        if (
            isinstance(score, (int, float))
            and isinstance(points, (int, float))
            and points > 0
        ):
            percent = 100.0 * score / points
        try:
            graded_at = parse_timestamp(submission.get("graded_at"), "graded_at")
        except CanvasEventInvalid:
            graded_at = None
        grades[str(item.get("id"))] = GradeProgress(
            percent=percent, graded_at=graded_at
        )
    return grades


def _items(modules: list):
    for module in modules:
        if isinstance(module, dict):
            yield from (
                item for item in module.get("items") or [] if isinstance(item, dict)
            )


def read_completion_requirements(
    client: CanvasClient, lms_course_id: str
) -> list[CompletionRequirement]:
    """List every module item that carries a completion requirement, in course order.

    An empty list means that `users/:id/progress` returns 400 for this course, so
    the rule builder should tell the instructor to add requirements or use grade
    rules. Requirement types unknown to the bridge are listed under their Canvas
    name, so a new Canvas type shows up instead of vanishing.
    """
    requirements = []
    for module in client.list_modules(lms_course_id):
        for item in module.get("items") or []:
            requirement = item.get("completion_requirement")
            if not isinstance(requirement, dict) or "type" not in requirement:
                continue
            kind = requirement["type"]
            threshold = requirement.get("min_score", requirement.get("min_percentage"))
            requirements.append(
                CompletionRequirement(
                    module_id=str(module.get("id")),
                    module_name=str(module.get("name", "")),
                    item_id=str(item.get("id")),
                    item_title=str(item.get("title", "")),
                    item_type=str(item.get("type", "")),
                    requirement_type=kind,
                    threshold=float(threshold) if threshold is not None else None,
                )
            )
    return requirements


@dataclass(frozen=True)
class EnrollmentGrades:
    """A student's enrollment scores; None where Canvas has no score yet."""

    lms_user_id: str
    current_score: float | None
    final_score: float | None


def read_enrollment_grades(
    client: CanvasClient, lms_course_id: str
) -> list[EnrollmentGrades]:
    """Read the course's student enrollments with their `grades` scores."""
    result = []
    for enrollment in client.list_student_enrollments(lms_course_id):
        grades = enrollment.get("grades") or {}
        result.append(
            EnrollmentGrades(
                lms_user_id=str(enrollment.get("user_id")),
                current_score=grades.get("current_score"),
                final_score=grades.get("final_score"),
            )
        )
    return result
