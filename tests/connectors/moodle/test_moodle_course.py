"""Course reading for the award rule builder, against the fake Moodle over HTTP."""

from __future__ import annotations

import pytest

from connectors.moodle.client import MoodleClient
from connectors.moodle.course import list_rule_activities
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from tests.support.outbound import LOOPBACK_POLICY

TOKEN = "course-token-0001"


@pytest.fixture
def client():
    stand_in = MoodleStandIn(TOKEN)
    server = stand_in.start()
    with MoodleClient(
        stand_in.site_url, TOKEN, max_retries=0, policy=LOOPBACK_POLICY
    ) as made:
        yield made
    server.stop()


def test_rule_activities_listed(client):
    """The rule builder lists the course's tracked activities with their names."""
    activities = list_rule_activities(client, DEMO_COURSE_ID)

    assert [activity.cmid for activity in activities] == [4001, 4002]
    assert activities[0].name == "Final quiz"
    assert activities[0].completion.name == "AUTOMATIC"
    assert activities[1].completion.name == "MANUAL"
