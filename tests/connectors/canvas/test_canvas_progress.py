"""Reading course requirements, grades and learner progress from the stand-in."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from badge_engine.facts import CompletionState
from badge_engine.rules import evaluate_award_rule
from connectors.canvas.errors import CanvasNotModuleBased, CanvasResponseInvalid
from connectors.canvas.progress import (
    REQUIREMENT_TYPES,
    parse_course_progress,
    read_completion_requirements,
    read_enrollment_grades,
    read_learner_progress,
)
from tests.connectors.canvas.conftest import COURSE_ID, load_fixture

DONE_AT = datetime(2025, 1, 1, 12, tzinfo=timezone.utc)


def test_completed_learner_progress(fake, make_client):
    """A learner with every requirement done reads as course completed, with its time."""
    fake.complete(COURSE_ID, 123, DONE_AT)

    progress = read_learner_progress(make_client(), str(COURSE_ID), "123")

    assert progress.course_completed is True
    assert progress.course_completed_at == DONE_AT


def test_incomplete_learner_progress(fake, make_client):
    """A learner with requirements left reads as not completed."""
    progress = read_learner_progress(make_client(), str(COURSE_ID), "124")

    assert progress.course_completed is False
    assert progress.course_completed_at is None


def test_course_without_requirements_explained(fake, make_client):
    """The 400 for a course without requirements names the instructor's fix."""
    fake.add_course(900, requirement_types=())
    fake.add_students(900, [123])

    with pytest.raises(CanvasNotModuleBased) as caught:
        read_learner_progress(make_client(), "900", "123")

    message = str(caught.value)
    assert "add completion requirements" in message
    assert "grade rules" in message
    assert caught.value.canvas_message


def test_requirements_of_every_type(make_client):
    """All six completion requirement types are listed for the rule builder."""
    requirements = read_completion_requirements(make_client(), str(COURSE_ID))

    assert tuple(r.requirement_type for r in requirements) == REQUIREMENT_TYPES
    thresholds = {r.requirement_type: r.threshold for r in requirements}
    assert thresholds["min_score"] == 7
    assert thresholds["min_percentage"] == 70
    assert thresholds["must_view"] is None


def test_enrollments_with_grades(fake, make_client):
    """Student enrollments come with their current and final scores."""
    fake.courses[COURSE_ID].students[123].current_score = 90.0

    grades = {
        g.lms_user_id: g for g in read_enrollment_grades(make_client(), str(COURSE_ID))
    }

    assert grades["123"].current_score == 90.0
    assert grades["124"].current_score is None


def test_fixture_progress_shapes():
    """The 200 fixture parses as complete; the 400 error object raises."""
    progress = parse_course_progress(
        load_fixture("rest_user_progress_200.json"), where="x"
    )

    assert progress.completed is True
    with pytest.raises(CanvasResponseInvalid, match="instead of progress counts"):
        parse_course_progress(
            load_fixture("rest_user_progress_400_not_module_based.json"), where="x"
        )


def test_error_object_in_200_rejected():
    """A count that is not a number raises CanvasResponseInvalid naming it."""
    with pytest.raises(CanvasResponseInvalid, match="requirement_count"):
        parse_course_progress({"requirement_count": None}, where="x")


def test_activities_by_module_item(fake, make_client):
    """Each requirement's state is keyed by its module item id."""
    done_item = fake.complete_item(COURSE_ID, 124, 1)

    progress = read_learner_progress(make_client(), str(COURSE_ID), "124")

    assert len(progress.activities) == len(REQUIREMENT_TYPES)
    assert progress.activities[str(done_item)].state is CompletionState.COMPLETE
    incomplete = [
        a for a in progress.activities.values() if a.state is CompletionState.INCOMPLETE
    ]
    assert len(incomplete) == len(REQUIREMENT_TYPES) - 1


def test_grades_as_percent(fake, make_client):
    """Item scores become percentages of points possible; the course score is current_score."""
    graded_at = datetime(2025, 1, 2, 8, tzinfo=timezone.utc)
    item_id = fake.grade(COURSE_ID, 124, 3, 8.0, graded_at)
    fake.courses[COURSE_ID].students[124].current_score = 75.5

    progress = read_learner_progress(make_client(), str(COURSE_ID), "124")

    assert progress.grades[str(item_id)].percent == 80.0
    assert progress.grades[str(item_id)].graded_at == graded_at
    assert progress.course_grade.percent == 75.5


def test_activity_rule_on_canvas_item(fake, make_client):
    """An activity_completed rule naming a Canvas module item id is met once it is done."""
    item_id = fake.complete_item(COURSE_ID, 124, 2)
    rule = {
        "version": 1,
        "rule": {"kind": "activity_completed", "activity_id": str(item_id)},
    }
    other = {
        "version": 1,
        "rule": {"kind": "activity_completed", "activity_id": str(item_id + 1)},
    }

    progress = read_learner_progress(make_client(), str(COURSE_ID), "124")

    assert evaluate_award_rule(rule, progress).met is True
    assert evaluate_award_rule(other, progress).met is False
