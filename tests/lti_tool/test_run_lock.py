"""One `hpass-bridge run` per instance folder: a second one is rejected with the
running one's pid and address, and a lock left by a killed `run` blocks nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from lti_tool.config import RUN_URL_FILE
from lti_tool.demo.stack import free_port, wait_for
from lti_tool.run_lock import (
    RUN_LOCK_FILE,
    InstanceInUse,
    current_holder,
    hold_run_lock,
)

START_SECONDS = 90


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def start_run(instance):
    """Start `hpass-bridge run` processes on the instance; kill what is left at the end."""
    processes = []
    env = {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(instance),
        "HPASS_PUBLIC_BASE_URL": "",
    }

    def start(*options: str) -> subprocess.Popen:
        # Output goes to files, because the worker and scheduler log to the same
        # stream and would block on a full pipe that the test does not read.
        number = len(processes)
        with (
            open(instance.parent / f"run-{number}.out", "wb") as stdout,
            open(instance.parent / f"run-{number}.err", "wb") as stderr,
        ):
            # The command is this Python running lti_tool with fixed options.
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "lti_tool", "run", *options],
                env=env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        process.stderr_path = instance.parent / f"run-{number}.err"
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stderr(process: subprocess.Popen) -> str:
    return process.stderr_path.read_text(errors="replace")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def test_hold_run_lock_twice_rejected(instance):
    """A second lock on the same instance raises with the first holder's record."""
    first = hold_run_lock(instance, "http://127.0.0.1:5000")
    try:
        with pytest.raises(InstanceInUse) as raised:
            hold_run_lock(instance, "http://127.0.0.1:5091")
    finally:
        first.close()

    assert raised.value.pid == os.getpid()
    assert raised.value.url == "http://127.0.0.1:5000"
    assert "stop that one first" in str(raised.value)
    record = json.loads((instance / RUN_LOCK_FILE).read_text())
    assert record == {"pid": os.getpid(), "url": "http://127.0.0.1:5000"}


def test_hold_run_lock_after_close(instance):
    """A lock file whose holder has closed it is taken over and rewritten."""
    hold_run_lock(instance, "http://127.0.0.1:5000").close()

    second = hold_run_lock(instance, "http://127.0.0.1:5091")
    second.close()

    record = json.loads((instance / RUN_LOCK_FILE).read_text())
    assert record["url"] == "http://127.0.0.1:5091"


def test_current_holder(instance):
    """The holder is read without taking the lock, and a folder never run has none."""
    assert current_holder(instance) is None
    assert not (instance / RUN_LOCK_FILE).exists()

    first = hold_run_lock(instance, "http://127.0.0.1:5000")
    try:
        holder = current_holder(instance)
    finally:
        first.close()

    assert (holder.pid, holder.url) == (os.getpid(), "http://127.0.0.1:5000")
    assert current_holder(instance) is None


@pytest.mark.slow
def test_second_run_on_same_port_names_first(instance, start_run):
    """A second `run` on the same instance and port, the README's command twice,
    exits 1 naming the running one rather than only the busy port."""
    port = free_port()
    first = start_run("--port", str(port))
    assert wait_for(lambda: _answers(port), START_SECONDS), _stderr(first)

    second = start_run("--port", str(port))
    second.wait(timeout=START_SECONDS)
    stderr = _stderr(second)

    assert second.returncode == 1
    assert f"pid {first.pid}" in stderr
    assert f"http://127.0.0.1:{port}" in stderr
    assert "stop that one first" in stderr
    assert first.poll() is None
    _stop(first)
    assert first.returncode == 0


@pytest.mark.slow
def test_second_run_rejected(instance, start_run):
    """A second `run --demo` on an instance in use exits 1 naming the running one,
    and leaves its run-base-url alone."""
    first_port, second_port = free_port(), free_port()
    first = start_run("--port", str(first_port))
    assert wait_for(lambda: _answers(first_port), START_SECONDS), _stderr(first)

    second = start_run("--demo", "--port", str(second_port))
    second.wait(timeout=START_SECONDS)
    stderr = _stderr(second)

    assert second.returncode == 1
    assert f"pid {first.pid}" in stderr
    assert f"http://127.0.0.1:{first_port}" in stderr
    assert "HPASS_INSTANCE_PATH" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not _answers(second_port)
    run_url = (instance / RUN_URL_FILE).read_text().strip()
    assert run_url == f"http://127.0.0.1:{first_port}"
    assert first.poll() is None
    _stop(first)
    assert first.returncode == 0


@pytest.mark.slow
def test_run_after_killed_run_starts(instance, start_run):
    """A lock file left by a `run` killed with SIGKILL does not block the next one."""
    first_port, second_port = free_port(), free_port()
    first = start_run("--port", str(first_port))
    assert wait_for(lambda: _answers(first_port), START_SECONDS), _stderr(first)
    first.kill()
    first.wait(timeout=30)
    assert (instance / RUN_LOCK_FILE).exists()

    second = start_run("--port", str(second_port))
    started = wait_for(lambda: _answers(second_port), START_SECONDS)

    assert started, _stderr(second)
    record = json.loads((instance / RUN_LOCK_FILE).read_text())
    assert record == {"pid": second.pid, "url": f"http://127.0.0.1:{second_port}"}
    run_url = (instance / RUN_URL_FILE).read_text().strip()
    assert run_url == f"http://127.0.0.1:{second_port}"
    _stop(second)
