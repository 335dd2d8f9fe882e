"""BudgetSession: requests, retries included, share one total time budget."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from badge_engine.outbound import policy as policy_module
from badge_engine.outbound import (
    OutboundConnectionFailed,
    OutboundLimits,
    OutboundTimeout,
)
from badge_engine.outbound.transport import MAX_TIMED_LOOKUPS
from connectors.moodle.client import MOODLE_LIMITS, MoodleClient
from connectors.moodle.errors import MoodleUnavailable
from lti_tool.operations.time_budget import BudgetSession
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.silent_server import SilentServer
from tests.support.slow_body_server import SlowBodyServer


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


@pytest.fixture
def slow_dns(monkeypatch):
    """Make `*.test` names resolve to 127.0.0.1 only after `answers_after` seconds.

    A lookup with `answers_after` set to None hangs until the test ends. No real DNS
    server is asked.
    """
    settings = {"answers_after": None}
    released = threading.Event()
    real_resolve = policy_module.resolve_host

    def resolve(host, port, *, url):
        if not host.endswith(".test"):
            return real_resolve(host, port, url=url)
        released.wait(settings["answers_after"])
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(policy_module, "resolve_host", resolve)
    yield settings
    released.set()


def test_hanging_resolver_ends_within_budget(slow_dns):
    """A lookup that never returns ends the request when the budget does."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 0.5)
    started = time.monotonic()

    with pytest.raises(OutboundTimeout) as raised:
        session.get("http://lms.test:9/webservice")
    elapsed = time.monotonic() - started

    assert 0.4 <= elapsed < 1.5
    assert raised.value.code == "resolve_timeout"
    assert "'lms.test' could not be resolved" in str(raised.value)
    assert "getent hosts lms.test" in str(raised.value)
    assert session.ran_out is True


def test_budget_spent_on_lookup_stops_next(slow_dns):
    """After a hanging lookup took the budget, the next request is not sent."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 0.3)

    with pytest.raises(OutboundTimeout):
        session.get("http://lms.test:9/")
    with pytest.raises(OutboundTimeout) as second:
        session.get("http://lms.test:9/")

    assert second.value.code == "budget"


def test_slow_lookup_within_budget_connects(slow_dns):
    """A lookup that ends in time lets the request go on to the resolved address."""
    slow_dns["answers_after"] = 0.2
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 2.0)

    # Nothing listens on loopback port 9, so the connect after the lookup is refused.
    with pytest.raises(OutboundConnectionFailed) as raised:
        session.get("http://lms.test:9/")

    assert raised.value.code == "connection_failed"
    assert session.ran_out is False


def test_failed_lookup_leaves_flag_clear(monkeypatch):
    """A lookup that fails at once raises its own error, not a timeout."""

    def resolve(host, port, *, url):
        raise OutboundConnectionFailed(
            f"The host {host!r} could not be resolved",
            url=url,
            code="unresolvable_host",
        )

    monkeypatch.setattr(policy_module, "resolve_host", resolve)
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 2.0)

    with pytest.raises(OutboundConnectionFailed) as raised:
        session.get("http://missing.test/")

    assert raised.value.code == "unresolvable_host"
    assert session.ran_out is False


def test_hanging_lookups_keep_threads_bounded(slow_dns):
    """Many requests to a hanging resolver never run more than the lookup cap."""

    def lookup_threads():
        return [
            thread
            for thread in threading.enumerate()
            if thread.name.startswith("resolve ")
        ]

    errors = []
    for _ in range(3 * MAX_TIMED_LOOKUPS):
        session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 0.05)
        with pytest.raises(OutboundTimeout) as raised:
            session.get("http://lms.test:9/")
        errors.append(raised.value.code)

    assert len(lookup_threads()) <= MAX_TIMED_LOOKUPS
    assert set(errors) == {"resolve_timeout"}


def test_slow_lookup_shortens_response_wait(slow_dns, silent_server):
    """The time a lookup took is not given again to the response wait."""
    slow_dns["answers_after"] = 0.6
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), 1.0)
    started = time.monotonic()

    with pytest.raises(OutboundTimeout) as raised:
        session.get(f"http://lms.test:{silent_server.port}/")
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 1.4
    assert raised.value.code == "timeout"
    assert silent_server.accepted == 1
    assert session.ran_out is True


# The headers arrive 2.5 s into a 3 s budget. A body read that kept the read timeout
# set before the headers would end about 2.5 s after the budget, past the margin.
BODY_BUDGET = 3.0
LATE_HEADERS = 2.5
# Time allowed above the budget on a loaded machine.
MARGIN = 2.0


def test_stalled_body_ends_with_budget():
    """Headers late in the budget, then a stalled body: the budget still holds."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), BODY_BUDGET)

    with SlowBodyServer(b"[]" * 50, mode="stall", headers_after=LATE_HEADERS) as lms:
        started = time.monotonic()
        with pytest.raises(OutboundTimeout) as raised:
            session.get(lms.url, timeout=(BODY_BUDGET, BODY_BUDGET))
        elapsed = time.monotonic() - started

    assert elapsed < BODY_BUDGET + MARGIN
    assert raised.value.code == "deadline"
    assert "took longer than its deadline" in str(raised.value)
    assert lms.accepted == 1
    assert lms.bytes_sent == 1
    assert session.ran_out is True


def test_trickled_body_ends_with_budget():
    """A body whose every byte comes within the read timeout, but whose whole takes
    longer than the budget, ends when the budget does."""
    budget = 1.5
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), budget)
    body = b"x" * 100

    with SlowBodyServer(body, mode="trickle", byte_interval=0.1) as lms:
        started = time.monotonic()
        with pytest.raises(OutboundTimeout) as raised:
            session.get(lms.url)
        elapsed = time.monotonic() - started

    assert elapsed < budget + MARGIN
    assert raised.value.code == "deadline"
    assert lms.bytes_sent < len(body)
    assert session.ran_out is True


@pytest.mark.parametrize("mode", ["whole", "trickle"])
def test_body_within_budget_read(mode):
    """A body that arrives within the budget, at once or byte by byte, is returned."""
    session = BudgetSession(LOOPBACK_POLICY, OutboundLimits(), BODY_BUDGET)
    body = b'{"courses": []}'

    with SlowBodyServer(body, mode=mode, headers_after=0.2, byte_interval=0.02) as lms:
        response = session.get(lms.url)

    assert response.status_code == 200
    assert response.content == body
    assert session.ran_out is False
