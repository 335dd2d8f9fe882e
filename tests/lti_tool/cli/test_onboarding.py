"""docs/onboarding.sh onboards a provider against a running bridge and Moodle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests

from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.peers.serving import serve_in_thread
from tests.lti_tool.cli.conftest import CONSOLE_SCRIPT, MOODLE_TOKEN

SCRIPT = Path(__file__).parents[3] / "docs" / "onboarding.sh"


# PATH without the test's virtual environment, as in a shell where the README's
# quick start has just run. The script reads JSON with the system's python3.
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"


def _repository_copy(tmp_path: Path, with_venv: bool) -> Path:
    """Return a copy of the script in a repository folder whose .venv, when
    `with_venv`, contains the hpass-bridge command, as the quick start makes it."""
    repository = tmp_path / "repository"
    (repository / "docs").mkdir(parents=True)
    script = repository / "docs" / "onboarding.sh"
    script.write_text(SCRIPT.read_text())
    if with_venv:
        (repository / ".venv" / "bin").mkdir(parents=True)
        (repository / ".venv" / "bin" / "hpass-bridge").symlink_to(CONSOLE_SCRIPT)
    return script


def _run(script: Path, env: dict, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_onboarding_script(cli, moodle, tmp_path):
    """The script finds the command in the repository's .venv, creates provider,
    platform, connection and badge, backfills, and a second run reuses them all."""
    settings = load_settings(environ=cli.env)
    app = create_app(settings)
    token_file = tmp_path / "moodle-token"
    token_file.write_text(MOODLE_TOKEN)
    script = _repository_copy(tmp_path, with_venv=True)
    env = {**cli.env, "PATH": PLAIN_PATH}
    env.pop("HPASS_BRIDGE_COMMAND", None)

    with serve_in_thread(app) as bridge:
        env["HPASS_PUBLIC_BASE_URL"] = bridge.url
        arguments = (
            bridge.url,
            moodle.site_url,
            str(token_file),
            str(DEMO_COURSE_ID),
            "academy",
        )
        first = _run(script, env, *arguments)
        second = _run(script, env, *arguments)

        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        awards = json.loads(first.stdout.strip().splitlines()[-1])["awards"]
        assert len(awards) == 1
        page = requests.get(
            awards[0]["url"], timeout=10, headers={"Accept": "application/json"}
        )
        assert page.status_code == 200
    again = [json.loads(line) for line in second.stdout.strip().splitlines()]
    statuses = [document.get("status") for document in again]
    assert statuses[1:5] == ["unchanged"] * 4
    assert len(again[-1]["awards"]) == 1
    app.extensions["hpass"].engine.dispose()


def test_onboarding_other_provider_values(cli, tmp_path):
    """A provider of the slug with another name stops the script naming --name."""
    cli.ok(
        "provider",
        "add",
        "--slug",
        "academy",
        "--name",
        "Another Academy",
        "--url",
        "https://moodle.example.org",
    )
    token_file = tmp_path / "moodle-token"
    token_file.write_text(MOODLE_TOKEN)
    env = {**cli.env, "PATH": PLAIN_PATH, "HPASS_BRIDGE_COMMAND": str(CONSOLE_SCRIPT)}

    completed = _run(
        SCRIPT,
        env,
        "http://127.0.0.1:5999",
        "https://moodle.example.org",
        str(token_file),
        "7",
        "academy",
    )

    assert completed.returncode == 2
    assert "already exists with other values" in completed.stderr
    assert "--name is 'Another Academy', not 'Onboarded Academy'" in completed.stderr


def test_onboarding_without_command(tmp_path):
    """Without the command anywhere, the script prints where it looked and what to set."""
    script = _repository_copy(tmp_path, with_venv=False)
    env = {"PATH": PLAIN_PATH, "HOME": str(tmp_path)}

    completed = _run(
        script, env, "http://127.0.0.1:5999", "https://moodle.example.org", "token", "7"
    )

    assert completed.returncode == 1
    assert "hpass-bridge not found" in completed.stderr
    assert "HPASS_BRIDGE_COMMAND" in completed.stderr
    assert not (tmp_path / "instance").exists()


def test_onboarding_usage_names_loopback_setting():
    """The usage text names the setting for a bridge on plain HTTP."""
    completed = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30
    )

    assert completed.returncode == 2
    assert "usage:" in completed.stderr
    assert "HPASS_LOOPBACK_DEV=1" in completed.stderr
