"""A demo peer's log lines carry the ids of its own request only, even on a thread
that served the bridge just before, as threads are shared under `run --demo`."""

from __future__ import annotations

import structlog
from flask import jsonify

from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.serving import peer_app


def _context_route(app) -> None:
    app.add_url_rule(
        "/context",
        "context",
        lambda: jsonify(structlog.contextvars.get_contextvars()),
    )


def _leave_bridge_context() -> None:
    """Bind what a bridge request leaves behind on its thread."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id="bridge-request", provider_id=7, course_id=101
    )


def test_peer_drops_previous_ids():
    """A peer request starts from a fresh context with a new id and the peer's name."""
    app = peer_app(__name__, "moodle")
    _context_route(app)
    _leave_bridge_context()
    try:
        context = app.test_client().get("/context").get_json()
    finally:
        structlog.contextvars.clear_contextvars()

    assert set(context) == {"request_id", "demo_peer"}
    assert context["demo_peer"] == "moodle"
    assert context["request_id"] != "bridge-request"


def test_peer_keeps_caller_request_id():
    """An X-Request-ID sent by the caller names the peer's request in its log lines."""
    app = peer_app(__name__, "portfolio")
    _context_route(app)
    _leave_bridge_context()
    try:
        context = (
            app.test_client()
            .get("/context", headers={"X-Request-ID": "from-the-bridge"})
            .get_json()
        )
    finally:
        structlog.contextvars.clear_contextvars()

    assert context == {"request_id": "from-the-bridge", "demo_peer": "portfolio"}


def test_moodle_drops_previous_ids():
    """The Moodle stand-in's own app clears what the previous request bound."""
    app = MoodleStandIn("token-for-log-context").create_app()
    _context_route(app)
    _leave_bridge_context()
    try:
        context = app.test_client().get("/context").get_json()
    finally:
        structlog.contextvars.clear_contextvars()

    assert "provider_id" not in context
    assert "course_id" not in context
    assert context["demo_peer"] == "moodle"
