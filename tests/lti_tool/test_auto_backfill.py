"""A badge created after learners already met its rule reaches them without a new event."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import Achievement, Credential
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.stack import DemoStack, wait_for

pytestmark = pytest.mark.slow


def test_new_badge_backfilled_for_completed_learner(tmp_path):
    """Creating a course-completion badge awards it to a learner who completed earlier."""
    stack = DemoStack(tmp_path / "instance")
    stack.start(scheduler=False)
    try:
        stack.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
        with requests.Session() as browser:
            page = stack.peers.platform.launch_with_session(browser, "instructor")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            created = browser.post(
                page.url + "/achievements",
                data={
                    "csrf": csrf,
                    "name": "Later badge",
                    "description": "Created after the learner finished.",
                    "criteria": "Complete the course.",
                    "rule_kind": "course_completed",
                },
                timeout=30,
            )

        def later_badge_credentials():
            with stack.bridge.session() as session:
                later = session.scalar(
                    select(Achievement).where(Achievement.name == "Later badge")
                )
                if later is None:
                    return []
                return session.scalars(
                    select(Credential).where(Credential.achievement_id == later.id)
                ).all()

        awarded = wait_for(later_badge_credentials, 60)
    finally:
        stack.stop()

    assert created.status_code == 200
    assert awarded, "the new badge was not backfilled\n" + stack.logs()
    assert len(awarded) == 1
