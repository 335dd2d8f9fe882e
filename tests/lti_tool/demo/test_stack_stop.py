"""DemoStack.stop and `run --demo` end the Celery worker and the scheduler by their
warm shutdown, not by SIGKILL, and SIGINT stops them without a traceback."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from lti_tool.cli_run import stop_processes
from lti_tool.demo.stack import DemoStack, free_port, wait_for
from lti_tool.logs import configure_logging

# Text that Python writes for an uncaught exception or one it cannot raise (in a
# finalizer or a signal handler that runs inside one).
TRACEBACK_MARKERS = ("Traceback", "Exception ignored")
RUN_START_SECONDS = 90


def _worker_ready(stack: DemoStack) -> bool:
    log = stack.instance_path / "worker.log"
    return log.exists() and "ready." in log.read_text(errors="replace")


def _scheduler_ready(stack: DemoStack) -> bool:
    # Beat opens its schedule file after it installs its signal handlers.
    return any(stack.instance_path.glob("celerybeat-schedule*"))


@pytest.mark.slow
def test_stop_worker_exits_cleanly(tmp_path):
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    stack.start_worker()
    try:
        wait_for(lambda: _worker_ready(stack), timeout=60)
    finally:
        started = time.monotonic()
        stack.stop()
        elapsed = time.monotonic() - started

    # A worker killed after the grace period returns -9 (SIGKILL).
    assert stack.worker.returncode == 0
    assert elapsed < 12


@pytest.mark.slow
def test_stop_short_grace_kills_worker(tmp_path):
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    stack.start_worker()
    try:
        wait_for(lambda: _worker_ready(stack), timeout=60)
    finally:
        started = time.monotonic()
        stack.stop(grace_seconds=0.2)
        elapsed = time.monotonic() - started

    assert stack.worker.poll() is not None
    assert elapsed < 5


@pytest.mark.slow
def test_sigint_stops_stack_quietly(tmp_path):
    """SIGINT, as Ctrl-C sends, stops the worker and the scheduler with status 0."""
    stack = DemoStack(tmp_path / "instance")
    stack.start(scheduler=True)
    try:
        assert wait_for(lambda: _worker_ready(stack), timeout=60), stack.logs()
        assert wait_for(lambda: _scheduler_ready(stack), timeout=60), stack.logs()
    finally:
        stack.stop(stop_signal=signal.SIGINT)

    logs = stack.logs()
    assert stack.worker.returncode == 0, logs
    assert stack.scheduler.returncode == 0, logs
    for marker in TRACEBACK_MARKERS:
        assert marker not in logs


@pytest.mark.slow
def test_scheduler_sigint_then_sigterm(tmp_path):
    """SIGTERM right after SIGINT still lets the scheduler exit with status 0."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    stack.start_scheduler()
    try:
        assert wait_for(lambda: _scheduler_ready(stack), timeout=60), stack.logs()
        os.kill(stack.scheduler.pid, signal.SIGINT)
        os.kill(stack.scheduler.pid, signal.SIGTERM)
        stack.scheduler.wait(timeout=30)
    finally:
        stack.stop()

    logs = stack.logs()
    assert stack.scheduler.returncode == 0, logs
    for marker in TRACEBACK_MARKERS:
        assert marker not in logs


@pytest.mark.slow
def test_run_demo_sigint_logs_each_stop(tmp_path):
    """Ctrl-C on `run --demo` logs one INFO line per part stopped and no traceback."""
    env = {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": "",
    }
    env.pop("HPASS_DATABASE_URL", None)
    port = free_port()
    stdout_path = tmp_path / "stdout.txt"
    stderr_path = tmp_path / "stderr.txt"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        # The command is this Python running lti_tool with fixed options. A session
        # of its own stands for the terminal's foreground process group.
        run = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "lti_tool", "run", "--demo", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            started = wait_for(
                lambda: "is running at" in stdout_path.read_text(errors="replace"),
                timeout=RUN_START_SECONDS,
            )
            assert started, stderr_path.read_text(errors="replace")
            # A child stopped before it installs its signal handlers dies of the
            # signal, which `run` logs as an error.
            worker_ready = wait_for(
                lambda: "ready." in stderr_path.read_text(errors="replace"),
                timeout=RUN_START_SECONDS,
            )
            assert worker_ready, stderr_path.read_text(errors="replace")
            scheduler_ready = wait_for(
                lambda: any((tmp_path / "instance").glob("celerybeat-schedule*")),
                timeout=RUN_START_SECONDS,
            )
            assert scheduler_ready, stderr_path.read_text(errors="replace")
            # Ctrl-C sends SIGINT to every process in the foreground group.
            os.killpg(run.pid, signal.SIGINT)
            run.wait(timeout=60)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()

    output = stdout_path.read_text(errors="replace")
    errors = stderr_path.read_text(errors="replace")
    assert run.returncode == 0, errors
    assert output.rstrip().endswith("stopped")
    for marker in TRACEBACK_MARKERS:
        assert marker not in errors
        assert marker not in output
    stop_lines = [line for line in errors.splitlines() if "[lti_tool.run]" in line]
    assert len(stop_lines) == 3, errors
    assert "web_server_stopped" in stop_lines[0]
    assert "background_process_stopped" in stop_lines[1]
    assert "process=worker" in stop_lines[1]
    assert "background_process_stopped" in stop_lines[2]
    assert "process=scheduler" in stop_lines[2]
    for line in stop_lines:
        assert "[info" in line


# A child that exits with status 3 on SIGTERM, as a worker whose shutdown fails.
FAILING_STOP_SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_processes_logs_failed_stop(caplog):
    """A child that exits non-zero on SIGTERM is logged at ERROR with its status."""
    configure_logging("console", "INFO")
    # The command is this Python running a fixed script.
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", FAILING_STOP_SCRIPT],
        stdout=subprocess.PIPE,
        process_group=0,
    )
    assert child.stdout.readline() == b"ready\n"

    with caplog.at_level(logging.INFO, logger="lti_tool.run"):
        stop_processes([child], names=("worker",))
    child.stdout.close()

    records = [r for r in caplog.records if r.name == "lti_tool.run"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    message = records[0].getMessage()
    assert "background_process_failed" in message
    assert "'exit_status': 3" in message
    assert "'process': 'worker'" in message
