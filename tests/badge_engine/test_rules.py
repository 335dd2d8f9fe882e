from datetime import datetime, timezone

import pytest

from badge_engine.rules import (
    COURSE_COMPLETED_RULE,
    InvalidAwardRule,
    LearnerProgress,
    evaluate_award_rule,
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
    ],
)
def test_validate_rejects_invalid(document, fragment):
    """Invalid rule documents raise with the location and the docs pointer."""
    with pytest.raises(InvalidAwardRule) as caught:
        validate_award_rule(document)

    assert fragment in str(caught.value)
    assert "docs/award-rules.md" in str(caught.value)
