"""A loopback server's slow request thread, which outlives `stop()`, is waited for by
`stop_all_servers`, so its last log line comes while the log streams are open."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests
from flask import Flask

from lti_tool.demo.peers.serving import serve_in_thread, stop_all_servers

# Longer than the 1 s `stop()` waits for request threads, with a margin for a busy
# machine.
HANDLER_SECONDS = 3.0


def _slow_app(finished: threading.Event) -> Flask:
    app = Flask(__name__)

    def slow():
        time.sleep(HANDLER_SECONDS)
        finished.set()
        return "late"

    app.add_url_rule("/slow", "slow", slow)
    return app


def test_stop_all_waits_for_slow_request(caplog):
    """A request whose client gave up ends, and logs its disconnect, before
    `stop_all_servers` returns."""
    finished = threading.Event()
    server = serve_in_thread(_slow_app(finished))
    with pytest.raises(requests.Timeout):
        requests.get(f"{server.url}/slow", timeout=0.2)

    caplog.set_level(logging.INFO, logger="waitress")
    server.stop(timeout=1.0)
    still_running = not server.wait_for_request_threads(0)
    stop_all_servers(timeout=10)

    assert still_running
    assert finished.is_set()
    assert server.wait_for_request_threads(0)
    assert "Client disconnected while serving /slow" in caplog.text


def test_stop_all_stops_running_server():
    """A server that was never stopped is stopped, and its port refuses connections."""
    server = serve_in_thread(Flask(__name__))

    stop_all_servers(timeout=5)

    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=1)
