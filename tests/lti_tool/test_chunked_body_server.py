"""Chunked webhook bodies (no Content-Length) sent over loopback to granian, the
production web server: one over the size limit gets 413, a small one is stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from sqlalchemy import func, select

from badge_engine.db import make_engine
from badge_engine.models import CompletionFactRecord, Provider
from connectors.models import LmsConnection, LmsKind
from lti_tool.config import load_settings
from lti_tool.views.webhooks import secret_digest
from tests.lti_tool.test_intake_killed import (
    SECRET,
    _event_template,
    _free_port,
    _seed,
    _server_environ,
    _start_server,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "canvas"
LIMIT = 2 * 1024 * 1024
CHUNK = 64 * 1024


def _add_canvas_connection(database_url: str) -> str:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        provider_id = connection.scalar(select(Provider.id))
        canvas = LmsConnection.__table__.insert().values(
            provider_id=provider_id,
            kind=LmsKind.CANVAS.value,
            name="Canvas",
            base_url="http://127.0.0.1:9",
            webhook_secret_sha256=secret_digest(SECRET),
        )
        connection.execute(canvas)
        public_id = connection.scalar(
            select(LmsConnection.public_id).where(
                LmsConnection.kind == LmsKind.CANVAS.value
            )
        )
    engine.dispose()
    return public_id


def _chunks(raw: bytes):
    """Yield `raw` in pieces, so requests sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(raw), CHUNK):
        yield raw[start : start + CHUNK]


def _padded(body: dict, size: int) -> bytes:
    raw = json.dumps({**body, "padding": ""}).encode()
    return json.dumps({**body, "padding": "x" * (size - len(raw))}).encode()


def _post(url: str, raw: bytes, chunked: bool) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    data = _chunks(raw) if chunked else raw
    return requests.post(url, data=data, headers=headers, timeout=30)


def test_granian_chunked_body_limit(tmp_path):
    """Under granian a chunked Moodle or Canvas event over the limit gets the same
    413 JSON body as one with a Content-Length over it. A small one is stored."""
    port = _free_port()
    environ = _server_environ(tmp_path, port)
    moodle_id = _seed(environ)
    database_url = load_settings(environ=environ).database_url
    canvas_id = _add_canvas_connection(database_url)
    command = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--blocking-threads", "2"]
    command += ["lti_tool.app:create_server_app"]
    log = tmp_path / "server.log"
    server = _start_server(environ, port, log, command, new_session=True)
    base = f"http://127.0.0.1:{port}/webhooks"
    moodle_url = f"{base}/moodle/{moodle_id}"
    canvas_url = f"{base}/canvas/{canvas_id}?token={SECRET}"
    moodle_event = {**_event_template(), "relateduserid": 7}
    canvas_event = json.loads(
        (FIXTURES / "live_event_course_completed.json").read_text()
    )
    try:
        too_large = {
            url: (
                _post(url, _padded(event, LIMIT + 1), chunked=True),
                _post(url, _padded(event, LIMIT + 1), chunked=False),
            )
            for url, event in ((moodle_url, moodle_event), (canvas_url, canvas_event))
        }
        large_chunked = _post(moodle_url, _padded(moodle_event, 3 * LIMIT), True)
        stored_before = _fact_count(database_url)
        small = _post(moodle_url, json.dumps(moodle_event).encode(), chunked=True)
        small_canvas = _post(canvas_url, json.dumps(canvas_event).encode(), True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)

    for url, (chunked, sized) in too_large.items():
        assert chunked.status_code == 413, (url, chunked.text)
        assert sized.status_code == 413, (url, sized.text)
        assert chunked.json()["error"] == "request_entity_too_large"
        assert chunked.json()["message"] == sized.json()["message"]
        assert chunked.headers["X-Request-ID"]
    assert large_chunked.status_code == 413, large_chunked.text
    assert stored_before == 0
    assert small.status_code == 202, small.text
    assert small_canvas.status_code == 202, small_canvas.text
    assert _fact_count(database_url) == 2


def _fact_count(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count()).select_from(CompletionFactRecord)
        )
    engine.dispose()
    return count
