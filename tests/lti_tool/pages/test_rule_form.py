"""The rule builder's rule shapes, read back from stored rules."""

from __future__ import annotations

import pytest

from lti_tool.views.rule_form import (
    ActivityRuleFields,
    InvalidMinPercent,
    activity_rule_fields,
    build_activities_rule,
    parse_min_percent,
)


@pytest.mark.parametrize(
    "fields",
    [
        ActivityRuleFields(["4001", "4002"], "all"),
        ActivityRuleFields(["ags-1"], "all", {"ags-1": 70}),
        ActivityRuleFields(
            ["4001", "ags-1", "ags-2"], "any", {"ags-1": 70, "ags-2": 55.5}
        ),
        ActivityRuleFields(["ags-1", "ags-2"], "all", {"ags-1": 0, "ags-2": 100}),
    ],
)
def test_fields_round_trip(fields):
    """The fields read back from a built rule are the fields it was built from."""
    assert activity_rule_fields(build_activities_rule(fields)) == fields


@pytest.mark.parametrize(
    "node",
    [
        {"kind": "course_completed"},
        {"kind": "grade_at_least", "min_percent": 50},
        {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 50},
        {
            "kind": "activities_completed",
            "activity_ids": ["4001"],
            "match": "all",
            "window": {"from": "2025-01-01T00:00:00Z"},
        },
        {
            "kind": "all_of",
            "rules": [
                {
                    "kind": "activities_completed",
                    "activity_ids": ["4001"],
                    "match": "any",
                },
                {"kind": "grade_at_least", "activity_id": "ags-1", "min_percent": 50},
            ],
        },
        {
            "kind": "any_of",
            "rules": [
                {
                    "kind": "activities_completed",
                    "activity_ids": ["4001"],
                    "match": "any",
                },
                {
                    "kind": "activities_completed",
                    "activity_ids": ["4002"],
                    "match": "any",
                },
            ],
        },
        {"kind": "activities_completed_at_least", "activity_ids": ["4001"], "count": 1},
    ],
)
def test_other_shapes_not_shown(node):
    """Rules the builder cannot show as its fields return None."""
    assert activity_rule_fields(node) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("70", 70),
        ("0", 0),
        ("100", 100),
        ("70.5", 70.5),
        ("70,25", 70.25),
        (" 8 ", 8),
        ("", None),
        ("\u0667\u0660", 70),
        ("\u0667\u0660\u066b\u0665", 70.5),
    ],
)
def test_min_percent_parsed(text, expected):
    """Percentages in Latin or Arabic digits and decimal marks parse; empty is None."""
    assert parse_min_percent(text, "ags-1") == expected


@pytest.mark.parametrize(
    "text", ["abc", "-1", "100.5", "1e2", "nan", "inf", "+5", "5.", "70 %"]
)
def test_min_percent_rejected(text):
    """Text that is not a percentage from 0 to 100 raises InvalidMinPercent."""
    with pytest.raises(InvalidMinPercent):
        parse_min_percent(text, "ags-1")
