"""Award rules described in the page language on the course pages."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement
from lti_tool.views.rule_text import describe_rule

from .conftest import launch_as

NAMES = {"4001": "Final quiz", "4002": "Code of conduct", "ags-7": "Essay"}


def describe(app, award_rule, locale="en", names=NAMES):
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        description = describe_rule(award_rule, names)
    # Entities are unescaped so that apostrophes read as typed. Tags such as <bdi> stay.
    return html.unescape(description.text), [
        html.unescape(part.text) for part in description.parts
    ]


def rule(node: dict) -> dict:
    return {"version": 1, "rule": node}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"kind": "course_completed"}, "the learner completes the course."),
        (
            {"kind": "activity_completed", "activity_id": "4001"},
            "the learner completes “<bdi>Final quiz</bdi>”.",
        ),
        (
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002"],
                "match": "all",
                "window": {"from": "2025-01-01T00:00:00Z"},
            },
            "the learner completes all 2 of these activities: "
            "“<bdi>Final quiz</bdi>”, “<bdi>Code of conduct</bdi>”.",
        ),
        (
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002", "4003"],
                "match": "any",
                "window": {"from": "2025-01-01T00:00:00Z"},
            },
            "the learner completes any one of these 3 activities: "
            "“<bdi>Final quiz</bdi>”, “<bdi>Code of conduct</bdi>”, "
            'activity <bdi dir="ltr">4003</bdi>.',
        ),
        (
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002", "4003"],
                "count": 2,
            },
            "the learner completes at least 2 of these 3 activities: "
            "“<bdi>Final quiz</bdi>”, “<bdi>Code of conduct</bdi>”, "
            'activity <bdi dir="ltr">4003</bdi>.',
        ),
        (
            {"kind": "grade_at_least", "min_percent": 70},
            "the learner's course total is at or above 70%.",
        ),
        (
            {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 82.5},
            "the learner's grade in “<bdi>Final quiz</bdi>” is at or above 82.5%.",
        ),
    ],
)
def test_describe_each_kind(app, node, expected):
    """Each rule kind reads as a sentence that names the activities."""
    text, parts = describe(app, rule(node))

    assert text.startswith(expected)
    assert parts == []
    assert node["kind"] not in text


def test_describe_single_activity_set(app):
    """A set of one activity reads as that activity alone."""
    node = {
        "kind": "activities_completed",
        "activity_ids": ["4002"],
        "match": "any",
        "window": {"until": "2026-01-01T00:00:00Z"},
    }

    text, _ = describe(app, rule(node))

    assert text.startswith("the learner completes “<bdi>Code of conduct</bdi>”.")


def test_describe_builder_rule_keeps_flat_list(app):
    """A rule the builder wrote keeps its one-line list with the grade inline."""
    node = {
        "kind": "all_of",
        "rules": [
            {"kind": "activities_completed", "activity_ids": ["4001"], "match": "all"},
            {"kind": "grade_at_least", "activity_id": "ags-7", "min_percent": 60},
        ],
    }

    text, parts = describe(app, rule(node))

    assert text == (
        "the learner completes all of: Final quiz, Essay (grade of at least 60%)."
    )
    assert parts == []


def test_describe_combination_nests_parts(app):
    """all_of and any_of describe each nested rule as a part, in order."""
    node = {
        "kind": "all_of",
        "rules": [
            {"kind": "course_completed"},
            {
                "kind": "any_of",
                "rules": [
                    {
                        "kind": "grade_at_least",
                        "activity_id": "4001",
                        "min_percent": 80,
                    },
                    {"kind": "activity_completed", "activity_id": "4002"},
                ],
            },
        ],
    }

    with app.test_request_context("/"):
        description = describe_rule(rule(node), NAMES)

    assert description.text == "the learner meets every one of these conditions:"
    assert [str(part.text) for part in description.parts] == [
        "the learner completes the course.",
        "the learner meets at least one of these conditions:",
    ]
    nested = description.parts[1].parts
    assert [str(part.text) for part in nested] == [
        "the learner's grade in “<bdi>Final quiz</bdi>” is at or above 80%.",
        "the learner completes “<bdi>Code of conduct</bdi>”.",
    ]


def test_describe_window_with_time_elements(app):
    """A date window is a second sentence with machine-readable times."""
    node = {
        "kind": "course_completed",
        "window": {"from": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    }

    text, _ = describe(app, rule(node))

    assert text.startswith(
        "the learner completes the course. It counts only if met from"
    )
    assert '<time datetime="2025-01-01T00:00:00+00:00">' in text
    assert '<time datetime="2026-01-01T00:00:00+00:00">' in text
    assert "and before" in text


@pytest.mark.parametrize(
    "window",
    [{"until": "not a date"}, {"from": "2025-01-01T00:00:00"}, "2025", {}],
)
def test_describe_window_unreadable_bound(app, window):
    """A window bound without a readable time and zone still states that a window applies."""
    text, _ = describe(app, rule({"kind": "course_completed", "window": window}))

    assert text.endswith("It counts only if met within a date window.")
    assert "<time" not in text


@pytest.mark.parametrize(
    "award_rule",
    [
        rule({"kind": "badge_of_honour"}),
        rule({"kind": "activity_completed"}),
        rule({"kind": "activities_completed", "activity_ids": "4001"}),
        rule({"kind": "activities_completed_at_least", "activity_ids": ["4001"]}),
        rule({"kind": "grade_at_least", "min_percent": "high"}),
        rule({"kind": "grade_at_least", "min_percent": 50, "activity_id": 4001}),
        rule({"kind": "all_of", "rules": []}),
        rule({"kind": "any_of", "rules": ["course_completed"]}),
        rule({}),
        {"version": 1},
        {"version": 1, "rule": "course_completed"},
        None,
    ],
)
def test_describe_unknown_or_malformed(app, award_rule):
    """An unknown kind or a malformed node gets the general sentence, never raw text."""
    with app.test_request_context("/"):
        description = describe_rule(award_rule, NAMES)
    texts = [str(description.text)] + [str(part.text) for part in description.parts]

    assert any("cannot describe" in text for text in texts)
    assert not any("badge_of_honour" in text for text in texts)
    assert not any("course_completed" in text for text in texts)


def test_describe_escapes_activity_names(app):
    """Activity names from the LMS are escaped inside the description."""
    names = {"4001": '<img src=x onerror="alert(1)">'}

    with app.test_request_context("/"):
        text = str(
            describe_rule(
                rule({"kind": "activity_completed", "activity_id": "4001"}), names
            ).text
        )

    assert "<img" not in text
    assert "&lt;img" in text


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "l'apprenant termine au moins 2 de ces 3 activités"),
        ("es", "el estudiante completa al menos 2 de estas 3 actividades"),
        ("ar", "يُكمل المتعلّم 2 على الأقل من هذه الأنشطة وعددها 3"),
    ],
)
def test_describe_translated(app, locale, expected):
    """The description is in the page language."""
    node = {
        "kind": "activities_completed_at_least",
        "activity_ids": ["4001", "4002", "4003"],
        "count": 2,
    }

    text, _ = describe(app, rule(node), locale=locale)

    assert text.startswith(expected)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "l'apprenant remplit toutes ces conditions"),
        ("es", "el estudiante cumple todas estas condiciones"),
        ("ar", "يستوفي المتعلّم كل هذه الشروط"),
    ],
)
def test_describe_combination_translated(app, locale, expected):
    node = {
        "kind": "all_of",
        "rules": [
            {"kind": "course_completed"},
            {"kind": "grade_at_least", "min_percent": 50},
        ],
    }

    text, parts = describe(app, rule(node), locale=locale)

    assert text.startswith(expected)
    assert len(parts) == 2
    assert "course_completed" not in " ".join(parts)


def test_instructor_page_shows_no_raw_kind(client, tenants, db):
    """The instructor page describes a CLI-written rule in words, with nested parts."""
    alpha, _ = tenants
    achievement = db.scalar(
        select(Achievement).where(Achievement.provider_id == alpha.provider_id)
    )
    achievement.award_rule = rule(
        {
            "kind": "any_of",
            "rules": [
                {"kind": "activity_completed", "activity_id": "4001"},
                {
                    "kind": "activities_completed_at_least",
                    "activity_ids": ["4001", "4002"],
                    "count": 1,
                },
            ],
        }
    )
    db.commit()
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "the learner meets at least one of these conditions:" in page
    assert "the learner completes at least 1 of these 2 activities:" in page
    assert '<ul class="rule-parts">' in page
    assert "the learner completes “<bdi>Final quiz</bdi>”." in page
    for kind in ("any_of", "activity_completed", "activities_completed_at_least"):
        assert f"{kind}<" not in page
        assert f" {kind}" not in page


def test_describe_window_on_combination(app):
    """A window on a combination follows its parts, not the colon before them."""
    node = {
        "kind": "any_of",
        "rules": [
            {"kind": "course_completed"},
            {"kind": "grade_at_least", "min_percent": 50},
        ],
        "window": {"until": "2026-01-01T00:00:00Z"},
    }

    with app.test_request_context("/"):
        description = describe_rule(rule(node), NAMES)

    assert description.text == "the learner meets at least one of these conditions:"
    assert len(description.parts) == 2
    assert description.window.startswith("It counts only if met before <time")


@pytest.mark.parametrize(("locale", "separator"), [("ar", "، "), ("fr", ", ")])
def test_activity_list_separator(app, locale, separator):
    """Activity lists are joined with the page language's list separator."""
    node = {
        "kind": "activities_completed",
        "activity_ids": ["4001", "4002"],
        "match": "all",
    }

    text, _ = describe(app, rule(node), locale=locale)
    names_only = re.sub(r"<[^>]+>|[“”«»\u00a0]", "", text)

    assert f"Final quiz{separator}Code of conduct" in names_only


def test_builder_list_arabic_comma(app):
    """A builder rule's one-line list uses the Arabic comma in Arabic."""
    node = {
        "kind": "all_of",
        "rules": [
            {"kind": "activities_completed", "activity_ids": ["4001"], "match": "all"},
            {"kind": "grade_at_least", "activity_id": "ags-7", "min_percent": 60},
        ],
    }

    text, _ = describe(app, rule(node), locale="ar")

    assert "Final quiz، Essay" in text
    assert "Final quiz, " not in text
