"""DemoStack.stop ends the Celery worker by its warm shutdown, not by SIGKILL."""

from __future__ import annotations

import time

import pytest

from lti_tool.demo.stack import DemoStack, wait_for


def _worker_ready(stack: DemoStack) -> bool:
    log = stack.instance_path / "worker.log"
    return log.exists() and "ready." in log.read_text(errors="replace")


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
