""" "Why not yet?": each award rule condition for one learner, and what blocks an award.

`explain_award` walks the award rule and evaluates every node on its own against the
learner's progress, so the learner gets each condition with its state, the LMS data
behind it and when that data was read, and what is still missing by activity name.
`award_blockers` lists, for instructors, the reasons a learner cannot receive the
badge at all, whatever their progress, each as a code with its values.

Conditions, LMS readings, missing requirements and blockers are data (a rule node
kind or a blocker code, with its values), so a page can word them in its own
language. `Explanation.to_json` words them in English for JSON clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from badge_engine.models import Credential, CredentialStatus, Learner
from badge_engine.rules import (
    LearnerProgress,
    evaluate_award_rule,
    evaluate_validated_rule,
    validate_award_rule,
)

# The kinds of LmsReading.
READING_COURSE = "course"
READING_GRADE = "grade"
READING_ACTIVITY = "activity"
# LmsReading.state of an activity the LMS reported nothing for.
NOT_REPORTED = "not_reported"
# The kind of a `missing_rules` node for a windowed rule that is met but has no
# LMS time to check against its window.
COMPLETION_TIME = "completion_time"


@dataclass(frozen=True)
class LmsReading:
    """One value the LMS reported for a condition.

    `kind` is READING_COURSE (`state` is "completed" or "not_completed"),
    READING_GRADE (`percent` of the maximum, None when there is no grade) or
    READING_ACTIVITY (`state` is a CompletionState value or NOT_REPORTED). `at` is
    the LMS's time of the completion or grade, None when it gave none.
    """

    kind: str
    state: str | None = None
    activity_id: str | None = None
    percent: float | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Condition:
    """One node of the award rule: its requirement, whether it is met, and the data.

    `kind` and `values` are the node's kind and its other fields (a `window`
    included) without the nested `rules`, which follow as conditions one `depth`
    deeper. `readings` is what the LMS reported for the node.
    """

    kind: str
    values: dict[str, Any]
    met: bool
    readings: list[LmsReading]
    depth: int = 0

    @property
    def rule(self) -> dict[str, Any]:
        """The node as a rule node without its nested rules."""
        return {"kind": self.kind, **self.values}


# The codes of Blocker, stable for API clients.
BLOCKER_ENROLMENT_INACTIVE = "enrolment_inactive"
BLOCKER_LEARNER_UNKNOWN = "learner_unknown"
BLOCKER_NO_IDENTITY = "no_identity"
BLOCKER_NO_EMAIL = "no_email"
BLOCKER_REVERSAL_UNDER_REVIEW = "reversal_under_review"
BLOCKER_DELIVERY_NEEDS_CONSENT = "delivery_needs_consent"


@dataclass(frozen=True)
class Blocker:
    """A reason the learner cannot receive the badge whatever their progress.

    `code` is one of the BLOCKER_* codes and `values` contains what a page needs to
    word it: `reversed_at` (a datetime) for BLOCKER_REVERSAL_UNDER_REVIEW and
    `deliveries` (a count) for BLOCKER_DELIVERY_NEEDS_CONSENT. `message` words it
    in English.
    """

    code: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return _blocker_message(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "values": {
                key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in self.values.items()
            },
            "message": self.message,
        }


@dataclass(frozen=True)
class Explanation:
    met: bool
    conditions: list[Condition]
    # The requirements still unmet in English, with activity names where the LMS
    # gave them. `missing_rules` contains the same requirements as rule nodes.
    missing: list[str]
    read_at: datetime
    # "lms" for a fresh re-read, "stored_facts" when the LMS could not be reached.
    source: str
    blockers: list[Blocker] = field(default_factory=list)
    missing_rules: list[dict[str, Any]] = field(default_factory=list)
    activity_names: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "read_at": self.read_at.isoformat(),
            "source": self.source,
            "conditions": [
                {
                    "kind": condition.kind,
                    "values": condition.values,
                    "description": _describe(condition.rule, self.activity_names),
                    "met": condition.met,
                    "lms_data": [
                        _reading_text(reading, self.activity_names)
                        for reading in condition.readings
                    ],
                    "depth": condition.depth,
                }
                for condition in self.conditions
            ],
            "missing": list(self.missing),
            "blockers": [blocker.to_json() for blocker in self.blockers],
        }


def explain_award(
    award_rule: dict[str, Any],
    progress: LearnerProgress,
    *,
    read_at: datetime,
    source: str,
    activity_names: dict[str, str] | None = None,
) -> Explanation:
    """Explain the award rule against the learner's progress.

    Raises InvalidAwardRule for a rule document that does not validate.
    """
    validate_award_rule(award_rule)
    names = activity_names or {}
    conditions: list[Condition] = []
    _explain_node(award_rule["rule"], progress, 0, conditions)
    outcome = evaluate_award_rule(award_rule, progress)
    missing = [_name_activities(item, names) for item in outcome.missing]
    return Explanation(
        met=outcome.met,
        conditions=conditions,
        missing=missing,
        read_at=read_at,
        source=source,
        missing_rules=_missing_nodes(award_rule["rule"], progress),
        activity_names=dict(names),
    )


def missing_rules(
    award_rule: dict[str, Any], progress: LearnerProgress
) -> list[dict[str, Any]]:
    """Return the parts of the award rule the learner has still to meet, as rule nodes.

    An unmet `all_of` gives its unmet parts, and an unmet `activities_completed`
    with match "all" gives one `activity_completed` node per activity not done.
    Every other unmet node is returned whole, because any of its parts could meet
    it. A node with a window is returned whole too, unless it is met and only the
    LMS's time of it is missing: then it comes back as a COMPLETION_TIME node, which
    is not a rule kind, with the met node under "rule" and the window under
    "window". Returns an empty list when the rule is met. Raises InvalidAwardRule
    for a rule document that does not validate.
    """
    validate_award_rule(award_rule)
    return _missing_nodes(award_rule["rule"], progress)


def _is_met(node: dict[str, Any], progress: LearnerProgress) -> bool:
    return evaluate_validated_rule({"version": 1, "rule": node}, progress).met


def _missing_nodes(
    node: dict[str, Any], progress: LearnerProgress
) -> list[dict[str, Any]]:
    if _is_met(node, progress):
        return []
    if "window" in node:
        return [_missing_in_window(node, progress)]
    kind = node["kind"]
    if kind == "all_of":
        return [
            missing
            for child in node["rules"]
            for missing in _missing_nodes(child, progress)
        ]
    if kind == "activities_completed" and node["match"] == "all":
        return [
            {"kind": "activity_completed", "activity_id": activity_id}
            for activity_id in node["activity_ids"]
            if not _is_met(
                {"kind": "activity_completed", "activity_id": activity_id}, progress
            )
        ]
    return [node]


def _missing_in_window(
    node: dict[str, Any], progress: LearnerProgress
) -> dict[str, Any]:
    """Return the unmet windowed node, or only its time when that is what it lacks."""
    unbounded = {key: value for key, value in node.items() if key != "window"}
    outcome = evaluate_validated_rule({"version": 1, "rule": unbounded}, progress)
    if outcome.met and outcome.met_at is None:
        return {"kind": COMPLETION_TIME, "rule": unbounded, "window": node["window"]}
    return node


def _explain_node(
    node: dict[str, Any],
    progress: LearnerProgress,
    depth: int,
    conditions: list[Condition],
) -> None:
    conditions.append(
        Condition(
            kind=node["kind"],
            values={
                key: value
                for key, value in node.items()
                if key not in ("kind", "rules")
            },
            met=_is_met(node, progress),
            readings=_readings(node, progress),
            depth=depth,
        )
    )
    for child in node.get("rules", ()):
        _explain_node(child, progress, depth + 1, conditions)


def _readings(node: dict[str, Any], progress: LearnerProgress) -> list[LmsReading]:
    kind = node["kind"]
    if kind == "course_completed":
        if progress.course_completed:
            return [
                LmsReading(READING_COURSE, "completed", at=progress.course_completed_at)
            ]
        return [LmsReading(READING_COURSE, "not_completed")]

    if kind == "grade_at_least":
        activity_id = node.get("activity_id")
        if activity_id is not None:
            grade = progress.grades.get(activity_id)
        else:
            grade = progress.course_grade
        if grade is None or grade.percent is None:
            return [LmsReading(READING_GRADE, activity_id=activity_id)]
        return [
            LmsReading(
                READING_GRADE,
                activity_id=activity_id,
                percent=grade.percent,
                at=grade.graded_at,
            )
        ]

    ids = (
        [node["activity_id"]] if "activity_id" in node else node.get("activity_ids", [])
    )
    readings = []
    for activity_id in ids:
        activity = progress.activities.get(activity_id)
        if activity is None:
            readings.append(
                LmsReading(READING_ACTIVITY, NOT_REPORTED, activity_id=activity_id)
            )
        else:
            readings.append(
                LmsReading(
                    READING_ACTIVITY,
                    activity.state.value,
                    activity_id=activity_id,
                    at=activity.completed_at,
                )
            )
    return readings


def _activity_name(activity_id: str, names: dict[str, str]) -> str:
    name = names.get(activity_id)
    return f"\u201c{name}\u201d" if name else f"activity {activity_id}"


def _name_activities(text: str, names: dict[str, str]) -> str:
    """Replace "activity <id>" in a rule's missing text with the activity's name."""
    for activity_id, name in names.items():
        text = text.replace(f"activity {activity_id}", f"\u201c{name}\u201d")
    return text


def _describe(node: dict[str, Any], names: dict[str, str]) -> str:
    """Describe one rule node in English, without its nested rules."""
    kind = node["kind"]
    window = ""
    if "window" in node:
        window = " " + " ".join(
            f"{key} {value}" for key, value in sorted(node["window"].items())
        )
    if kind == "course_completed":
        text = "Complete the course"
    elif kind == "activity_completed":
        text = f"Complete {_activity_name(node['activity_id'], names)}"
    elif kind in ("activities_completed", "activities_completed_at_least"):
        listed = ", ".join(_activity_name(i, names) for i in node["activity_ids"])
        if kind == "activities_completed_at_least":
            text = f"Complete at least {node['count']} of {listed}"
        elif node["match"] == "all":
            text = f"Complete all of {listed}"
        else:
            text = f"Complete any of {listed}"
    elif kind == "grade_at_least":
        item = (
            _activity_name(node["activity_id"], names)
            if "activity_id" in node
            else "the course total"
        )
        text = f"Reach at least {node['min_percent']}% in {item}"
    elif kind == "all_of":
        text = "Meet every one of these"
    else:
        text = "Meet at least one of these"
    return text + window


def _reading_text(reading: LmsReading, names: dict[str, str]) -> str:
    """Word one LMS reading in English."""
    if reading.kind == READING_COURSE:
        if reading.state == "completed":
            return f"course completed at {_time(reading.at)}"
        return "course not completed"
    if reading.kind == READING_GRADE:
        if reading.percent is None:
            return "no grade"
        return f"grade {reading.percent:g}% at {_time(reading.at)}"

    label = _activity_name(reading.activity_id, names)
    if reading.state == NOT_REPORTED:
        return f"{label}: not reported"
    if reading.at is not None:
        return f"{label}: {reading.state} at {_time(reading.at)}"
    return f"{label}: {reading.state}"


def _time(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "an unknown time"


def award_blockers(
    learner: Learner | None,
    credential: Credential | None,
    *,
    enrolment_active: bool | None,
    deliveries_waiting_for_consent: int = 0,
) -> list[Blocker]:
    """List what keeps the learner from receiving (or holding) the badge.

    `enrolment_active` is None when the LMS returned no enrolment state.
    """
    blockers = []
    if enrolment_active is False:
        blockers.append(Blocker(BLOCKER_ENROLMENT_INACTIVE))
    if learner is None:
        blockers.append(Blocker(BLOCKER_LEARNER_UNKNOWN))
    elif not learner.email and not learner.lms_user_id:
        blockers.append(Blocker(BLOCKER_NO_IDENTITY))
    elif not learner.email:
        blockers.append(Blocker(BLOCKER_NO_EMAIL))
    under_review = (
        credential is not None
        and credential.completion_reversed_at is not None
        and credential.status == CredentialStatus.LIVE.value
    )
    if under_review:
        blockers.append(
            Blocker(
                BLOCKER_REVERSAL_UNDER_REVIEW,
                {"reversed_at": credential.completion_reversed_at},
            )
        )
    if deliveries_waiting_for_consent:
        blockers.append(
            Blocker(
                BLOCKER_DELIVERY_NEEDS_CONSENT,
                {"deliveries": deliveries_waiting_for_consent},
            )
        )
    return blockers


def _blocker_message(blocker: Blocker) -> str:
    """Word a blocker in English, for JSON clients."""
    code = blocker.code
    if code == BLOCKER_ENROLMENT_INACTIVE:
        return (
            "The LMS does not track this learner's completion in the course because "
            "the enrolment is not active. Reactivate the enrolment in the LMS."
        )
    if code == BLOCKER_LEARNER_UNKNOWN:
        return (
            "The bridge has not seen this learner yet. The learner appears after "
            "their first launch or completion."
        )
    if code == BLOCKER_NO_IDENTITY:
        return (
            "The learner has no email address or LMS account that the badge could "
            "name. Ask the LMS admin to share the email address in launches."
        )
    if code == BLOCKER_NO_EMAIL:
        return (
            "The LMS shares no email address for this learner, so the badge names "
            "their LMS account and portfolios cannot match it by email."
        )
    if code == BLOCKER_REVERSAL_UNDER_REVIEW:
        return (
            "The LMS reported the completion reversed at "
            f"{_time(blocker.values.get('reversed_at'))}. An instructor decides "
            "whether to revoke the badge."
        )
    if code == BLOCKER_DELIVERY_NEEDS_CONSENT:
        deliveries = blocker.values.get("deliveries", 1)
        waiting = (
            "1 delivery waits" if deliveries == 1 else f"{deliveries} deliveries wait"
        )
        return (
            f"{waiting} for the learner to link their portfolio again and grant access."
        )
    return f"The badge cannot be awarded ({code})."
