"""The Canvas stand-in on loopback, and clients aimed at it that record their waits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.canvas.client import CanvasClient
from connectors.canvas.tokens import StaticToken
from lti_tool.demo.peers.canvas import FakeCanvas
from lti_tool.demo.peers.serving import serve_in_thread
from tests.support.outbound import LOOPBACK_POLICY

FIXTURES = Path(__file__).parents[2] / "fixtures" / "canvas"
COURSE_ID = 565


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def fake():
    canvas = FakeCanvas()
    canvas.add_course(COURSE_ID)
    canvas.add_students(COURSE_ID, [123, 124])
    return canvas


@pytest.fixture
def canvas_url(fake):
    with serve_in_thread(fake.app) as server:
        yield server.url


@pytest.fixture
def waits():
    return []


@pytest.fixture
def make_client(fake, canvas_url, waits):
    """Build a client on the stand-in; its backoff waits go to `waits`, not sleep."""

    def make(token=None, **options):
        token = token or StaticToken(fake.issue_token())
        options.setdefault("sleep", waits.append)
        return CanvasClient(canvas_url, token, **options, policy=LOOPBACK_POLICY)

    return make
