"""'Why not yet?' as data: conditions, LMS readings, missing rule nodes, and the
English wording of `Explanation.to_json`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from badge_engine.explain import (
    COMPLETION_TIME,
    BLOCKER_DELIVERY_NEEDS_CONSENT,
    BLOCKER_ENROLMENT_INACTIVE,
    BLOCKER_LEARNER_UNKNOWN,
    BLOCKER_NO_EMAIL,
    BLOCKER_NO_IDENTITY,
    BLOCKER_REVERSAL_UNDER_REVIEW,
    NOT_REPORTED,
    READING_ACTIVITY,
    READING_COURSE,
    READING_GRADE,
    Blocker,
    LmsReading,
    award_blockers,
    explain_award,
    missing_rules,
)
from badge_engine.facts import CompletionState
from badge_engine.models import Credential, CredentialStatus, Learner
from badge_engine.rules import (
    ActivityProgress,
    GradeProgress,
    InvalidAwardRule,
    LearnerProgress,
)

READ_AT = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
DONE_AT = datetime(2026, 1, 1, tzinfo=UTC)
NAMES = {"4001": "Final quiz"}


def rule(node: dict) -> dict:
    return {"version": 1, "rule": node}


def explain(node: dict, progress: LearnerProgress, names=None):
    return explain_award(
        rule(node), progress, read_at=READ_AT, source="lms", activity_names=names
    )


NOTHING_DONE = LearnerProgress(course_completed=False)
QUIZ_DONE = LearnerProgress(
    course_completed=False,
    activities={"4001": ActivityProgress(CompletionState.COMPLETE, DONE_AT)},
)
NESTED = {
    "kind": "all_of",
    "rules": [
        {"kind": "course_completed"},
        {
            "kind": "any_of",
            "rules": [
                {"kind": "activity_completed", "activity_id": "4001"},
                {"kind": "grade_at_least", "min_percent": 70},
            ],
        },
    ],
    "window": {"from": "2025-01-01T00:00:00Z"},
}


def test_conditions_carry_kind_and_values():
    """Each node becomes a condition with its kind, fields and depth, and nested
    rules follow as their own conditions."""
    explanation = explain(NESTED, QUIZ_DONE)
    conditions = explanation.conditions

    assert [c.kind for c in conditions] == [
        "all_of",
        "course_completed",
        "any_of",
        "activity_completed",
        "grade_at_least",
    ]
    assert [c.depth for c in conditions] == [0, 1, 1, 2, 2]
    assert [c.met for c in conditions] == [False, False, True, True, False]
    assert conditions[0].values == {"window": {"from": "2025-01-01T00:00:00Z"}}
    assert "rules" not in conditions[2].values
    assert conditions[3].values == {"activity_id": "4001"}
    assert conditions[4].rule == {"kind": "grade_at_least", "min_percent": 70}


def test_readings_per_kind():
    """The LMS data behind each condition is returned as readings, not as text."""
    progress = LearnerProgress(
        course_completed=True,
        course_completed_at=None,
        activities={
            "4001": ActivityProgress(CompletionState.PASSED, DONE_AT),
            "4002": ActivityProgress(CompletionState.INCOMPLETE),
        },
        course_grade=GradeProgress(82.5, DONE_AT),
    )
    node = {
        "kind": "any_of",
        "rules": [
            {"kind": "course_completed"},
            {"kind": "grade_at_least", "min_percent": 70},
            {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 50},
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002", "4003"],
                "match": "all",
            },
        ],
    }

    readings = [c.readings for c in explain(node, progress).conditions]

    assert readings[0] == []
    assert readings[1] == [LmsReading(READING_COURSE, "completed", at=None)]
    assert readings[2] == [LmsReading(READING_GRADE, percent=82.5, at=DONE_AT)]
    assert readings[3] == [LmsReading(READING_GRADE, activity_id="4001")]
    assert readings[4] == [
        LmsReading(READING_ACTIVITY, "passed", activity_id="4001", at=DONE_AT),
        LmsReading(READING_ACTIVITY, "incomplete", activity_id="4002"),
        LmsReading(READING_ACTIVITY, NOT_REPORTED, activity_id="4003"),
    ]


def test_course_not_completed_reading():
    explanation = explain({"kind": "course_completed"}, NOTHING_DONE)

    assert explanation.conditions[0].readings == [
        LmsReading(READING_COURSE, "not_completed")
    ]


@pytest.mark.parametrize(
    ("node", "progress", "expected"),
    [
        ({"kind": "course_completed"}, NOTHING_DONE, [{"kind": "course_completed"}]),
        ({"kind": "activity_completed", "activity_id": "4001"}, QUIZ_DONE, []),
        (
            {
                "kind": "activities_completed",
                "activity_ids": ["4001", "4002", "4003"],
                "match": "all",
            },
            QUIZ_DONE,
            [
                {"kind": "activity_completed", "activity_id": "4002"},
                {"kind": "activity_completed", "activity_id": "4003"},
            ],
        ),
        (
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002", "4003"],
                "count": 2,
            },
            QUIZ_DONE,
            [
                {
                    "kind": "activities_completed_at_least",
                    "activity_ids": ["4001", "4002", "4003"],
                    "count": 2,
                }
            ],
        ),
        (
            {
                "kind": "all_of",
                "rules": [
                    {"kind": "activity_completed", "activity_id": "4001"},
                    {"kind": "course_completed"},
                    {
                        "kind": "any_of",
                        "rules": [
                            {"kind": "grade_at_least", "min_percent": 70},
                            {"kind": "activity_completed", "activity_id": "4002"},
                        ],
                    },
                ],
            },
            QUIZ_DONE,
            [
                {"kind": "course_completed"},
                {
                    "kind": "any_of",
                    "rules": [
                        {"kind": "grade_at_least", "min_percent": 70},
                        {"kind": "activity_completed", "activity_id": "4002"},
                    ],
                },
            ],
        ),
    ],
    ids=["course", "met", "all-activities", "at-least", "nested"],
)
def test_missing_rules_shapes(node, progress, expected):
    """Unmet parts come back as rule nodes: all_of and match-all sets split up."""
    assert missing_rules(rule(node), progress) == expected
    assert explain(node, progress).missing_rules == expected


def test_missing_rules_window_outside():
    """A condition met outside its window is missing whole, window included."""
    node = {
        "kind": "activities_completed",
        "activity_ids": ["4001"],
        "match": "all",
        "window": {"from": "2026-06-01T00:00:00Z"},
    }

    assert missing_rules(rule(node), QUIZ_DONE) == [node]


def test_missing_rules_window_no_time():
    """A windowed condition met with no LMS time is missing only that time."""
    node = {
        "kind": "course_completed",
        "window": {"from": "2025-01-01T00:00:00Z"},
    }
    undated = LearnerProgress(course_completed=True, course_completed_at=None)

    missing = missing_rules(rule(node), undated)

    assert missing == [
        {
            "kind": COMPLETION_TIME,
            "rule": {"kind": "course_completed"},
            "window": {"from": "2025-01-01T00:00:00Z"},
        }
    ]
    assert explain(node, undated).missing_rules == missing


def test_missing_rules_window_unmet_whole():
    """A windowed condition not met at all is missing whole, not only its time."""
    node = {
        "kind": "course_completed",
        "window": {"from": "2025-01-01T00:00:00Z"},
    }

    assert missing_rules(rule(node), NOTHING_DONE) == [node]


def test_missing_rules_invalid_rule():
    with pytest.raises(InvalidAwardRule):
        missing_rules(rule({"kind": "no_such_kind"}), NOTHING_DONE)


def test_json_english_descriptions():
    """The JSON output words conditions and LMS data in English for scripts."""
    progress = LearnerProgress(
        course_completed=True,
        activities={
            "4001": ActivityProgress(CompletionState.COMPLETE, DONE_AT),
            "4002": ActivityProgress(CompletionState.INCOMPLETE),
        },
        grades={"4001": GradeProgress(80, DONE_AT)},
    )
    node = {
        "kind": "all_of",
        "rules": [
            {"kind": "course_completed", "window": {"from": "2025-01-01T00:00:00Z"}},
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002"],
                "count": 1,
            },
            {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 75},
            {"kind": "grade_at_least", "min_percent": 60},
            {
                "kind": "any_of",
                "rules": [
                    {"kind": "activity_completed", "activity_id": "4003"},
                    {
                        "kind": "activities_completed",
                        "activity_ids": ["4002"],
                        "match": "any",
                    },
                ],
            },
        ],
    }

    body = explain(node, progress, NAMES).to_json()
    described = [(c["description"], c["lms_data"]) for c in body["conditions"]]

    assert described == [
        ("Meet every one of these", []),
        (
            "Complete the course from 2025-01-01T00:00:00Z",
            ["course completed at an unknown time"],
        ),
        (
            "Complete at least 1 of “Final quiz”, activity 4002",
            [
                "“Final quiz”: complete at 2026-01-01T00:00:00+00:00",
                "activity 4002: incomplete",
            ],
        ),
        (
            "Reach at least 75% in “Final quiz”",
            ["grade 80% at 2026-01-01T00:00:00+00:00"],
        ),
        ("Reach at least 60% in the course total", ["no grade"]),
        ("Meet at least one of these", []),
        ("Complete activity 4003", ["activity 4003: not reported"]),
        ("Complete any of activity 4002", ["activity 4002: incomplete"]),
    ]
    assert body["conditions"][2]["kind"] == "activities_completed_at_least"
    assert body["conditions"][2]["values"] == {
        "activity_ids": ["4001", "4002"],
        "count": 1,
    }
    assert body["missing"] == [
        "a completion time from 2025-01-01T00:00:00Z",
        "grade of at least 60% in course total",
        "1 more of: activity 4003, 1 more of: activity 4002",
    ]
    assert "missing_rules" not in body


def test_engine_imports_no_web_framework():
    """badge_engine.explain loads neither Flask nor Babel nor the web packages."""
    probe = (
        "import sys, badge_engine.explain; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'flask', 'babel', 'jinja2', 'lti_tool', 'connectors'}))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


REVERSED_AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_blockers_are_codes_with_values():
    """Blockers carry a code and the values a page words, not a sentence."""
    learner = Learner(lms_user_id="42")
    credential = Credential(
        status=CredentialStatus.LIVE.value, completion_reversed_at=REVERSED_AT
    )

    blockers = award_blockers(
        learner,
        credential,
        enrolment_active=False,
        deliveries_waiting_for_consent=2,
    )

    assert [blocker.code for blocker in blockers] == [
        BLOCKER_ENROLMENT_INACTIVE,
        BLOCKER_NO_EMAIL,
        BLOCKER_REVERSAL_UNDER_REVIEW,
        BLOCKER_DELIVERY_NEEDS_CONSENT,
    ]
    assert blockers[0].values == {}
    assert blockers[1].values == {}
    assert blockers[2].values == {"reversed_at": REVERSED_AT}
    assert blockers[3].values == {"deliveries": 2}


@pytest.mark.parametrize(
    ("learner", "expected"),
    [
        (None, BLOCKER_LEARNER_UNKNOWN),
        (Learner(), BLOCKER_NO_IDENTITY),
        (Learner(lms_user_id="42"), BLOCKER_NO_EMAIL),
    ],
)
def test_blockers_learner_identity(learner, expected):
    """A learner the bridge lacks, or one with no email, gets one identity code."""
    blockers = award_blockers(learner, None, enrolment_active=None)

    assert [blocker.code for blocker in blockers] == [expected]


def test_blockers_none_for_ready_learner():
    """A learner with an email, an active enrolment and no review has none."""
    learner = Learner(lms_user_id="42", email="learner@example.org")

    assert award_blockers(learner, None, enrolment_active=True) == []


def test_blocker_json_code_values_message():
    """The JSON form keeps the code, the values as JSON and an English message."""
    blocker = Blocker(BLOCKER_REVERSAL_UNDER_REVIEW, {"reversed_at": REVERSED_AT})

    body = blocker.to_json()

    assert body["code"] == "reversal_under_review"
    assert body["values"] == {"reversed_at": "2026-03-01T08:00:00+00:00"}
    assert body["message"] == (
        "The LMS reported the completion reversed at 2026-03-01T08:00:00+00:00. "
        "An instructor decides whether to revoke the badge."
    )


@pytest.mark.parametrize(
    ("deliveries", "start"), [(1, "1 delivery waits"), (3, "3 deliveries wait")]
)
def test_blocker_message_counts_deliveries(deliveries, start):
    """The English message for waiting deliveries agrees with their count."""
    blocker = Blocker(BLOCKER_DELIVERY_NEEDS_CONSENT, {"deliveries": deliveries})

    assert blocker.message.startswith(start)


def test_explanation_json_lists_blockers():
    """`Explanation.to_json` lists each blocker in its JSON form."""
    explanation = explain({"kind": "course_completed"}, NOTHING_DONE)
    explanation.blockers.append(Blocker(BLOCKER_LEARNER_UNKNOWN))

    blockers = explanation.to_json()["blockers"]

    assert blockers == [
        {
            "code": "learner_unknown",
            "values": {},
            "message": Blocker(BLOCKER_LEARNER_UNKNOWN).message,
        }
    ]
