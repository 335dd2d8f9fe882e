"""The learner's "Still missing" steps, worded for the learner in each language."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from badge_engine.explain import COMPLETION_TIME, explain_award
from badge_engine.rules import GradeProgress, LearnerProgress
from lti_tool.views.explain_text import explanation_text
from lti_tool.views.step_text import describe_step, progress_grades

NBSP = "\u00a0"
NAMES = {"4001": "Final quiz", "4002": "Code of conduct"}
QUIZ_GRADE = {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 80}


def step(app, node, locale="en", grades=None):
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        description = describe_step(node, NAMES, grades)
    return html.unescape(description.text), [
        html.unescape(part.text) for part in description.parts
    ]


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"kind": "course_completed"}, "Complete the course."),
        (
            {"kind": "activity_completed", "activity_id": "4001"},
            "Complete “<bdi>Final quiz</bdi>”.",
        ),
        (
            {"kind": "activity_completed", "activity_id": "9"},
            'Complete activity <bdi dir="ltr">9</bdi>.',
        ),
        (
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002"],
                "match": "all",
            },
            "Complete all of these activities: “<bdi>Final quiz</bdi>”, "
            "“<bdi>Code of conduct</bdi>”.",
        ),
        (
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002"],
                "match": "any",
            },
            "Complete any one of these activities: “<bdi>Final quiz</bdi>”, "
            "“<bdi>Code of conduct</bdi>”.",
        ),
        (
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002"],
                "count": 2,
            },
            "Complete at least 2 of these activities: “<bdi>Final quiz</bdi>”, "
            "“<bdi>Code of conduct</bdi>”.",
        ),
        (QUIZ_GRADE, "Reach 80% or more in “<bdi>Final quiz</bdi>”."),
        (
            {"kind": "grade_at_least", "min_percent": 70},
            "Reach 70% or more in the course total.",
        ),
        (
            {"kind": "badge_held", "badge": "x"},
            "Meet a condition that this page cannot describe. Ask your course's "
            "instructor what it requires.",
        ),
    ],
)
def test_step_each_kind(app, node, expected):
    """Each rule node kind reads as a step the learner takes."""
    text, parts = step(app, node)

    assert text == expected
    assert parts == []


def test_step_combination_lists_parts(app):
    """A combination introduces its parts, each worded as a step."""
    node = {
        "kind": "any_of",
        "rules": [{"kind": "course_completed"}, QUIZ_GRADE],
    }

    text, parts = step(app, node)

    assert text == "Meet at least one of these conditions:"
    assert parts == [
        "Complete the course.",
        "Reach 80% or more in “<bdi>Final quiz</bdi>”.",
    ]


def test_step_window_follows(app):
    """A step with a date window ends with the window's sentence."""
    node = {"kind": "course_completed", "window": {"until": "2026-06-01T00:00:00Z"}}

    text, _parts = step(app, node)

    assert text.startswith("Complete the course. It counts only if met before")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Reach 80% or more in “<bdi>Final quiz</bdi>” (your grade now: 65%)."),
        (
            "fr",
            f"Atteindre 80{NBSP}% ou plus dans «{NBSP}<bdi>Final quiz</bdi>{NBSP}» "
            f"(votre note actuelle{NBSP}: 65{NBSP}%).",
        ),
        (
            "es",
            f"Alcanzar 80{NBSP}% o más en «<bdi>Final quiz</bdi>» "
            f"(su calificación actual: 65{NBSP}%).",
        ),
        (
            "ar",
            "الحصول على 80% أو أكثر في «<bdi>Final quiz</bdi>» (درجتك الحالية: 65%).",
        ),
    ],
)
def test_grade_step_gives_current_grade(app, locale, expected):
    """A grade step gives the learner's grade in the page language."""
    text, _parts = step(app, QUIZ_GRADE, locale, grades={"4001": 65.0})

    assert text == expected


def test_course_total_step_gives_grade(app):
    """A course total step gives the learner's course total when there is one."""
    node = {"kind": "grade_at_least", "min_percent": 70}

    text, _parts = step(app, node, grades={None: 62.5})

    assert text == "Reach 70% or more in the course total (your grade now: 62.5%)."


def test_grade_step_ignores_other_grades(app):
    """A grade of another activity is not given as the learner's grade."""
    text, _parts = step(app, QUIZ_GRADE, grades={"4002": 90.0, None: 75.0})

    assert text == "Reach 80% or more in “<bdi>Final quiz</bdi>”."


def test_progress_grades_skips_missing_percent(app):
    """Grades without a percentage are left out, and the course total is under None."""
    progress = LearnerProgress(
        course_completed=False,
        grades={
            "4001": GradeProgress(percent=65.0),
            "4002": GradeProgress(percent=None),
        },
        course_grade=GradeProgress(percent=71.0),
    )

    grades = progress_grades(progress)

    assert grades == {"4001": 65.0, None: 71.0}


def test_why_not_yet_step_gives_grade(app):
    """The "Why not yet?" missing list gives the grade the LMS reported."""
    progress = LearnerProgress(
        course_completed=False,
        grades={
            "4001": GradeProgress(
                percent=65.0, graded_at=datetime(2026, 1, 1, tzinfo=UTC)
            )
        },
    )
    explanation = explain_award(
        {"version": 1, "rule": QUIZ_GRADE},
        progress,
        read_at=datetime(2026, 1, 2, tzinfo=UTC),
        source="lms",
        activity_names=NAMES,
    )

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        worded = explanation_text(explanation)
    missing = [html.unescape(item.text) for item in worded.missing]

    assert missing == [
        "Reach 80% or more in “<bdi>Final quiz</bdi>” (your grade now: 65%)."
    ]


def test_completion_time_keeps_description(app):
    """A part missing only its LMS date is described, because nothing is left to do."""
    node = {
        "kind": COMPLETION_TIME,
        "rule": {"kind": "course_completed"},
        "window": {"from": "2025-01-01T00:00:00Z"},
    }

    text, parts = step(app, node)

    assert text.startswith("the LMS reports when the learner met this condition.")
    assert parts == ["the learner completes the course."]
