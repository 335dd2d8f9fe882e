"""Outgoing requests: which addresses are allowed, and how bad responses end."""

from __future__ import annotations

import time

import pytest
from flask import Flask, Response, redirect

from badge_engine.outbound import OutboundPolicy
from connectors.hpass.errors import (
    DeliveryRejected,
    DeliveryRetryable,
    PortfolioSetupError,
    TokenExpired,
)
from connectors.hpass.http import PORTFOLIO_LIMITS, PortfolioHttp, check_portfolio_url
from lti_tool.demo.peers.serving import serve_in_thread

PRODUCTION = OutboundPolicy(allow_loopback=False)
LOOPBACK = OutboundPolicy(allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/portfolio",
        "https://10.0.0.5/api",
        "https://192.168.1.20/api",
        "https://169.254.169.254/latest",
        "https://127.0.0.1:8443/api",
        "https://[::1]/api",
        "https://[fe80::1]/api",
        "ftp://93.184.215.14/api",
        "not a url",
    ],
)
def test_policy_rejects_url(url):
    """Plain HTTP, private, loopback and link-local addresses are rejected in production."""
    with pytest.raises(PortfolioSetupError):
        check_portfolio_url(PRODUCTION, url)


def test_policy_accepts_public_https():
    """A public HTTPS address passes the production policy."""
    url = "https://93.184.215.14/api"

    assert check_portfolio_url(PRODUCTION, url) == url


def test_loopback_dev_allows_loopback_only():
    """Loopback development mode allows loopback HTTP but still no private networks."""
    assert check_portfolio_url(LOOPBACK, "http://127.0.0.1:9/api")
    with pytest.raises(PortfolioSetupError):
        check_portfolio_url(LOOPBACK, "http://10.1.2.3/api")


def test_allowed_network_passes():
    """A private network listed in the configuration is allowed."""
    import ipaddress

    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))

    assert check_portfolio_url(policy, "https://10.20.3.4/api")


def _misbehaving_server():
    app = Flask(__name__)
    app.add_url_rule("/loop", "loop", lambda: redirect("/loop"))
    app.add_url_rule("/html", "html", lambda: Response("<html>login</html>", 500))
    app.add_url_rule(
        "/huge", "huge", lambda: Response(b"x" * (PORTFOLIO_LIMITS.max_bytes + 10), 200)
    )
    app.add_url_rule("/slow", "slow", lambda: (time.sleep(2), "late")[1])
    app.add_url_rule("/denied", "denied", lambda: ({"error": "bad token"}, 401))
    app.add_url_rule("/gone", "gone", lambda: ({"error": "no such badge"}, 404))
    return serve_in_thread(app)


@pytest.fixture(scope="module")
def server():
    running = _misbehaving_server()
    yield running
    running.stop()


@pytest.mark.parametrize(
    "path, error, words",
    [
        ("/loop", DeliveryRejected, "follows no redirects"),
        ("/html", DeliveryRetryable, "an HTML page"),
        ("/huge", DeliveryRetryable, "larger than"),
        ("/denied", TokenExpired, "bad token"),
        ("/gone", DeliveryRejected, "no such badge"),
    ],
)
def test_bad_answer_mapped(server, path, error, words):
    """Each misbehaving response maps to the error kind that decides retry or stop."""
    http = PortfolioHttp(LOOPBACK, portfolio_url=server.url)

    with pytest.raises(error, match=words):
        http.request("GET", server.url + path)


def test_slow_answer_times_out(server):
    """A response slower than the read timeout is a retryable timeout."""
    http = PortfolioHttp(LOOPBACK, portfolio_url=server.url, timeout=(1, 0.3))

    with pytest.raises(DeliveryRetryable, match="timed out after"):
        http.request("GET", server.url + "/slow")


def test_refused_connection_retryable():
    """A portfolio that is not listening is retried later."""
    http = PortfolioHttp(LOOPBACK, portfolio_url="http://127.0.0.1:9")

    with pytest.raises(DeliveryRetryable, match="could not reach"):
        http.request("GET", "http://127.0.0.1:9/api")


def test_disallowed_url_rejected_before_sending():
    """A request to a private address is rejected without being sent."""
    http = PortfolioHttp(PRODUCTION, portfolio_url="https://10.0.0.1")

    with pytest.raises(DeliveryRejected, match="non-public address 10.0.0.1"):
        http.request("GET", "https://10.0.0.1/api")
