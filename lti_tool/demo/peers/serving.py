"""Serve a WSGI app on a loopback address from a background thread.

The demo peers and the tests run several small servers inside one process. Each runs
waitress on its own socket map, so stopping one server closes only its own sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
from flask import Flask, request
from waitress import wasyncore
from waitress.server import create_server

from lti_tool.config import is_loopback_host
from lti_tool.errors import bind_request_id

logger = logging.getLogger(__name__)

# Servers started in this process whose request threads may still run. A server stays
# listed until `stop()` has seen its threads end, and `stop_all_servers` works through
# the list.
_unfinished: list[RunningServer] = []
_unfinished_lock = threading.Lock()


def require_loopback_url(url: str, name: str) -> str:
    """Return `url` unchanged, or raise ValueError when it leaves this machine.

    The demo peers exist for loopback development only, so every URL they call or
    redirect to must point at 127.0.0.1, ::1 or localhost.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname):
        raise ValueError(
            f"{name} must be an http(s) URL on 127.0.0.1, ::1 or localhost, "
            f"got {url!r}; the demo peers only talk to this machine"
        )

    return url


def peer_app(import_name: str, peer: str) -> Flask:
    """Build a demo peer's Flask app, whose log lines carry only its request's ids.

    The peers share threads with the bridge when `run --demo` serves them beside it,
    and log context lives per thread, so without a fresh context a peer's line would
    carry the ids of whatever request that thread served before.
    """
    app = Flask(import_name)

    @app.before_request
    def bind_peer_log_context() -> None:
        bind_request_id(request.headers.get("X-Request-ID"))
        structlog.contextvars.bind_contextvars(demo_peer=peer)

    return app


@dataclass
class RunningServer:
    """A waitress server running in a daemon thread; `stop()` shuts it down."""

    url: str
    host: str
    port: int
    _server: Any = field(repr=False)
    _socket_map: dict = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every open connection, then join the thread.

        Calling it again does nothing. A request handler that is still running
        (a deliberately slow one, for example) is not interrupted. Its daemon
        worker thread ends on its own, its response is discarded, and
        `stop_all_servers` waits for it.
        """
        if self._stopped:
            return
        self._stopped = True

        # waitress's loop runs while its socket map contains channels, and
        # keep-alive connections from a requests.Session stay in the map until
        # their idle timeout. Closing everything from inside the loop thread
        # (through the trigger) empties the map at once, so the loop returns.
        if self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(
                    lambda: wasyncore.close_all(self._socket_map, ignore_all=True)
                )
            except OSError as error:
                # The loop closed the trigger's pipe while ending on its own (EBADF).
                logger.debug(
                    "demo server %s trigger already closed: %s", self.url, error
                )
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "demo server %s did not stop within %.1f s", self.url, timeout
            )

        self._server.task_dispatcher.shutdown(timeout=min(timeout, 1.0))
        if self.wait_for_request_threads(0):
            _forget(self)
        logger.info("demo server stopped: %s", self.url)

    def wait_for_request_threads(self, timeout: float) -> bool:
        """Wait until every request thread of a stopped server has ended.

        Returns False when one is still running after `timeout` seconds. A thread
        whose client went away logs "Client disconnected" when its handler
        returns, so a process waits here before it closes its log streams.
        """
        # NOTE: reads the thread set and condition of waitress's (3.0)
        # ThreadedTaskDispatcher, which has no public call that waits for them.
        dispatcher = self._server.task_dispatcher
        deadline = time.monotonic() + timeout
        with dispatcher.lock:
            while dispatcher.threads:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                dispatcher.thread_exit_cv.wait(min(remaining, 0.1))
        return True

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _forget(server: RunningServer) -> None:
    with _unfinished_lock:
        _unfinished[:] = [entry for entry in _unfinished if entry is not server]


def stop_all_servers(timeout: float = 10.0) -> None:
    """Stop every server started in this process and wait for its request threads.

    A test session calls it before pytest closes the streams that log handlers
    write to. A slow handler can outlive `stop()`, and the line it then logs
    would otherwise go to a closed stream ("--- Logging error ---").
    """
    with _unfinished_lock:
        servers = list(_unfinished)
    deadline = time.monotonic() + timeout
    for server in servers:
        try:
            server.stop()
        except OSError as error:
            logger.warning("demo server %s failed to stop: %s", server.url, error)
        remaining = max(0.0, deadline - time.monotonic())
        if server.wait_for_request_threads(remaining):
            _forget(server)
        else:
            logger.warning(
                "demo server %s: a request thread still runs %.1f s after the stop, "
                "so lines it logs later may be lost",
                server.url,
                timeout,
            )


def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> RunningServer:
    """Start `app` on `host`:`port` in a daemon thread and return once it listens.

    `options` go to waitress.create_server, for example `WAITRESS_OPTIONS`.

    Port 0 picks a free port, and the returned `url` contains the chosen one.
    Only loopback hosts are accepted, because the demo peers have no real
    authentication.
    """
    if not is_loopback_host(host):
        raise ValueError(
            f"host must be a loopback address such as 127.0.0.1 or ::1, got {host!r}"
        )

    socket_map: dict = {}
    server = create_server(
        app,
        map=socket_map,
        host=host,
        port=port,
        threads=8,
        ident="hpass-demo-peer",
        **options,
    )
    bound_host = str(server.effective_host)
    bound_port = int(server.effective_port)
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{url_host}:{bound_port}"

    thread = threading.Thread(
        target=server.run, name=f"demo-server-{bound_port}", daemon=True
    )
    thread.start()
    logger.info("demo server started: %s", url)

    running = RunningServer(
        url=url,
        host=bound_host,
        port=bound_port,
        _server=server,
        _socket_map=socket_map,
        _thread=thread,
    )
    with _unfinished_lock:
        _unfinished.append(running)
    return running
