"""Granian's access log, written by the production web server's own handler, carries
no secret token from a request's path, query string or Referer header."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.lti_tool.test_intake_killed import (
    _free_port,
    _seed,
    _server_environ,
    _start_server,
)

RESET_TOKEN = "Zq3vN8xYreset-token-value_123"
WEBHOOK_TOKEN = "canvas-webhook-secret-42"
ACCESS_FORMAT = '%(method)s %(path)s?%(query_string)s %(status)d "%(header{referer})s"'


def _wait_for_line(log: Path, text: str, timeout: float = 10.0) -> None:
    """Wait until the server has written `text` to its log, or `timeout` passes.

    Granian writes a request's access line after the client has its response, so
    a stop sent at once could end the worker before the last line is written.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.05)


def test_granian_access_log_redacted(tmp_path):
    """Token paths, secret query values and a Referer with a token are redacted in
    the access lines granian prints, and other requests are logged as sent."""
    port = _free_port()
    environ = _server_environ(tmp_path, port)
    connection_id = _seed(environ)
    command = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--blocking-threads", "2"]
    command += ["--access-log", "--access-log-fmt", ACCESS_FORMAT]
    command += ["lti_tool.app:create_server_app"]
    log = tmp_path / "server.log"
    server = _start_server(environ, port, log, command, new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        requests.get(f"{base}/account/reset/{RESET_TOKEN}", timeout=10)
        requests.post(
            f"{base}/webhooks/canvas/{connection_id}?token={WEBHOOK_TOKEN}",
            json={},
            timeout=10,
        )
        requests.get(
            f"{base}/health?lang=fr",
            headers={"Referer": f"{base}/account/reset/{RESET_TOKEN}"},
            timeout=10,
        )
        _wait_for_line(log, "GET /health?lang=fr ")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)

    output = log.read_text()
    assert "GET /account/reset/[redacted]? " in output, output[-3000:]
    assert f"POST /webhooks/canvas/{connection_id}?token=[redacted] " in output
    assert f'GET /health?lang=fr 200 "{base}/account/reset/[redacted]"' in output
    assert RESET_TOKEN not in output
    assert WEBHOOK_TOKEN not in output
