"""Apply X-Forwarded-* headers only when the request comes from a trusted proxy.

Behind a reverse proxy the tool sees the proxy's address and plain HTTP; the proxy's
X-Forwarded-For, -Proto, -Host and -Port headers restore the browser's view, which
the launch needs for Secure cookies and URL checks. A client that is not a configured
proxy could send the same headers to pose as another host, so its headers are ignored.

waitress drops X-Forwarded-* headers itself unless it is told which proxy to trust,
and it knows one address only, not networks; `WAITRESS_OPTIONS` leaves the headers to
this middleware, which every app with `trusted_proxies` set runs.
"""

from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix

# For waitress.create_server: pass the headers on; TrustedProxyMiddleware decides.
WAITRESS_OPTIONS = {"clear_untrusted_proxy_headers": False}


class TrustedProxyMiddleware:
    """WSGI middleware: ProxyFix (one hop) for listed proxies, nothing for others."""

    def __init__(self, app, trusted: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(item, strict=False) for item in trusted]
        self._fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1)

    def _is_trusted(self, address: str | None) -> bool:
        return is_trusted_proxy(address, self.networks)

    def __call__(self, environ, start_response):
        if self._is_trusted(environ.get("REMOTE_ADDR")):
            return self._fixed(environ, start_response)
        return self.app(environ, start_response)


def is_trusted_proxy(address: str | None, networks: list) -> bool:
    """Return True when `address` lies in one of the trusted proxy `networks`."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(environ: dict, networks: list) -> str:
    """Return the browser's address as TrustedProxyMiddleware will set it.

    Callers that run before that middleware (the rate limiter) use this, so that a
    client outside the trusted proxies cannot choose its own key with a forged
    X-Forwarded-For. Like ProxyFix with one hop, the last forwarded entry counts.
    """
    peer = environ.get("REMOTE_ADDR") or ""
    if not is_trusted_proxy(peer, networks):
        return peer
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last or peer
