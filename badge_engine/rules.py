"""Award rules: the machine-checkable conditions that earn an achievement.

An award rule document is JSON with a version and one rule node:

    {"version": 1, "rule": {"kind": "course_completed"}}

Version 1 defines the node kind `course_completed`. New kinds are added to version 1
without changing what existing documents mean; a reader that meets a kind it does not
know rejects the document instead of guessing. The human-readable criteria shown with
the badge are separate (`Achievement.criteria_narrative`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jsonschema

from badge_engine.facts import CompletionState

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
            "oneOf": [{"$ref": "#/$defs/course_completed"}],
        },
        "course_completed": {
            "type": "object",
            "required": ["kind"],
            "additionalProperties": False,
            "properties": {"kind": {"const": "course_completed"}},
        },
    },
}

_validator = jsonschema.Draft202012Validator(RULE_SCHEMA_V1)


class InvalidAwardRule(ValueError):
    """An award rule document does not match the AwardRule schema."""


def validate_award_rule(document: Any) -> None:
    """Raise InvalidAwardRule naming the first problem, with its JSON path."""
    errors = sorted(_validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        location = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise InvalidAwardRule(
            f"invalid award rule at {location}: {error.message}. "
            "See docs/award-rules.md for the accepted shape."
        )


COURSE_COMPLETED_RULE = {"version": 1, "rule": {"kind": "course_completed"}}


@dataclass(frozen=True)
class ActivityProgress:
    state: CompletionState
    completed_at: datetime | None = None


@dataclass(frozen=True)
class LearnerProgress:
    """A learner's state in one course as re-read from the LMS (not from an event)."""

    course_completed: bool
    course_completed_at: datetime | None = None
    activities: dict[str, ActivityProgress] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleOutcome:
    met: bool
    # The time the rule became true by the LMS's clock: the award date.
    met_at: datetime | None = None
    missing: tuple[str, ...] = ()


def evaluate_award_rule(
    document: dict[str, Any], progress: LearnerProgress
) -> RuleOutcome:
    validate_award_rule(document)
    return _evaluate_node(document["rule"], progress)


def _evaluate_node(node: dict[str, Any], progress: LearnerProgress) -> RuleOutcome:
    kind = node["kind"]
    if kind == "course_completed":
        if progress.course_completed:
            return RuleOutcome(met=True, met_at=progress.course_completed_at)
        return RuleOutcome(met=False, missing=("course completion",))

    raise InvalidAwardRule(f"unknown award rule kind {kind!r}")
