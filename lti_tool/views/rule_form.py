"""The award rule shapes that the instructor's rule builder reads and writes.

The builder offers a list of activities, "all" or "any" of them, and an optional
minimum grade on each AGS line item. Without a minimum grade the rule is one
`activities_completed` node, as before. With one, each graded line item becomes a
`grade_at_least` node, and `all_of` or `any_of` joins the parts, as the `match` field
sets. The checks are those of `badge_engine.rules.validate_award_rule`, which the
CLI and the API apply to the same documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from badge_engine.rules import InvalidAwardRule, validate_award_rule
from lti_tool.models import AGS_ACTIVITY_PREFIX

# Digits with an optional fraction after a point, a comma (French and Spanish write
# 70,5) or the Arabic decimal separator U+066B. `\d` also matches Arabic-Indic
# digits, which float() reads. Signs, exponents, NaN and infinity are rejected.
_DECIMAL = re.compile(r"\d{1,3}(?:[.,\u066b]\d{1,3})?")


class InvalidMinPercent(ValueError):
    """A minimum grade typed in the builder is not a percentage from 0 to 100."""


@dataclass
class ActivityRuleFields:
    """The builder's fields for one rule: chosen ids, match and minimum grades."""

    activity_ids: list[str]
    match: str
    min_percent: dict[str, float | int] = field(default_factory=dict)


# Moodle course module ids and Canvas module item ids are decimal numbers, and AGS
# line items are AGS_ACTIVITY_PREFIX and a row id. 64 characters is the rule
# schema's limit on an activity id.
_ACTIVITY_ID = re.compile(rf"(?:{re.escape(AGS_ACTIVITY_PREFIX)})?[0-9]{{1,60}}")


def is_activity_id(text: str) -> bool:
    """Return whether `text` has the form of an activity id of any LMS."""
    return _ACTIVITY_ID.fullmatch(text) is not None


def is_ags_activity(activity_id: str) -> bool:
    return activity_id.startswith(AGS_ACTIVITY_PREFIX)


def parse_min_percent(text: str, activity_id: str) -> float | int | None:
    """Return the minimum grade typed for a line item, or None when the field is empty.

    Raises InvalidMinPercent when the text is not a decimal number or when
    `validate_award_rule` rejects it as a `grade_at_least` threshold.
    """
    text = text.strip()
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise InvalidMinPercent(text)

    number = float(text.replace(",", ".").replace("\u066b", "."))
    value: float | int = int(number) if number.is_integer() else number
    try:
        validate_award_rule(
            {
                "version": 1,
                "rule": {
                    "kind": "grade_at_least",
                    "activity_id": activity_id,
                    "min_percent": value,
                },
            }
        )
    except InvalidAwardRule:
        raise InvalidMinPercent(text) from None
    return value


def build_activities_rule(fields: ActivityRuleFields) -> dict:
    """Return the rule node for the builder's fields (see the module docstring)."""
    graded = [
        activity_id
        for activity_id in fields.activity_ids
        if activity_id in fields.min_percent
    ]
    plain = [
        activity_id
        for activity_id in fields.activity_ids
        if activity_id not in fields.min_percent
    ]
    parts: list[dict] = []
    if plain:
        parts.append(
            {
                "kind": "activities_completed",
                "activity_ids": plain,
                "match": fields.match,
            }
        )
    for activity_id in graded:
        parts.append(
            {
                "kind": "grade_at_least",
                "activity_id": activity_id,
                "min_percent": fields.min_percent[activity_id],
            }
        )

    if len(parts) == 1:
        return parts[0]
    return {"kind": "all_of" if fields.match == "all" else "any_of", "rules": parts}


def activity_rule_fields(node: dict) -> ActivityRuleFields | None:
    """Return the builder's fields for a rule node, or None for a shape it cannot show.

    This reverses `build_activities_rule`. Rules written through the CLI or the API
    may have other shapes (windows, nesting, course grades), and those stay as they
    are until the instructor picks a new rule.
    """
    if "window" in node:
        return None
    kind = node.get("kind")
    if kind == "activities_completed":
        return ActivityRuleFields(list(node["activity_ids"]), node.get("match", "all"))
    if kind == "grade_at_least":
        return _graded_fields([node], "all")
    if kind not in ("all_of", "any_of"):
        return None

    match = "all" if kind == "all_of" else "any"
    children = node.get("rules", [])
    completions = [
        child for child in children if child.get("kind") == "activities_completed"
    ]
    grades = [
        child for child in children if child.get("kind") != "activities_completed"
    ]
    if len(completions) > 1 or not grades:
        return None
    if completions and (
        completions[0].get("match") != match or "window" in completions[0]
    ):
        return None

    fields = _graded_fields(grades, match)
    if fields is None:
        return None
    if completions:
        fields.activity_ids = list(completions[0]["activity_ids"]) + fields.activity_ids
    return fields


def _graded_fields(nodes: list[dict], match: str) -> ActivityRuleFields | None:
    fields = ActivityRuleFields([], match)
    for node in nodes:
        activity_id = node.get("activity_id")
        if (
            node.get("kind") != "grade_at_least"
            or "window" in node
            or activity_id is None
            or not is_ags_activity(activity_id)
            or activity_id in fields.min_percent
        ):
            return None
        fields.activity_ids.append(activity_id)
        fields.min_percent[activity_id] = node["min_percent"]
    return fields
