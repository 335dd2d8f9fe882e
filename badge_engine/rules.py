"""Award rules: the machine-checkable conditions that earn an achievement.

An award rule document is JSON with a version and one rule node:

    {"version": 1, "rule": {"kind": "course_completed"}}

Version 1 defines these node kinds (docs/award-rules.md shows each with an example):

- `course_completed`: the LMS reports the course as completed.
- `activity_completed`: one activity is complete (or passed).
- `activities_completed`: all, or any, of a set of activities are complete.
- `activities_completed_at_least`: at least `count` of a set of activities are complete.
- `grade_at_least`: the course total, or one activity's grade, is at or above a
  percentage of its maximum.
- `all_of` / `any_of`: every one, or at least one, of the nested rules is met.

Every node may carry a `window` ({"from": ..., "until": ...}, ISO 8601 with a time
zone, `until` exclusive): the node is met only when it became true inside the window.

New kinds are added to version 1 without changing what existing documents mean. A
reader that meets a kind or a field it does not know rejects the document instead of
guessing. Activity ids are the LMS's own ids as strings (a Moodle course module id, a
Canvas module item id), so one rule definition works for Moodle and Canvas courses.
The human-readable criteria shown with the badge are separate
(`Achievement.criteria_narrative`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jsonschema

from badge_engine.facts import CompletionState

MAX_RULE_DEPTH = 4
MAX_ACTIVITIES_PER_NODE = 200

_ACTIVITY_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_ACTIVITY_IDS = {
    "type": "array",
    "items": _ACTIVITY_ID,
    "minItems": 1,
    "maxItems": MAX_ACTIVITIES_PER_NODE,
    "uniqueItems": True,
}
_WINDOW = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
    },
}


def _node_schema(kind: str, required: list[str], properties: dict) -> dict:
    return {
        "type": "object",
        "required": ["kind", *required],
        "additionalProperties": False,
        "properties": {"kind": {"const": kind}, "window": _WINDOW, **properties},
    }


RULE_SCHEMA_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://hpass.example/schemas/award-rule-v1.json",
    "title": "AwardRule version 1",
    "type": "object",
    "required": ["version", "rule"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "rule": {"$ref": "#/$defs/rule"},
    },
    "$defs": {
        "rule": {
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {
                    "enum": [
                        "course_completed",
                        "activity_completed",
                        "activities_completed",
                        "activities_completed_at_least",
                        "grade_at_least",
                        "all_of",
                        "any_of",
                    ]
                }
            },
            # Pick the schema by kind so an error names the field that is wrong,
            # not every alternative a oneOf would try.
            "allOf": [
                {
                    "if": {"properties": {"kind": {"const": kind}}},
                    "then": {"$ref": f"#/$defs/{kind}"},
                }
                for kind in (
                    "course_completed",
                    "activity_completed",
                    "activities_completed",
                    "activities_completed_at_least",
                    "grade_at_least",
                    "all_of",
                    "any_of",
                )
            ],
        },
        "course_completed": _node_schema("course_completed", [], {}),
        "activity_completed": _node_schema(
            "activity_completed", ["activity_id"], {"activity_id": _ACTIVITY_ID}
        ),
        "activities_completed": _node_schema(
            "activities_completed",
            ["activity_ids", "match"],
            {"activity_ids": _ACTIVITY_IDS, "match": {"enum": ["all", "any"]}},
        ),
        "activities_completed_at_least": _node_schema(
            "activities_completed_at_least",
            ["activity_ids", "count"],
            {
                "activity_ids": _ACTIVITY_IDS,
                "count": {"type": "integer", "minimum": 1},
            },
        ),
        "grade_at_least": _node_schema(
            "grade_at_least",
            ["min_percent"],
            {
                # Without `activity_id` the rule reads the course total.
                "activity_id": _ACTIVITY_ID,
                "min_percent": {"type": "number", "minimum": 0, "maximum": 100},
            },
        ),
        "all_of": _node_schema(
            "all_of",
            ["rules"],
            {
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/rule"},
                }
            },
        ),
        "any_of": _node_schema(
            "any_of",
            ["rules"],
            {
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/rule"},
                }
            },
        ),
    },
}

_validator = jsonschema.Draft202012Validator(RULE_SCHEMA_V1)


class InvalidAwardRule(ValueError):
    """An award rule document does not match the AwardRule schema."""


def _invalid(location: str, problem: str) -> InvalidAwardRule:
    return InvalidAwardRule(
        f"invalid award rule at {location}: {problem}. "
        "See docs/award-rules.md for the accepted shape."
    )


def validate_award_rule(document: Any) -> None:
    """Raise InvalidAwardRule naming the first problem, with its JSON path.

    Besides the schema this checks what a schema cannot express: window times carry a
    time zone and `from` is before `until`, `count` is at most the number of
    activities, `min_percent` is not NaN, and combinations nest at most
    MAX_RULE_DEPTH levels.
    """
    errors = sorted(_validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        location = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise _invalid(location, error.message)

    for path, node, depth in _walk(document["rule"], "rule", 1):
        if depth > MAX_RULE_DEPTH:
            raise _invalid(path, f"rules nest deeper than {MAX_RULE_DEPTH} levels")
        is_at_least = node["kind"] == "activities_completed_at_least"
        if is_at_least and node["count"] > len(node["activity_ids"]):
            raise _invalid(
                f"{path}/count",
                f"count {node['count']} is more than the "
                f"{len(node['activity_ids'])} activities listed",
            )
        is_grade = node["kind"] == "grade_at_least"
        if is_grade and not math.isfinite(node["min_percent"]):
            # The jsonschema minimum and maximum checks let NaN through, because every
            # comparison with NaN is false.
            raise _invalid(
                f"{path}/min_percent",
                f"{node['min_percent']} is not a number from 0 to 100",
            )
        if "window" in node:
            _parse_window(node["window"], f"{path}/window")


def _walk(node: dict, path: str, depth: int) -> Iterator[tuple[str, dict, int]]:
    yield path, node, depth
    for index, child in enumerate(node.get("rules", ())):
        yield from _walk(child, f"{path}/rules/{index}", depth + 1)


def _parse_time(value: str, location: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(location, f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise _invalid(location, f"{value!r} has no time zone; add Z or +00:00")
    return parsed


def _parse_window(
    window: dict, location: str
) -> tuple[datetime | None, datetime | None]:
    start = (
        _parse_time(window["from"], f"{location}/from") if "from" in window else None
    )
    end = (
        _parse_time(window["until"], f"{location}/until") if "until" in window else None
    )
    if start is not None and end is not None and start >= end:
        raise _invalid(
            location, f"from {window['from']} is not before until {window['until']}"
        )
    return start, end


def referenced_activity_ids(document: dict[str, Any]) -> set[str]:
    """Return every activity id the rule names, to check against the course's activities."""
    ids: set[str] = set()
    for _path, node, _depth in _walk(document["rule"], "rule", 1):
        if "activity_id" in node:
            ids.add(node["activity_id"])
        ids.update(node.get("activity_ids", ()))
    return ids


