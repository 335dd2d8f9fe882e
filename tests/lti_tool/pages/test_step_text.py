"""Award rules worded as the learner's steps, in each page language."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest

from badge_engine.explain import COMPLETION_TIME, explain_award
from badge_engine.rules import GradeProgress, LearnerProgress
from lti_tool.views.explain_text import explanation_text
from lti_tool.views.step_text import (
    describe_condition_step,
    describe_step,
    progress_grades,
)

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

    assert text == "Do one of these:"
    assert parts == [
        "Complete the course.",
        "Reach 80% or more in “<bdi>Final quiz</bdi>”.",
    ]


def test_step_window_follows(app):
    """A step with a date window ends with when to take it."""
    node = {"kind": "course_completed", "window": {"until": "2026-06-01T00:00:00Z"}}

    text, _parts = step(app, node)

    assert text.startswith(
        'Complete the course. Do this before <time datetime="2026-06-01T00:00:00+00:00">'
    )


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


def test_completion_time_says_date_missing(app):
    """A part missing only its LMS date reads as done but without a date."""
    node = {
        "kind": COMPLETION_TIME,
        "rule": {"kind": "course_completed"},
        "window": {"from": "2025-01-01T00:00:00Z"},
    }

    with app.test_request_context("/"):
        description = describe_step(node, NAMES)

    assert description.text == (
        "You have done this, but the LMS did not report when, so it cannot be "
        "checked against the dates below:"
    )
    assert [part.text for part in description.parts] == ["Complete the course."]
    assert description.window.startswith("Do this on or after <time")


NESTED = {
    "kind": "all_of",
    "rules": [
        {"kind": "course_completed"},
        {
            "kind": "any_of",
            "rules": [
                QUIZ_GRADE,
                {"kind": "activity_completed", "activity_id": "4002"},
            ],
        },
    ],
}


def test_step_nested_combinations(app):
    """Nested combinations introduce their parts as "Do all/one of these:"."""
    with app.test_request_context("/"):
        description = describe_step(NESTED, NAMES)
    course, choice = description.parts

    assert description.text == "Do all of these:"
    assert course.text == "Complete the course."
    assert course.parts == []
    assert choice.text == "Do one of these:"
    assert [html.unescape(part.text) for part in choice.parts] == [
        "Reach 80% or more in “<bdi>Final quiz</bdi>”.",
        "Complete “<bdi>Code of conduct</bdi>”.",
    ]


def test_nested_grade_gives_current_grade(app):
    """A grade step nested in combinations still gives the learner's grade."""
    with app.test_request_context("/"):
        description = describe_step(NESTED, NAMES, {"4001": 65.0})
    grade_step = description.parts[1].parts[0]

    assert html.unescape(grade_step.text) == (
        "Reach 80% or more in “<bdi>Final quiz</bdi>” (your grade now: 65%)."
    )


def words(markup: str) -> str:
    """Return the text without its tags, as a reader sees it."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (
            {"from": "2026-03-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"},
            r"Do this between March 1, 2026.* and May 1, 2026.*\.",
        ),
        ({"from": "2026-03-01T00:00:00Z"}, r"Do this on or after March 1, 2026.*\."),
        ({"until": "2026-05-01T00:00:00Z"}, r"Do this before May 1, 2026.*\."),
        (
            {"from": "not a date"},
            r"Do this within the dates the badge's award rule sets\.",
        ),
    ],
)
def test_step_window_each_bound(app, window, expected):
    """A window reads as when the learner has to take the step."""
    node = {"kind": "course_completed", "window": window}

    text, _parts = step(app, node)

    assert re.fullmatch("Complete the course. " + expected, words(text))


def test_step_combination_window_after_parts(app):
    """A combination's window follows its parts, not the colon before them."""
    node = {**NESTED, "window": {"until": "2026-05-01T00:00:00Z"}}

    with app.test_request_context("/"):
        description = describe_step(node, NAMES)

    assert description.text == "Do all of these:"
    assert len(description.parts) == 2
    assert words(description.window).startswith("Do this before May 1, 2026")


