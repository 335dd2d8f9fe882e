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
