""" "Why not yet?": each award rule condition for one learner, and what blocks an award.

`explain_award` walks the award rule and evaluates every node on its own against the
learner's progress, so the learner gets each condition with its state, the LMS data
behind it and when that data was read, and what is still missing by activity name.
`award_blockers` lists, for instructors, the reasons a learner cannot receive the
badge at all, whatever their progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from badge_engine.models import Credential, CredentialStatus, Learner
from badge_engine.rules import (
    LearnerProgress,
    evaluate_award_rule,
    validate_award_rule,
)


@dataclass(frozen=True)
class Condition:
    """One node of the award rule: its requirement, whether it is met, and the data.

    `lms_data` is what the LMS reported for it (a state, a completion time or a
    grade); `depth` is its nesting level for display.
    """

    description: str
    met: bool
    lms_data: list[str]
    depth: int = 0


@dataclass(frozen=True)
class Blocker:
    """A reason the learner cannot receive the badge whatever their progress."""

    code: str
    message: str


@dataclass(frozen=True)
class Explanation:
    met: bool
    conditions: list[Condition]
    # The requirements still unmet, with activity names where the LMS gave them.
    missing: list[str]
    read_at: datetime
    # "lms" for a fresh re-read, "stored_facts" when the LMS could not be reached.
    source: str
    blockers: list[Blocker] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "read_at": self.read_at.isoformat(),
            "source": self.source,
            "conditions": [asdict(condition) for condition in self.conditions],
            "missing": list(self.missing),
            "blockers": [asdict(blocker) for blocker in self.blockers],
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
    _explain_node(award_rule["rule"], progress, names, 0, conditions)
    outcome = evaluate_award_rule(award_rule, progress)
    missing = [_name_activities(item, names) for item in outcome.missing]
    return Explanation(
        met=outcome.met,
        conditions=conditions,
        missing=missing,
        read_at=read_at,
        source=source,
    )


def _explain_node(
    node: dict[str, Any],
    progress: LearnerProgress,
    names: dict[str, str],
    depth: int,
    conditions: list[Condition],
) -> None:
    met = evaluate_award_rule({"version": 1, "rule": node}, progress).met
    conditions.append(
        Condition(
            description=_describe(node, names),
            met=met,
            lms_data=_lms_data(node, progress, names),
            depth=depth,
        )
    )
    for child in node.get("rules", ()):
        _explain_node(child, progress, names, depth + 1, conditions)


def _activity_name(activity_id: str, names: dict[str, str]) -> str:
    name = names.get(activity_id)
    return f"\u201c{name}\u201d" if name else f"activity {activity_id}"


def _name_activities(text: str, names: dict[str, str]) -> str:
    """Replace "activity <id>" in a rule's missing text with the activity's name."""
    for activity_id, name in names.items():
        text = text.replace(f"activity {activity_id}", f"\u201c{name}\u201d")
    return text


def _describe(node: dict[str, Any], names: dict[str, str]) -> str:
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


def _lms_data(
    node: dict[str, Any], progress: LearnerProgress, names: dict[str, str]
) -> list[str]:
    kind = node["kind"]
    if kind == "course_completed":
        if progress.course_completed:
            return [f"course completed at {_time(progress.course_completed_at)}"]
        return ["course not completed"]

    if kind == "grade_at_least":
        if "activity_id" in node:
            grade = progress.grades.get(node["activity_id"])
        else:
            grade = progress.course_grade
        if grade is None or grade.percent is None:
            return ["no grade"]
        return [f"grade {grade.percent:g}% at {_time(grade.graded_at)}"]

    ids = (
        [node["activity_id"]] if "activity_id" in node else node.get("activity_ids", [])
    )
    data = []
    for activity_id in ids:
        activity = progress.activities.get(activity_id)
        label = _activity_name(activity_id, names)
        if activity is None:
            data.append(f"{label}: not reported")
        elif activity.completed_at is not None:
            data.append(
                f"{label}: {activity.state.value} at {_time(activity.completed_at)}"
            )
        else:
            data.append(f"{label}: {activity.state.value}")
    return data


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
        blockers.append(
            Blocker(
                "enrolment_inactive",
                "The LMS does not track this learner's completion in the course: "
                "the enrolment is not active. Reactivate it in the LMS.",
            )
        )
    if learner is None:
        blockers.append(
            Blocker(
                "learner_unknown",
                "The bridge has not seen this learner yet; they appear after their "
                "first launch or completion.",
            )
        )
    elif not learner.email and not learner.lms_user_id:
        blockers.append(
            Blocker(
                "no_identity",
                "The learner has no email address or LMS account the badge could "
                "name. Ask the LMS admin to share the email in launches.",
            )
        )
    elif not learner.email:
        blockers.append(
            Blocker(
                "no_email",
                "The LMS shares no email address for this learner, so the badge "
                "names their LMS account and portfolios cannot match it by email.",
            )
        )
    under_review = (
        credential is not None
        and credential.completion_reversed_at is not None
        and credential.status == CredentialStatus.LIVE.value
    )
    if under_review:
        blockers.append(
            Blocker(
                "reversal_under_review",
                "The LMS reported the completion reversed on "
                f"{credential.completion_reversed_at.isoformat()}; an instructor "
                "decides whether to revoke the badge.",
            )
        )
    if deliveries_waiting_for_consent:
        blockers.append(
            Blocker(
                "delivery_needs_consent",
                "A delivery waits for the learner to link their portfolio again "
                "and grant access.",
            )
        )
    return blockers
