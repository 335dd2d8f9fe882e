"""Secrets never reach logs or stored payloads on the whole demo path, at DEBUG level.

The demo runs the bridge in this process and a real Celery worker in another, both
at DEBUG, through launch, a Moodle completion webhook, issuing and delivery. Then
every log line (this process's stderr and the worker's log file) and every stored
outbox payload and raw event payload is searched for each secret the demo holds.
"""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select, text

from badge_engine.models import Learner
from badge_engine.outbox import OutboxMessage
from lti_tool.demo.headless import _run_steps
from lti_tool.demo.stack import DemoStack


@pytest.fixture
def demo_run(tmp_path, capfd):
    """Run the headless demo at DEBUG level; return the stack, its logs and secrets."""
    stack = DemoStack(tmp_path / "instance", extra_env={"HPASS_LOG_LEVEL": "DEBUG"})
    try:
        stack.start_web()
        logging.getLogger().setLevel(logging.DEBUG)
        summary = _run_steps(stack, None, lambda line: None)
        assert summary["verified"]
        captured = capfd.readouterr()
        logs = captured.out + captured.err
        for log_file in stack.instance_path.glob("*.log"):
            logs += log_file.read_text(errors="replace")
        secrets_file = json.loads(
            (stack.instance_path / "demo-secrets.json").read_text()
        )
        secrets = {name: value for name, value in secrets_file.items()}
        for name in ("encryption_key", "secret_key"):
            path = stack.instance_path / name
            if path.exists():
                secrets[name] = path.read_text().strip()
        with stack.bridge.session() as session:
            emails = session.scalars(
                select(Learner.email).where(Learner.email.is_not(None))
            )
            for index, email in enumerate(emails):
                secrets[f"learner email {index}"] = email
        yield stack, logs, secrets
    finally:
        stack.stop()


def test_demo_logs_hold_no_secret(demo_run):
    """No demo token, webhook secret, instance key or learner email is in a DEBUG log line."""
    _, logs, secrets = demo_run

    assert "outbox_message_done" in logs
    for name, value in secrets.items():
        assert value not in logs, f"{name} appears in the logs"


def test_stored_payloads_hold_no_secret(demo_run):
    """Outbox payloads and stored raw event payloads contain none of the secrets."""
    stack, _, secrets = demo_run
    with stack.bridge.session() as session:
        payloads = [
            json.dumps(row) for row in session.scalars(select(OutboxMessage.payload))
        ]
        raw = [
            str(row)
            for row in session.execute(text("SELECT raw_payload FROM completion_facts"))
        ]

    stored = "\n".join(payloads + raw)
    assert payloads
    for name, value in secrets.items():
        assert value not in stored, f"{name} is stored in a payload"
