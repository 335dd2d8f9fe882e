"""Webhook intake under the production web servers, run as separate processes.

A web server killed while group commit is busy loses no event it accepted with 2xx,
and granian (the production web server) serves the app from several workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import select

from badge_engine.db import make_engine
from badge_engine.models import CompletionFactRecord, Provider
from badge_engine.outbox import OutboxMessage
from connectors.models import LmsConnection, LmsKind
from lti_tool.app import create_app
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.schema import upgrade
from lti_tool.views.webhooks import secret_digest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "moodle"
SECRET = "webhook-secret-killed"
CLIENTS = 8
ACCEPTED_BEFORE_KILL = 150


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_environ(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HPASS_LOOPBACK_DEV": "1",
        "HPASS_LOG_LEVEL": "WARNING",
    }


def _event_template() -> dict:
    """Return a course completion event with the connection's token, for any learner."""
    template = json.loads((FIXTURES / "event_course_completed.json").read_text())
    template["token"] = SECRET
    template.get("other", {}).pop("relateduserid", None)
    return template


def _seed(environ: dict[str, str]) -> str:
    settings = load_settings(environ=environ)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    ensure_secret_files(settings, environ)
    upgrade(settings.database_url)
    app = create_app(load_settings(environ=environ))
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = Provider(slug="killed", name="Killed", url="https://killed.invalid")
        session.add(provider)
        session.flush()
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="Moodle",
            base_url="http://127.0.0.1:9",
            webhook_secret_sha256=secret_digest(SECRET),
        )
        session.add(connection)
        session.commit()
        public_id = connection.public_id
    bridge.engine.dispose()
    return public_id


def _start_server(
    environ: dict[str, str],
    port: int,
    log: Path,
    command: list[str] | None = None,
    *,
    new_session: bool = False,
) -> subprocess.Popen:
    if command is None:
        command = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}"]
        command += ["--threads=8", "--call", "lti_tool.app:create_server_app"]
    server = subprocess.Popen(
        command,
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=new_session,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except requests.ConnectionError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the server did not start:\n" + log.read_text()[-3000:])


def _wait_for_lines(log: Path, text: str, count: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.read_text().count(text) >= count:
            return True
        time.sleep(0.1)
    return False


def test_killed_server_keeps_accepted_events(tmp_path):
    """Every event accepted with 202 before SIGKILL is stored with its outbox message,
    and no fact is stored without its message."""
    port = _free_port()
    environ = _server_environ(tmp_path, port)
    public_id = _seed(environ)
    server = _start_server(environ, port, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}/webhooks/moodle/{public_id}"
    template = _event_template()

    accepted: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post_until_stopped(client: int) -> None:
        session = requests.Session()
        sent = 0
        while not stop.is_set():
            learner_id = client * 1_000_000 + sent
            sent += 1
            try:
                response = session.post(
                    url, json={**template, "relateduserid": learner_id}, timeout=30
                )
            except requests.RequestException:
                return
            if response.status_code == 202:
                with lock:
                    accepted.append(learner_id)

    clients = [
        threading.Thread(target=post_until_stopped, args=(n,)) for n in range(CLIENTS)
    ]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 120
        while len(accepted) < ACCEPTED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
        for client in clients:
            client.join(timeout=60)

    assert len(accepted) >= ACCEPTED_BEFORE_KILL, (tmp_path / "server.log").read_text()
    engine = make_engine(load_settings(environ=environ).database_url)
    with engine.connect() as connection:
        facts = dict(
            connection.execute(
                select(CompletionFactRecord.lms_user_id, CompletionFactRecord.id)
            ).all()
        )
        messages = [
            payload["fact_id"]
            for payload in connection.scalars(select(OutboxMessage.payload))
        ]
    engine.dispose()

    missing = [learner for learner in accepted if str(learner) not in facts]
    assert missing == []
    assert sorted(messages) == sorted(facts.values())


def test_granian_workers_store_events(tmp_path):
    """The documented granian command serves the app from two workers: each accepted
    event is stored once, and SIGTERM stops the server and its workers."""
    port = _free_port()
    environ = _server_environ(tmp_path, port)
    public_id = _seed(environ)
    command = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "2", "--blocking-threads", "2"]
    command += ["lti_tool.app:create_server_app"]
    log = tmp_path / "server.log"
    server = _start_server(environ, port, log, command, new_session=True)
    url = f"http://127.0.0.1:{port}/webhooks/moodle/{public_id}"
    template = _event_template()
    try:
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        session = requests.Session()
        statuses = [
            session.post(url, json={**template, "relateduserid": n}, timeout=30)
            for n in (1, 2, 3, 3)
        ]
        # On a busy machine one worker may still be building its app. A SIGTERM
        # then was seen to leave granian 2.8.9's processes running after it
        # logged its shutdown, so the test stops a server whose workers have
        # both started.
        assert _wait_for_lines(log, "Started worker-", 2), log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            raise

    assert health.status_code == 200, log.read_text()
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    assert [response.status_code for response in statuses[:3]] == [202, 202, 202]
    assert statuses[3].status_code in (200, 202), statuses[3].text
    assert exit_code == 0, log.read_text()
    engine = make_engine(load_settings(environ=environ).database_url)
    with engine.connect() as connection:
        learners = sorted(connection.scalars(select(CompletionFactRecord.lms_user_id)))
    engine.dispose()
    assert learners == ["1", "2", "3"]
