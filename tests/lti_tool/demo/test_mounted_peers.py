"""The demo peers work when mounted under /demo beside the bridge, as `run --demo` serves them."""

from __future__ import annotations

import re

import requests

from lti_tool.demo.stack import DemoStack


def test_moodle_page_buttons_mounted(tmp_path):
    """The Moodle stand-in's buttons post under its mount path and come back to its page."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/moodle/", timeout=10)
        actions = re.findall(r'action="([^"]+)"', page.text)
        response = requests.post(f"{stack.base_url}{actions[0]}", timeout=30)
    finally:
        stack.stop()

    assert actions == ["/demo/moodle/complete", "/demo/moodle/reset"]
    assert response.status_code == 200
    assert response.url == f"{stack.base_url}/demo/moodle/"


def test_platform_launch_links_mounted(tmp_path):
    """The platform's launch links point under its mount path."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/platform/", timeout=10)
    finally:
        stack.stop()

    links = re.findall(r'href="([^"]*launch/[^"]+)"', page.text)
    assert links
    assert all(link.startswith("/demo/platform/launch/") for link in links)


def test_peers_keep_state_across_restart(tmp_path):
    """After a restart the Moodle stand-in and the portfolio still hold what they had."""
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID

    first = DemoStack(tmp_path / "instance")
    first.start_web()
    try:
        first.peers.portfolio.restore(
            {
                "credentials": [
                    {
                        "credential_id": "urn:uuid:kept",
                        "credential": {"id": "urn:uuid:kept"},
                        "compact_jws": None,
                        "received_at": 1.0,
                    }
                ]
            }
        )
        # Any request that is not a GET saves the peers' state.
        requests.post(f"{first.base_url}/demo/moodle/reset", timeout=30)
        requests.post(f"{first.base_url}/demo/moodle/complete", timeout=30)
        completed_at = first.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
    finally:
        first.stop()

    second = DemoStack(tmp_path / "instance")
    second.start_web()
    try:
        moodle = second.peers.moodle
        kept = second.peers.portfolio.stored_credential("urn:uuid:kept")
        remembered = moodle.course_completion_time(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    finally:
        second.stop()

    assert completed_at is not None
    assert remembered == completed_at
    assert kept is not None
    assert kept.credential == {"id": "urn:uuid:kept"}


def test_unreadable_state_file_starts_empty(tmp_path):
    """A corrupt demo-state.json is logged and the peers start with no progress."""
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "demo-state.json").write_text("{not json")
    stack = DemoStack(instance)
    stack.start_web()
    try:
        remembered = stack.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
    finally:
        stack.stop()

    assert remembered is None
