"""Forwarded headers behind a reverse proxy: applied from trusted proxies only.

The bridge runs under waitress with the options `hpass-bridge run` uses, because
waitress itself may drop the headers before the app sees them.
"""

from __future__ import annotations

import pytest
import requests
from flask import jsonify, request
from lti_tool.app import create_app
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.proxy import WAITRESS_OPTIONS, TrustedProxyMiddleware
from lti_tool.schema import upgrade

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "badges.example.org",
    "X-Forwarded-Port": "443",
}


def _serve(settings, trusted: list[str]):
    settings.trusted_proxies = trusted
    upgrade(settings.database_url)
    app = create_app(settings)

    @app.get("/lti/_probe")
    def probe():
        return jsonify(
            remote=request.remote_addr, scheme=request.scheme, host=request.host
        )

    return app, serve_in_thread(app, **WAITRESS_OPTIONS)


@pytest.fixture
def served(settings, request):
    app, server = _serve(settings, request.param)
    yield server.url
    # Stopped from inside waitress's loop, so the loop never polls a closed socket.
    server.stop()
    app.extensions["hpass"].engine.dispose()


@pytest.mark.parametrize("served", [["127.0.0.1/32"]], indirect=True)
def test_trusted_proxy_applied(served):
    """From a configured proxy the browser's address, scheme and host are restored."""
    seen = requests.get(f"{served}/lti/_probe", headers=FORWARDED, timeout=10).json()
    assert seen == {
        "remote": "203.0.113.7",
        "scheme": "https",
        "host": "badges.example.org",
    }


@pytest.mark.parametrize(
    "served", [["10.0.0.0/8"], []], indirect=True, ids=["other", "none"]
)
def test_untrusted_ignored(served):
    """From any other client the forwarded headers change nothing."""
    seen = requests.get(f"{served}/lti/_probe", headers=FORWARDED, timeout=10).json()
    assert seen["remote"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == served.removeprefix("http://")


@pytest.mark.parametrize("served", [["127.0.0.1/32"]], indirect=True)
def test_only_last_hop(served):
    """A client's own X-Forwarded-For entry before the proxy's is not trusted."""
    headers = dict(FORWARDED, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    seen = requests.get(f"{served}/lti/_probe", headers=headers, timeout=10).json()
    assert seen["remote"] == "203.0.113.7"


@pytest.mark.parametrize(
    ("remote", "trusted"),
    [("::1", True), ("10.1.2.3", False), ("not-an-address", False), ("", False)],
)
def test_address_match(remote, trusted):
    """IPv6 and malformed client addresses are matched against the networks safely."""
    middleware = TrustedProxyMiddleware(lambda *a: [], ["::1/128", "127.0.0.0/8"])
    assert middleware._is_trusted(remote) is trusted
