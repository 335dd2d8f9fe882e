from datetime import datetime, timezone

import pytest

from badge_engine.facts import CompletionState
from badge_engine.rules import (
    COURSE_COMPLETED_RULE,
    ActivityProgress,
    GradeProgress,
    InvalidAwardRule,
    LearnerProgress,
    evaluate_award_rule,
    referenced_activity_ids,
    validate_award_rule,
)

COMPLETED_AT = datetime(2025, 1, 1, 0, 0, tzinfo=timezone.utc)


def test_course_completed_met():
    """A completed course meets the rule, dated by the LMS's completion time."""
    progress = LearnerProgress(course_completed=True, course_completed_at=COMPLETED_AT)

    outcome = evaluate_award_rule(COURSE_COMPLETED_RULE, progress)

    assert outcome.met
    assert outcome.met_at == COMPLETED_AT


def test_course_completed_not_met_names_missing():
    """An incomplete course does not meet the rule and names what is missing."""
    outcome = evaluate_award_rule(COURSE_COMPLETED_RULE, LearnerProgress(False))

    assert not outcome.met
    assert outcome.missing == ("course completion",)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"rule": {"kind": "course_completed"}}, "'version' is a required property"),
        ({"version": 2, "rule": {"kind": "course_completed"}}, "version"),
        ({"version": 1, "rule": {"kind": "moon_landing"}}, "rule"),
        ({"version": 1, "rule": {"kind": "course_completed", "x": 1}}, "rule"),
        ("course_completed", "not of type 'object'"),
        (
            {
                "version": 1,
                "rule": {"kind": "grade_at_least", "min_percent": float("nan")},
            },
            "rule/min_percent: nan is not a number from 0 to 100",
        ),
        (
            {
                "version": 1,
                "rule": {
                    "kind": "all_of",
                    "rules": [{"kind": "grade_at_least", "min_percent": float("nan")}],
                },
            },
            "rule/rules/0/min_percent",
        ),
    ],
)
def test_validate_rejects_invalid(document, fragment):
    """Invalid rule documents raise with the location and the docs pointer."""
    with pytest.raises(InvalidAwardRule) as caught:
        validate_award_rule(document)

    assert fragment in str(caught.value)
    assert "docs/award-rules.md" in str(caught.value)


def _at(day: int) -> datetime:
    return datetime(2025, 1, day, tzinfo=timezone.utc)


def _progress(**states) -> LearnerProgress:
    """Progress with activity ids a1, a2, ... complete on the given day (None: not)."""
    activities = {
        name: ActivityProgress(CompletionState.COMPLETE, _at(day))
        if day is not None
        else ActivityProgress(CompletionState.INCOMPLETE)
        for name, day in states.items()
    }
    return LearnerProgress(course_completed=False, activities=activities)


def _rule(node: dict) -> dict:
    return {"version": 1, "rule": node}


def test_activity_completed_dated_by_lms():
    """One completed activity meets the rule on the day the LMS completed it."""
    outcome = evaluate_award_rule(
        _rule({"kind": "activity_completed", "activity_id": "a1"}), _progress(a1=3)
    )

    assert outcome.met
    assert outcome.met_at == _at(3)


def test_activity_passed_counts_failed_not():
    """Passed counts as complete; failed does not."""
    rule = _rule({"kind": "activity_completed", "activity_id": "a1"})
    passed = LearnerProgress(
        False, activities={"a1": ActivityProgress(CompletionState.PASSED, _at(2))}
    )
    failed = LearnerProgress(
        False, activities={"a1": ActivityProgress(CompletionState.FAILED, _at(2))}
    )

    assert evaluate_award_rule(rule, passed).met
    assert not evaluate_award_rule(rule, failed).met


def test_all_activities_dated_by_last():
    """All of a set is met when the last one completes."""
    rule = _rule(
        {"kind": "activities_completed", "activity_ids": ["a1", "a2"], "match": "all"}
    )

    outcome = evaluate_award_rule(rule, _progress(a1=5, a2=2))
    missing = evaluate_award_rule(rule, _progress(a1=5, a2=None))

    assert outcome.met_at == _at(5)
    assert not missing.met
    assert missing.missing == ("activity a2",)


def test_any_activity_dated_by_first():
    """Any of a set is met when the first one completes."""
    rule = _rule(
        {"kind": "activities_completed", "activity_ids": ["a1", "a2"], "match": "any"}
    )

    outcome = evaluate_award_rule(rule, _progress(a1=5, a2=2))

    assert outcome.met
    assert outcome.met_at == _at(2)


def test_at_least_dated_by_nth():
    """At least N of a set is met when the N-th earliest completes."""
    rule = _rule(
        {
            "kind": "activities_completed_at_least",
            "activity_ids": ["a1", "a2", "a3"],
            "count": 2,
        }
    )

    outcome = evaluate_award_rule(rule, _progress(a1=9, a2=4, a3=6))
    short = evaluate_award_rule(rule, _progress(a1=9, a2=None, a3=None))

    assert outcome.met_at == _at(6)
    assert not short.met
    assert short.missing[0].startswith("1 more of:")


