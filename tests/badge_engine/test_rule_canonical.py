"""Canonical award rules: equivalent spellings compare equal, real changes do not."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from badge_engine.facts import CompletionState
from badge_engine.rules import (
    ActivityProgress,
    GradeProgress,
    LearnerProgress,
    canonical_award_rule,
    evaluate_award_rule,
    same_award_rule,
    validate_award_rule,
)

START = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _rule(node: dict) -> dict:
    return {"version": 1, "rule": node}


def _activities(ids: list[str], match: str) -> dict:
    return {"kind": "activities_completed", "activity_ids": ids, "match": match}


def _activity(activity_id: str) -> dict:
    return {"kind": "activity_completed", "activity_id": activity_id}


def _grade(activity_id: str, min_percent) -> dict:
    return {
        "kind": "grade_at_least",
        "activity_id": activity_id,
        "min_percent": min_percent,
    }


WINDOW = {"from": "2025-03-01T00:00:00Z", "until": "2025-03-04T00:00:00Z"}

EQUIVALENT = {
    "key order": (
        {
            "rule": {
                "match": "all",
                "activity_ids": ["1", "2"],
                "kind": "activities_completed",
            },
            "version": 1,
        },
        _rule(_activities(["1", "2"], "all")),
    ),
    "activity order in all": (
        _rule(_activities(["2", "1", "3"], "all")),
        _rule(_activities(["1", "3", "2"], "all")),
    ),
    "activity order in any": (
        _rule(_activities(["2", "1"], "any")),
        _rule(_activities(["1", "2"], "any")),
    ),
    "integer and float percent": (
        _rule(_grade("7", 80)),
        _rule(_grade("7", 80.0)),
    ),
    "any as at least one": (
        _rule(_activities(["1", "2"], "any")),
        _rule(
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["2", "1"],
                "count": 1,
            }
        ),
    ),
    "all as at least every one": (
        _rule(_activities(["1", "2"], "all")),
        _rule(
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["1", "2"],
                "count": 2,
            }
        ),
    ),
    "one activity as a set": (
        _rule(_activity("1")),
        _rule(_activities(["1"], "any")),
    ),
    "all_of of single activities": (
        _rule({"kind": "all_of", "rules": [_activity("2"), _activity("1")]}),
        _rule(_activities(["1", "2"], "all")),
    ),
    "nested all_of": (
        _rule(
            {
                "kind": "all_of",
                "rules": [
                    {
                        "kind": "all_of",
                        "rules": [_grade("7", 50), {"kind": "course_completed"}],
                    },
                    _activity("1"),
                ],
            }
        ),
        _rule(
            {
                "kind": "all_of",
                "rules": [
                    _activity("1"),
                    {"kind": "course_completed"},
                    _grade("7", 50.0),
                ],
            }
        ),
    ),
    "part order in any_of": (
        _rule({"kind": "any_of", "rules": [_grade("7", 50), _activity("1")]}),
        _rule({"kind": "any_of", "rules": [_activity("1"), _grade("7", 50)]}),
    ),
    "combination of one part": (
        _rule({"kind": "any_of", "rules": [_grade("7", 50)]}),
        _rule(_grade("7", 50)),
    ),
    "window time zone": (
        _rule({"kind": "course_completed", "window": WINDOW}),
        _rule(
            {
                "kind": "course_completed",
                "window": {
                    "until": "2025-03-04T01:00:00+01:00",
                    "from": "2025-02-28T19:00:00-05:00",
                },
            }
        ),
    ),
}

DIFFERENT = {
    "another activity": (
        _rule(_activities(["1", "2"], "all")),
        _rule(_activities(["1", "3"], "all")),
    ),
    "all against any": (
        _rule(_activities(["1", "2"], "all")),
        _rule(_activities(["1", "2"], "any")),
    ),
    "another percent": (
        _rule(_grade("7", 80)),
        _rule(_grade("7", 80.5)),
    ),
    "course total against activity grade": (
        _rule({"kind": "grade_at_least", "min_percent": 80}),
        _rule(_grade("7", 80)),
    ),
    "window added": (
        _rule({"kind": "course_completed"}),
        _rule({"kind": "course_completed", "window": WINDOW}),
    ),
    "window moved": (
        _rule({"kind": "course_completed", "window": WINDOW}),
        _rule({"kind": "course_completed", "window": {"from": WINDOW["from"]}}),
    ),
    "window on the part or the whole": (
        _rule(
            {
                "kind": "all_of",
                "rules": [
                    {**_activity("1"), "window": WINDOW},
                    _activity("2"),
                ],
            }
        ),
        _rule(
            {
                "kind": "all_of",
                "window": WINDOW,
                "rules": [
                    _activity("1"),
                    _activity("2"),
                ],
            }
        ),
    ),
    "two windows against one": (
        _rule(
            {
                "kind": "any_of",
                "window": WINDOW,
                "rules": [
                    {**_activity("1"), "window": {"until": "2025-03-02T00:00:00Z"}},
                ],
            }
        ),
        _rule({**_activity("1"), "window": WINDOW}),
    ),
    "all_of against any_of": (
        _rule({"kind": "all_of", "rules": [_grade("7", 50), _activity("1")]}),
        _rule({"kind": "any_of", "rules": [_grade("7", 50), _activity("1")]}),
    ),
}


def _progress_cases() -> list[LearnerProgress]:
    """Return learners with every mix of done, undone and undated for activities 1-3."""
    states = [
        None,
        ActivityProgress(CompletionState.COMPLETE, START + timedelta(days=1)),
        ActivityProgress(CompletionState.COMPLETE, START + timedelta(days=5)),
        ActivityProgress(CompletionState.COMPLETE, None),
    ]
    cases = []
    for first, second, third in itertools.product(states, repeat=3):
        activities = {
            activity_id: state
            for activity_id, state in zip(("1", "2", "3"), (first, second, third))
            if state is not None
        }
        for percent in (None, 60.0, 90.0):
            cases.append(
                LearnerProgress(
                    course_completed=percent is not None,
                    course_completed_at=START + timedelta(days=2),
                    activities=activities,
                    grades={"7": GradeProgress(percent, START + timedelta(days=3))},
                )
            )
    return cases


@pytest.mark.parametrize("name", EQUIVALENT)
def test_equivalent_rules_compare_equal(name):
    """Spellings that award alike have one canonical form."""
    first, second = EQUIVALENT[name]
    validate_award_rule(first)
    validate_award_rule(second)

    assert same_award_rule(first, second)
    assert canonical_award_rule(first) == canonical_award_rule(second)


@pytest.mark.parametrize("name", EQUIVALENT)
def test_equivalent_rules_award_alike(name):
    """Rules with one canonical form are met by the same learners at the same time."""
    first, second = EQUIVALENT[name]

    for progress in _progress_cases():
        first_outcome = evaluate_award_rule(first, progress)
        second_outcome = evaluate_award_rule(second, progress)
        assert first_outcome.met == second_outcome.met, progress
        assert first_outcome.met_at == second_outcome.met_at, progress


@pytest.mark.parametrize("name", DIFFERENT)
def test_changed_rules_compare_unequal(name):
    """A change to what or when a rule awards is a different rule."""
    first, second = DIFFERENT[name]
    validate_award_rule(first)
    validate_award_rule(second)

    assert not same_award_rule(first, second)


def test_canonical_form_leaves_document_alone():
    """The canonical form is a new value, so the stored document keeps its spelling."""
    document = _rule(
        {
            "kind": "any_of",
            "window": WINDOW,
            "rules": [
                _activities(["2", "1"], "all"),
            ],
        }
    )
    before = repr(document)

    canonical_award_rule(document)

    assert repr(document) == before
