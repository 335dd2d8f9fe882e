"""`hpass-bridge run` stopped by SIGTERM or SIGINT while it is still starting.

The checks find the processes `run` started through /proc: `run` leads a session
of its own here, and the worker, the scheduler and the worker's pool processes all
stay in that session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.demo.stack import free_port, wait_for

STOP_SECONDS = 60
TRACEBACK_MARKERS = ("Traceback", "Exception ignored")


def _session_members(session_id: int) -> list[int]:
    """Return the pids of live processes in session `session_id`, zombies excluded."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces, so fields are counted
        # after its closing bracket: state, ppid, pgrp, session.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(item) for item in text.split()]


@pytest.fixture
def run_env(tmp_path, migrated_schemas):
    """The environment of a `run` on a free loopback port and a migrated SQLite
    instance, set up in this process as the console script tests set theirs up."""
    port = free_port()
    env = {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HPASS_LOOPBACK_DEV": "1",
    }
    env.pop("HPASS_DATABASE_URL", None)
    settings = load_settings(environ=env)
    ensure_secret_files(settings, env)
    migrated_schemas.install(settings.database_url)
    return env, port


def _port_bound(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# When the test sends the signal: a probe that `wait_for` polls, then a pause.
MOMENTS = {
    # The port is bound before the instance is prepared and any child starts.
    "port_bound": (lambda run, port: _port_bound(port), 0.0),
    "first_child": (lambda run, port: _children(run.pid), 0.0),
    # The worker and the scheduler are then importing Celery and the bridge.
    "children_starting": (lambda run, port: len(_children(run.pid)) == 2, 0.5),
}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_startup(run_env, tmp_path, stop_signal, moment):
    """A signal sent while `run` starts stops every process it started, and `run`
    exits 0 with a last line saying that it stopped."""
    env, port = run_env
    probe, pause = MOMENTS[moment]
    stdout_path = tmp_path / "stdout.txt"
    stderr_path = tmp_path / "stderr.txt"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        # The command is this Python running lti_tool with fixed options.
        run = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "lti_tool", "run", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            reached = wait_for(lambda: probe(run, port), 90, interval=0.005)
            assert reached, stderr_path.read_text(errors="replace")
            time.sleep(pause)
            os.kill(run.pid, stop_signal)
            exit_code = run.wait(timeout=STOP_SECONDS)
            # A child that was not stopped is reparented and keeps running. The
            # short wait lets a child that is still exiting finish first.
            time.sleep(0.5)
            left = _session_members(run.pid)
        finally:
            for pid in _session_members(run.pid):
                os.kill(pid, signal.SIGKILL)
            if run.poll() is None:
                run.kill()
                run.wait()

    output = stdout_path.read_text(errors="replace")
    errors = stderr_path.read_text(errors="replace")
    assert left == [], errors
    assert exit_code == 0, errors
    assert output.rstrip().endswith("stopped"), output
    # Depending on how far the start-up got, the output reports either that the
    # bridge is running or that the signal came before that.
    printed_running = "is running at" in output
    printed_starting = f"{stop_signal.name} received while starting" in output
    assert printed_running != printed_starting, output
    for marker in TRACEBACK_MARKERS:
        assert marker not in errors