def test_grade_course_total_and_item():
    """A grade at or above the threshold meets; one below does not."""
    progress = LearnerProgress(
        False,
        course_grade=GradeProgress(80.0, _at(7)),
        grades={"q1": GradeProgress(59.5, _at(6))},
    )
    total = _rule({"kind": "grade_at_least", "min_percent": 80})
    item = _rule({"kind": "grade_at_least", "min_percent": 60, "activity_id": "q1"})

    assert evaluate_award_rule(total, progress).met_at == _at(7)
    assert not evaluate_award_rule(item, progress).met
    assert evaluate_award_rule(item, progress).missing == (
        "grade of at least 60% in activity q1",
    )


def test_ungraded_item_not_met():
    """A missing or empty grade never meets a grade rule."""
    rule = _rule({"kind": "grade_at_least", "min_percent": 0, "activity_id": "q1"})
    empty = LearnerProgress(False, grades={"q1": GradeProgress(None)})

    assert not evaluate_award_rule(rule, LearnerProgress(False)).met
    assert not evaluate_award_rule(rule, empty).met


def test_combination_all_any():
    """all_of and any_of combine nested rules with the same dating as sets."""
    rule = _rule(
        {
            "kind": "all_of",
            "rules": [
                {"kind": "course_completed"},
                {
                    "kind": "any_of",
                    "rules": [
                        {"kind": "activity_completed", "activity_id": "a1"},
                        {"kind": "grade_at_least", "min_percent": 90},
                    ],
                },
            ],
        }
    )
    progress = LearnerProgress(
        True,
        course_completed_at=_at(3),
        activities={"a1": ActivityProgress(CompletionState.COMPLETE, _at(8))},
        course_grade=GradeProgress(95, _at(5)),
    )

    outcome = evaluate_award_rule(rule, progress)

    assert outcome.met
    assert outcome.met_at == _at(5)


def test_window_bounds_award_date():
    """A window admits completions from its start and before its end only."""
    node = {
        "kind": "activity_completed",
        "activity_id": "a1",
        "window": {"from": "2025-01-03T00:00:00Z", "until": "2025-01-05T00:00:00Z"},
    }

    inside = evaluate_award_rule(_rule(node), _progress(a1=3))
    at_end = evaluate_award_rule(_rule(node), _progress(a1=5))
    before = evaluate_award_rule(_rule(node), _progress(a1=2))

    assert inside.met
    assert not at_end.met
    assert not before.met
    assert "before 2025-01-05" in at_end.missing[0]


def test_window_without_time_not_met():
    """A windowed rule met without an LMS time is not met, because it cannot be dated."""
    node = {"kind": "course_completed", "window": {"from": "2025-01-01T00:00:00Z"}}

    outcome = evaluate_award_rule(_rule(node), LearnerProgress(True))

    assert not outcome.met


def test_same_rule_for_moodle_and_canvas_ids():
    """Activity ids are opaque strings, so Moodle cmids and Canvas item ids both work."""
    rule = _rule(
        {
            "kind": "activities_completed",
            "activity_ids": ["4001", "g_77"],
            "match": "all",
        }
    )

    assert evaluate_award_rule(rule, _progress(**{"4001": 1, "g_77": 2})).met
    assert referenced_activity_ids(rule) == {"4001", "g_77"}


@pytest.mark.parametrize(
    ("node", "fragment"),
    [
        ({"kind": "activity_completed"}, "'activity_id' is a required property"),
        ({"kind": "activity_completed", "activity_id": 4001}, "not of type 'string'"),
        (
            {"kind": "activities_completed", "activity_ids": ["a"], "match": "most"},
            "rule/match",
        ),
        (
            {"kind": "activities_completed", "activity_ids": [], "match": "all"},
            "should be non-empty",
        ),
        (
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["a"],
                "count": 2,
            },
            "count 2 is more than the 1 activities",
        ),
        ({"kind": "grade_at_least", "min_percent": 101}, "rule/min_percent"),
        ({"kind": "all_of", "rules": []}, "rule/rules: [] should be non-empty"),
        (
            {"kind": "course_completed", "window": {"from": "yesterday"}},
            "not an ISO 8601 date-time",
        ),
        (
            {"kind": "course_completed", "window": {"from": "2025-01-01T00:00:00"}},
            "has no time zone",
        ),
        (
            {
                "kind": "course_completed",
                "window": {
                    "from": "2025-02-01T00:00:00Z",
                    "until": "2025-01-01T00:00:00Z",
                },
            },
            "is not before until",
        ),
        (
            {
                "kind": "all_of",
                "rules": [
                    {
                        "kind": "all_of",
                        "rules": [
                            {
                                "kind": "all_of",
                                "rules": [
                                    {
                                        "kind": "all_of",
                                        "rules": [{"kind": "course_completed"}],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
            "nest deeper than 4",
        ),
    ],
)
def test_validate_rejects_new_kinds(node, fragment):
    """Invalid nodes of the newer kinds raise with the location and the problem."""
    with pytest.raises(InvalidAwardRule) as caught:
        validate_award_rule(_rule(node))

    assert fragment in str(caught.value)
