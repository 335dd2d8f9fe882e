"""`awards explain` names the activities of what is missing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement
from lti_tool.bridge import Bridge
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.course_activities import CourseActivityName
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.operations.awards import name_activities

GRADE_RULE = json.dumps(
    {
        "version": 1,
        "rule": {"kind": "grade_at_least", "activity_id": "4001", "min_percent": 80},
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grade of at least 80% in activity 4001",
            "grade of at least 80% in “Final quiz” [4001]",
        ),
        ("activity 40", "activity 40"),
        (
            "1 more of: activity 4001, activity 77",
            "1 more of: “Final quiz” [4001], activity 77",
        ),
        (
            "activity 4001 from 2025-01-01T00:00:00Z",
            "“Final quiz” [4001] from 2025-01-01T00:00:00Z",
        ),
        ("course completion", "course completion"),
    ],
)
def test_name_activities(text, expected):
    """Each activity with a stored name is named, with its id in brackets."""
    assert name_activities(text, {"4001": "Final quiz", "400": "Other"}) == expected


def _store_name(cli, public_id: str, activity_id: str, name: str) -> None:
    settings = load_settings(environ=cli.env)
    ensure_secret_files(settings, cli.env)
    bridge = Bridge.from_settings(settings)
    try:
        with bridge.session() as session:
            achievement = session.scalar(
                select(Achievement).where(Achievement.public_id == public_id)
            )
            session.add(
                CourseActivityName(
                    provider_id=achievement.provider_id,
                    lms_connection_id=achievement.lms_connection_id,
                    lms_course_id=achievement.lms_course_id,
                    activity_id=activity_id,
                    name=name,
                )
            )
            session.commit()
    finally:
        bridge.engine.dispose()


def test_explain_names_grade_activity(cli, provider, moodle_connection):
    """A missing grade names the activity by its stored name, with its id."""
    badge = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        str(DEMO_COURSE_ID),
        "--name",
        "Quiz master",
        "--description",
        "Passed the quiz.",
        "--criteria",
        "Reach 80% in the final quiz.",
        "--rule",
        GRADE_RULE,
        "--no-backfill",
        "--json",
    ).document["achievement"]["id"]
    _store_name(cli, badge, "4001", "Final quiz")

    explained = cli.ok(
        "awards",
        "explain",
        "--achievement",
        badge,
        "--learner",
        str(DEMO_LEARNER_ID),
    )

    assert "grade of at least 80% in “Final quiz” [4001]" in explained.stdout
    assert "in activity 4001" not in explained.stdout
