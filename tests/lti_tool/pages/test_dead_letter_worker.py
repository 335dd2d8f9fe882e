"""A dead letter retried on the admin page runs on a real worker without the sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from badge_engine.outbox import OutboxMessage
from lti_tool.accounts import AccountRole

from .conftest import add_account, sign_in

WAIT_SECONDS = 60


def _start_worker(settings) -> subprocess.Popen:
    """Start `hpass-bridge worker` on the test app's database and embedded broker."""
    env = {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(settings.instance_path),
        "HPASS_PUBLIC_BASE_URL": settings.public_base_url,
        "HPASS_LOOPBACK_DEV": "1",
        # The test app's keys exist only in memory; the worker creates none.
        "HPASS_SECRET_KEY": settings.secret_key.decode(),
        "HPASS_ENCRYPTION_KEYS": ",".join(
            key.decode() for key in settings.encryption_keys
        ),
    }
    env.pop("HPASS_DATABASE_URL", None)
    log = open(settings.instance_path / "worker.log", "ab")  # noqa: SIM115
    # The command is this Python running lti_tool, built from no outside input.
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "lti_tool", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_retried_dead_letter_runs_on_worker(client, tenants, db, settings):
    """With no scheduler running, only the hand-off after the commit reaches a worker."""
    alpha, _ = tenants
    message = OutboxMessage(
        provider_id=alpha.provider_id,
        kind="report.build",
        idempotency_key="worker-retry-1",
        payload={},
        status="dead",
        attempts=12,
        last_error="report service returned HTTP 500",
    )
    db.add(message)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    worker = _start_worker(settings)
    try:
        response = client.post(
            f"/admin/dead-letters/{message.id}/retry", data={"csrf": "test-csrf"}
        )
        # The kind has no handler, so the worker's run ends with that error.
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            db.expire_all()
            stored = db.get(OutboxMessage, message.id)
            # The claim counts the attempt before the run records its error.
            if stored.attempts == 1 and stored.status != "in_progress":
                break
            time.sleep(0.2)
    finally:
        # Killed, not stopped: the worker's warm shutdown once took over 30 seconds
        # here, and the test needs nothing that a clean stop would save.
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    assert response.status_code == 303
    assert stored.attempts == 1
    assert "no handler for outbox message kind 'report.build'" in stored.last_error