def canonical_award_rule(document: dict[str, Any]) -> dict[str, Any]:
    """Return one spelling of a validated rule, equal for rules that award alike.

    Rules with one canonical form are met by the same learners at the same time,
    as `evaluate_award_rule` decides. The form covers the spellings below, and an
    equivalent rule written another way still compares unequal:

    - Activity sets are unordered, and `activity_completed`, `activities_completed`
      and `activities_completed_at_least` all become the last of these (all of n
      activities is at least n of them, any is at least 1).
    - `min_percent` is a float, so 80 and 80.0 are one threshold.
    - Window times are UTC, so one instant written in two time zones is one time.
    - The parts of `all_of` and `any_of` are unordered and counted once, a part of
      the same kind is merged into its parent, and a combination of one part is
      that part. Nodes with a window are never merged, because the window applies
      to the node as a whole.

    The result is for comparing only. Merging can put more than
    MAX_ACTIVITIES_PER_NODE activities in one node, so it may not validate.
    """
    return {"version": document["version"], "rule": _canonical_node(document["rule"])}


def same_award_rule(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Return whether two validated rule documents award alike."""
    return canonical_award_rule(first) == canonical_award_rule(second)


def _canonical_node(node: dict[str, Any]) -> dict[str, Any]:
    kind = node["kind"]
    if kind == "course_completed":
        canonical: dict[str, Any] = {"kind": kind}
    elif kind == "activity_completed":
        canonical = _at_least_node([node["activity_id"]], 1)
    elif kind == "activities_completed":
        ids = node["activity_ids"]
        canonical = _at_least_node(ids, len(ids) if node["match"] == "all" else 1)
    elif kind == "activities_completed_at_least":
        canonical = _at_least_node(node["activity_ids"], node["count"])
    elif kind == "grade_at_least":
        canonical = {"kind": kind, "min_percent": float(node["min_percent"])}
        if "activity_id" in node:
            canonical["activity_id"] = node["activity_id"]
    else:
        canonical = _canonical_combination(kind, node["rules"])
        if "window" in node and "window" in canonical:
            # One part with a window of its own stays wrapped, because a node
            # carries one window and both must hold.
            canonical = {"kind": kind, "rules": [canonical]}
    if "window" in node:
        # A copy, because a combination of one part returns that part's node.
        canonical = {**canonical, "window": _canonical_window(node["window"])}
    return canonical


def _at_least_node(activity_ids: list[str], count: int) -> dict[str, Any]:
    return {
        "kind": "activities_completed_at_least",
        "activity_ids": sorted(set(activity_ids)),
        "count": count,
    }


def _canonical_combination(kind: str, rules: list[dict]) -> dict[str, Any]:
    parts: list[dict] = []
    for child in map(_canonical_node, rules):
        if child["kind"] == kind and "window" not in child:
            parts.extend(child["rules"])
        else:
            parts.append(child)
    parts = _merge_activity_sets(kind, parts)

    unique = {_sort_key(part): part for part in parts}
    if len(unique) == 1:
        return next(iter(unique.values()))
    return {"kind": kind, "rules": [unique[key] for key in sorted(unique)]}


def _merge_activity_sets(kind: str, parts: list[dict]) -> list[dict]:
    """Merge the windowless activity sets that need all (all_of) or one (any_of).

    All of {a, b} and all of {c} is all of {a, b, c}, and any of {a} or any of
    {b, c} is any of {a, b, c}. Sets with another count stay as they are.
    """
    merged: set[str] = set()
    unmerged = []
    for part in parts:
        mergeable = (
            part["kind"] == "activities_completed_at_least"
            and "window" not in part
            and part["count"] == (len(part["activity_ids"]) if kind == "all_of" else 1)
        )
        if mergeable:
            merged.update(part["activity_ids"])
        else:
            unmerged.append(part)
    if merged:
        count = len(merged) if kind == "all_of" else 1
        unmerged.append(_at_least_node(list(merged), count))
    return unmerged


def _sort_key(node: dict[str, Any]) -> str:
    return json.dumps(node, sort_keys=True)


def _canonical_window(window: dict) -> dict[str, str]:
    start, end = _parse_window(window, "window")
    canonical = {}
    if start is not None:
        canonical["from"] = start.astimezone(timezone.utc).isoformat()
    if end is not None:
        canonical["until"] = end.astimezone(timezone.utc).isoformat()
    return canonical


COURSE_COMPLETED_RULE = {"version": 1, "rule": {"kind": "course_completed"}}


@dataclass(frozen=True)
class ActivityProgress:
    state: CompletionState
    completed_at: datetime | None = None


@dataclass(frozen=True)
class GradeProgress:
    """A grade as a percentage of its maximum (0-100), so Moodle and Canvas compare alike.

    `graded_at` is the LMS's time of the grade; it dates an award a grade rule earns.
    """

    percent: float | None
    graded_at: datetime | None = None


@dataclass(frozen=True)
class LearnerProgress:
    """A learner's state in one course as re-read from the LMS (not from an event).

    `activities` and `grades` are keyed by the LMS's activity id as a string;
    `course_grade` is the course total.
    """

    course_completed: bool
    course_completed_at: datetime | None = None
    activities: dict[str, ActivityProgress] = field(default_factory=dict)
    course_grade: GradeProgress | None = None
    grades: dict[str, GradeProgress] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleOutcome:
    met: bool
    # The time the rule became true by the LMS's clock: the award date. None when
    # the LMS gave no time for a condition that is met.
    met_at: datetime | None = None
    missing: tuple[str, ...] = ()


def evaluate_award_rule(
    document: dict[str, Any], progress: LearnerProgress
) -> RuleOutcome:
    """Evaluate the rule against the learner's re-read progress.

    The outcome depends only on `progress`, never on which event triggered it, so
    events that arrive late, twice or out of order give the same result.
    """
    validate_award_rule(document)
    return evaluate_validated_rule(document, progress)


def evaluate_validated_rule(
    document: dict[str, Any], progress: LearnerProgress
) -> RuleOutcome:
    """Evaluate a rule that `validate_award_rule` accepted, without checking it again.

    For callers that evaluate one rule for many learners: the schema check costs
    several times the evaluation.
    """
    return _evaluate_node(document["rule"], progress)


def _evaluate_node(node: dict[str, Any], progress: LearnerProgress) -> RuleOutcome:
    outcome = _EVALUATORS[node["kind"]](node, progress)
    if "window" not in node or not outcome.met:
        return outcome

    start, end = _parse_window(node["window"], "window")
    label = _window_label(node["window"])
    if outcome.met_at is None:
        return RuleOutcome(met=False, missing=(f"a completion time {label}",))
    if (start is not None and outcome.met_at < start) or (
        end is not None and outcome.met_at >= end
    ):
        return RuleOutcome(met=False, missing=(f"{_describe(node)} {label}",))
    return outcome


def _window_label(window: dict) -> str:
    parts = []
    if "from" in window:
        parts.append(f"from {window['from']}")
    if "until" in window:
        parts.append(f"before {window['until']}")
    return " ".join(parts)


def _describe(node: dict[str, Any]) -> str:
    kind = node["kind"]
    if kind == "course_completed":
        return "course completion"
    if kind == "activity_completed":
        return f"activity {node['activity_id']}"
    if kind == "grade_at_least":
        item = (
            f"activity {node['activity_id']}"
            if "activity_id" in node
            else "course total"
        )
        return f"grade of at least {node['min_percent']}% in {item}"
    return kind.replace("_", " ")


def _course_completed(node, progress: LearnerProgress) -> RuleOutcome:
    if progress.course_completed:
        return RuleOutcome(met=True, met_at=progress.course_completed_at)
    return RuleOutcome(met=False, missing=("course completion",))


def _activity_outcome(activity_id: str, progress: LearnerProgress) -> RuleOutcome:
    activity = progress.activities.get(activity_id)
    if activity is not None and activity.state.counts_as_complete:
        return RuleOutcome(met=True, met_at=activity.completed_at)
    return RuleOutcome(met=False, missing=(f"activity {activity_id}",))


def _activity_completed(node, progress: LearnerProgress) -> RuleOutcome:
    return _activity_outcome(node["activity_id"], progress)


def _activities_completed(node, progress: LearnerProgress) -> RuleOutcome:
    outcomes = [_activity_outcome(i, progress) for i in node["activity_ids"]]
    if node["match"] == "all":
        return _all(outcomes)
    return _at_least(outcomes, 1)


def _activities_completed_at_least(node, progress: LearnerProgress) -> RuleOutcome:
    outcomes = [_activity_outcome(i, progress) for i in node["activity_ids"]]
    return _at_least(outcomes, node["count"])


def _grade_at_least(node, progress: LearnerProgress) -> RuleOutcome:
    if "activity_id" in node:
        grade = progress.grades.get(node["activity_id"])
    else:
        grade = progress.course_grade
    if (
        grade is not None
        and grade.percent is not None
        and (grade.percent >= node["min_percent"])
    ):
        return RuleOutcome(met=True, met_at=grade.graded_at)
    return RuleOutcome(met=False, missing=(_describe(node),))


def _all_of(node, progress: LearnerProgress) -> RuleOutcome:
    return _all([_evaluate_node(child, progress) for child in node["rules"]])


def _any_of(node, progress: LearnerProgress) -> RuleOutcome:
    return _at_least([_evaluate_node(child, progress) for child in node["rules"]], 1)


def _all(outcomes: list[RuleOutcome]) -> RuleOutcome:
    """Met when every part is; it became true when the last part did."""
    missing = tuple(
        m for outcome in outcomes if not outcome.met for m in outcome.missing
    )
    if missing:
        return RuleOutcome(met=False, missing=missing)
    times = [outcome.met_at for outcome in outcomes]
    if any(time is None for time in times):
        return RuleOutcome(met=True, met_at=None)
    return RuleOutcome(met=True, met_at=max(times))


def _at_least(outcomes: list[RuleOutcome], count: int) -> RuleOutcome:
    """Met when `count` parts are; it became true when the count-th earliest part did.

    Parts met without a time are ordered last, so the date is None only when fewer
    than `count` parts carry a time.
    """
    met = [outcome for outcome in outcomes if outcome.met]
    if len(met) < count:
        missing = tuple(
            m for outcome in outcomes if not outcome.met for m in outcome.missing
        )
        short = count - len(met)
        return RuleOutcome(
            met=False, missing=(f"{short} more of: " + ", ".join(missing),)
        )
    times = sorted(outcome.met_at for outcome in met if outcome.met_at is not None)
    if len(times) < count:
        return RuleOutcome(met=True, met_at=None)
    return RuleOutcome(met=True, met_at=times[count - 1])


_EVALUATORS = {
    "course_completed": _course_completed,
    "activity_completed": _activity_completed,
    "activities_completed": _activities_completed,
    "activities_completed_at_least": _activities_completed_at_least,
    "grade_at_least": _grade_at_least,
    "all_of": _all_of,
    "any_of": _any_of,
}
