"""docs/onboarding.sh onboards a provider against a running bridge and Moodle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.peers.serving import serve_in_thread
from tests.lti_tool.cli.conftest import MOODLE_TOKEN

SCRIPT = Path(__file__).parents[3] / "docs" / "onboarding.sh"


def test_onboarding_script(cli, moodle, tmp_path):
    """The script creates provider, platform, connection and badge, and backfills."""
    settings = load_settings(environ=cli.env)
    app = create_app(settings)
    token_file = tmp_path / "moodle-token"
    token_file.write_text(MOODLE_TOKEN)
    env = {**cli.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    with serve_in_thread(app) as bridge:
        env["HPASS_PUBLIC_BASE_URL"] = bridge.url
        completed = subprocess.run(
            ["bash", str(SCRIPT), bridge.url, moodle.site_url, str(token_file),
             str(DEMO_COURSE_ID), "academy"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert completed.returncode == 0, completed.stderr
        awards = json.loads(completed.stdout.strip().splitlines()[-1])["awards"]
        assert len(awards) == 1
        page = requests.get(awards[0]["url"], timeout=10,
                            headers={"Accept": "application/json"})
        assert page.status_code == 200
    app.extensions["hpass"].engine.dispose()


def test_onboarding_usage_names_loopback_setting():
    """The usage text names the setting for a bridge on plain HTTP."""
    completed = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30
    )

    assert completed.returncode == 2
    assert "usage:" in completed.stderr
    assert "HPASS_LOOPBACK_DEV=1" in completed.stderr
