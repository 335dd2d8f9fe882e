"""BudgetSession: requests, retries included, share one total time budget."""

from __future__ import annotations

import time

import pytest

from badge_engine.outbound import (
    OutboundConnectionFailed,
    OutboundLimits,
    OutboundTimeout,
)
from connectors.moodle.client import MOODLE_LIMITS, MoodleClient
from connectors.moodle.errors import MoodleUnavailable
from lti_tool.operations.time_budget import BudgetSession
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.silent_server import SilentServer


@pytest.fixture
def silent_server():
    with SilentServer() as server:
        yield server


def test_requests_share_budget(silent_server):
    """Two requests to a silent server take the budget once, not twice."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 1.0)
    started = time.monotonic()

    with pytest.raises(OutboundTimeout):
        session.get(silent_server.url)
    with pytest.raises(OutboundTimeout) as second:
        session.get(silent_server.url)
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 3.0
    assert second.value.code == "budget"
    assert "1 s ran out" in str(second.value)
    assert silent_server.accepted == 1
    assert session.ran_out is True


def test_budget_cuts_client_retries(silent_server):
    """A client that would retry for 20 s stops when the budget ends."""
    session = BudgetSession(LOOPBACK_POLICY, MOODLE_LIMITS, 1.0)
    client = MoodleClient(
        silent_server.url,
        "token",
        timeout=(3.05, 10),
        max_retries=2,
        backoff=0.0,
        session=session,
    )
    started = time.monotonic()

    with pytest.raises(MoodleUnavailable):
        client.get_site_info()

    assert time.monotonic() - started < 4.0
    assert silent_server.accepted == 1
    assert session.ran_out is True


def test_refused_connection_leaves_flag_clear():
    """A request that fails for another reason does not mark the budget as spent."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 5.0)

    # Port 9 (discard) has no listener on loopback, so the connection is refused.
    with pytest.raises(OutboundConnectionFailed):
        session.get("http://127.0.0.1:9/")

    assert session.ran_out is False
