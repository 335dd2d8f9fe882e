"""A whole demo system on loopback: the bridge with its peers, a Celery worker and,
optionally, the scheduler, each in the process it has in production.

Used by `hpass-bridge demo` and by the end-to-end tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.serving import RunningServer, serve_in_thread
from lti_tool.demo.setup import DemoPeers, mount_demo
from lti_tool.schema import upgrade

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoStack:
    def __init__(
        self,
        instance_path: Path,
        *,
        database_url: str | None = None,
        broker_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.instance_path = Path(instance_path)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "HPASS_INSTANCE_PATH": str(self.instance_path),
            "HPASS_PUBLIC_BASE_URL": self.base_url,
            "HPASS_LOOPBACK_DEV": "1",
            "HPASS_DEMO": "1",
            "HPASS_OUTBOX_SWEEP_SECONDS": "1",
            **({"HPASS_DATABASE_URL": database_url} if database_url else {}),
            **({"HPASS_BROKER_URL": broker_url} if broker_url else {}),
            **(extra_env or {}),
        }
        self.server: RunningServer | None = None
        self.worker: subprocess.Popen | None = None
        self.scheduler: subprocess.Popen | None = None
        self.extra_workers: list[subprocess.Popen] = []
        self.app = None
        self.peers: DemoPeers | None = None

    @property
    def bridge(self):
        return self.app.extensions["hpass"]

    def start_web(self) -> None:
        settings = load_settings(environ=self.env)
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)
        from lti_tool.config import ensure_secret_files

        ensure_secret_files(settings, self.env)
        self.app = create_app(settings)
        wsgi_app = mount_demo(self.app)
        self.peers = self.app.extensions["hpass_demo"]
        self.server = serve_in_thread(wsgi_app, port=self.port)

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen:
        log = open(self.instance_path / log_name, "ab")
        # The command is this Python running lti_tool, built from no outside input.
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "lti_tool", command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", "worker.log")

    def start_extra_worker(self) -> subprocess.Popen:
        """Start one more worker process, as another machine would run one."""
        number = len(self.extra_workers) + 2
        process = self._spawn("worker", f"worker-{number}.log")
        self.extra_workers.append(process)
        return process

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", "scheduler.log")

    def kill_worker(self) -> None:
        """Kill the worker and its pool at once, as a crash or an OOM kill would."""
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()

    def start(self, *, scheduler: bool = False) -> "DemoStack":
        self.start_web()
        self.start_worker()
        if scheduler:
            self.start_scheduler()
        return self

    def stop(
        self, grace_seconds: float = 15.0, stop_signal: int = signal.SIGTERM
    ) -> None:
        """Stop the processes, the web server and the database connections.

        Each process gets `stop_signal` (SIGTERM, or SIGINT as Ctrl-C sends) and
        `grace_seconds` to finish its tasks, then its whole process group gets SIGKILL.
        """
        for process in (self.worker, self.scheduler, *self.extra_workers):
            if process is not None and process.poll() is None:
                # Only the main process gets the signal, so Celery's warm shutdown
                # stops its pool. A pool child killed by a signal sent to the whole
                # group can die holding the pool's queue lock, and the main process
                # then waits for that lock at exit until SIGKILL.
                os.kill(process.pid, stop_signal)
                try:
                    process.wait(timeout=grace_seconds)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if self.server is not None:
            self.server.stop()
        if self.app is not None:
            state_file = self.app.extensions.get("hpass_demo_state")
            if state_file is not None:
                state_file.flush()
            self.bridge.engine.dispose()

    def __enter__(self) -> "DemoStack":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def logs(self) -> str:
        parts = []
        names = ["worker.log", "scheduler.log"]
        names += [
            f"worker-{number + 2}.log" for number in range(len(self.extra_workers))
        ]
        for name in names:
            path = self.instance_path / name
            if path.exists():
                parts.append(
                    f"--- {name} ---\n" + path.read_text(errors="replace")[-6000:]
                )
        return "\n".join(parts)


def wait_for(probe: Callable[[], T], timeout: float, interval: float = 0.2) -> T | None:
    """Call `probe` until it returns something truthy or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