# The nested rule NESTED with a window from 1 March to 1 May 2026, in each page
# language: the combinations' introductions and the window's words around its times.
TRANSLATED_STEPS = {
    "fr": (
        f"Faire toutes ces étapes{NBSP}:",
        f"Faire l'une de ces étapes{NBSP}:",
        ("À faire entre le ", " et le "),
    ),
    "es": (
        "Hacer todos estos pasos:",
        "Hacer uno de estos pasos:",
        ("Hacerlo entre el ", " y el "),
    ),
    "ar": (
        "القيام بكل هذه الخطوات:",
        "القيام بخطوة واحدة من هذه الخطوات:",
        ("القيام بذلك بين ", " و"),
    ),
}


@pytest.mark.parametrize("locale", sorted(TRANSLATED_STEPS))
def test_step_combinations_translated(app, locale):
    """Combinations and windows read as the learner's steps in each language."""
    node = {
        **NESTED,
        "window": {"from": "2026-03-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"},
    }
    all_of, any_of, (before_start, before_end) = TRANSLATED_STEPS[locale]

    with app.test_request_context("/", headers={"Accept-Language": locale}):
        description = describe_step(node, NAMES)
    window = html.unescape(description.window)

    assert html.unescape(description.text) == all_of
    assert html.unescape(description.parts[1].text) == any_of
    assert window.startswith(before_start + "<time datetime=")
    assert "</time>" + before_end + "<time datetime=" in window
    assert window.endswith("</time>.")


@pytest.mark.parametrize(
    "node",
    [
        {"kind": "course_completed"},
        {"kind": "activity_completed", "activity_id": "4001"},
        {"kind": "activities_completed", "activity_ids": ["4001"], "match": "all"},
        {
            "kind": "activities_completed",
            "activity_ids": ["4001", "4002"],
            "match": "any",
        },
        {
            "kind": "activities_completed_at_least",
            "activity_ids": ["4001", "4002"],
            "count": 1,
        },
        QUIZ_GRADE,
        {"kind": "grade_at_least", "min_percent": 70},
        {**QUIZ_GRADE, "window": {"from": "2026-03-01T00:00:00Z"}},
    ],
)
def test_condition_step_matches_step(app, node):
    """A single condition reads as the same step as in "Still missing"."""
    with app.test_request_context("/"):
        condition = describe_condition_step(node, NAMES)
        missing = describe_step(node, NAMES)

    assert condition.text == missing.text
    assert condition.parts == []
    assert "learner" not in condition.text


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("all_of", "Do all of these:"), ("any_of", "Do one of these:")],
)
def test_condition_step_combination(app, kind, expected):
    """A combination as a condition has its introduction and window, not its parts."""
    node = {**NESTED, "kind": kind, "window": {"until": "2026-05-01T00:00:00Z"}}

    with app.test_request_context("/"):
        condition = describe_condition_step(node, NAMES)

    assert condition.text == expected
    assert condition.parts == []
    assert words(condition.window).startswith("Do this before May 1, 2026")


def test_condition_step_unknown_node(app):
    """A node this module cannot word becomes a step to ask the instructor."""
    with app.test_request_context("/"):
        condition = describe_condition_step("not a node", NAMES)

    assert "Ask your course's instructor" in html.unescape(condition.text)


def _missing(app, activity_ids, match, done=None):
    from lti_tool.views.pages import missing_steps

    rule = {
        "rule": {
            "kind": "activities_completed",
            "activity_ids": activity_ids,
            "match": match,
        }
    }
    with app.test_request_context("/"):
        steps = missing_steps(rule, NAMES, done)
    return [
        (html.unescape(item.text), [html.unescape(part.text) for part in item.parts])
        for item in steps
    ]


def test_missing_any_of_one_activity(app):
    """An any-match rule of one activity reads as that one step."""
    steps = _missing(app, ["4002"], "any")

    assert steps == [("Complete “<bdi>Code of conduct</bdi>”.", [])]


def test_missing_any_of_two_activities(app):
    """An any-match rule of two activities introduces them as a choice."""
    steps = _missing(app, ["4001", "4002"], "any")

    assert steps == [
        (
            "Complete one of these activities:",
            [
                "Complete “<bdi>Final quiz</bdi>”.",
                "Complete “<bdi>Code of conduct</bdi>”.",
            ],
        )
    ]


def test_missing_all_of_skips_done(app):
    """An all-match rule lists each activity not yet done as its own step."""
    steps = _missing(app, ["4001", "4002"], "all", done={"4001"})

    assert steps == [("Complete “<bdi>Code of conduct</bdi>”.", [])]
