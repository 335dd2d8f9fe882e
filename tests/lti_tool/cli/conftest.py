"""Run `hpass-bridge` as a real process on a fresh instance folder, beside the
Moodle and Canvas stand-ins on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.demo.peers.canvas import FakeCanvas
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.peers.serving import serve_in_thread

CONSOLE_SCRIPT = Path(sys.executable).parent / "hpass-bridge"
MOODLE_TOKEN = "moodle-ws-token"
CANVAS_COURSE_ID = 565
RULE = '{"version": 1, "rule": {"kind": "course_completed"}}'


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def document(self):
        return json.loads(self.stdout)


class Cli:
    """Runs the console script with one instance folder's environment."""

    def __init__(self, instance: Path) -> None:
        self.env = {
            **os.environ,
            "HPASS_INSTANCE_PATH": str(instance),
            "HPASS_PUBLIC_BASE_URL": "http://127.0.0.1:5999",
            "HPASS_LOOPBACK_DEV": "1",
        }
        self.env.pop("HPASS_DATABASE_URL", None)

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        completed = subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, result.stderr
        return result


@pytest.fixture
def cli(tmp_path, migrated_schemas) -> Cli:
    """The console script on an instance set up as `db upgrade` sets one up.

    The folder, secret files and schema are made in this process, because a
    `db upgrade` run per test cost about 3 s on a 2-core machine. The command
    itself runs through the console script in test_missing_instance.py.
    """
    runner = Cli(tmp_path / "instance")
    settings = load_settings(environ=runner.env)
    ensure_secret_files(settings, runner.env)
    migrated_schemas.install(settings.database_url)
    return runner


@pytest.fixture
def moodle():
    """The Moodle stand-in with the demo learner's course completed."""
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    stand_in.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID, send_event=False)
    yield stand_in
    server.stop()


@pytest.fixture
def canvas():
    fake = FakeCanvas()
    fake.add_course(CANVAS_COURSE_ID)
    fake.add_students(CANVAS_COURSE_ID, [123, 124])
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def provider(cli) -> str:
    cli.ok(
        "provider",
        "add",
        "--slug",
        "acme",
        "--name",
        "Acme Academy",
        "--url",
        "https://acme.example.org",
    )
    return "acme"


@pytest.fixture
def moodle_connection(cli, provider, moodle) -> str:
    result = cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
        "--json",
    )
    return result.document["connection"]["id"]


@pytest.fixture
def achievement(cli, provider, moodle_connection) -> str:
    result = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        str(DEMO_COURSE_ID),
        "--name",
        "Course finisher",
        "--description",
        "Finished it.",
        "--criteria",
        "Complete the course.",
        "--rule",
        RULE,
        "--no-backfill",
        "--json",
    )
    return result.document["achievement"]["id"]


@pytest.fixture
def award(cli, achievement) -> str:
    cli.ok("achievement", "backfill", achievement)
    result = cli.ok("awards", "list", "--provider", "acme", "--json")
    return result.document["awards"][0]["id"]
