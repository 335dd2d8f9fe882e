"""Outgoing HTTP for every delivery route: address policy, limits and error mapping.

Every request a route sends goes through `PortfolioHttp.request`, so all routes
handle the same way slow, malformed, oversized or redirecting portfolios:

- The URL must be HTTPS, unless loopback development mode is on, and its host
  must not resolve to a private, link-local, loopback or reserved address, unless
  loopback development mode is on (loopback only) or the network is allowed
  explicitly.
- Redirects are never followed, so a 3xx loop costs one request.
- Bodies are read up to `MAX_BODY_BYTES`; a larger body is an error.
- Timeouts and connection errors, 429 and 5xx are retryable; 401 is
  `TokenExpired` so the caller can refresh once; other statuses are rejections.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from badge_engine.db import utcnow
from connectors.hpass.errors import (
    DeliveryRejected,
    DeliveryRetryable,
    PortfolioSetupError,
    TokenExpired,
)

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = (3.05, 15.0)
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class OutboundPolicy:
    """The rules for the URLs the bridge may call on a portfolio's behalf."""

    loopback_dev: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> "OutboundPolicy":
        # NOTE: the configuration module does not define
        # `portfolio_allowed_networks` yet. Until it does, no private network is
        # allowed outside the tests.
        networks = getattr(settings, "portfolio_allowed_networks", ()) or ()
        return cls(
            loopback_dev=bool(settings.loopback_dev),
            allowed_networks=tuple(ipaddress.ip_network(item) for item in networks),
        )

    def check_url(self, url: str) -> str:
        """Return `url`, or raise PortfolioSetupError saying why it may not be called."""
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise PortfolioSetupError(
                f"{url!r} is not an absolute http(s) URL; enter the portfolio's "
                "https:// address",
                portfolio_url=url,
            )
        if parts.scheme == "http" and not self.loopback_dev:
            raise PortfolioSetupError(
                f"{url} uses plain HTTP; portfolios must be reached over HTTPS",
                portfolio_url=url,
            )

        for address in _resolve(host, url):
            if self._address_allowed(address):
                continue
            raise PortfolioSetupError(
                f"{url} resolves to {address}, a private, loopback or link-local "
                "address; the bridge calls only public portfolio addresses unless "
                "the network is allowed in the configuration",
                portfolio_url=url,
            )

        return url

    def _address_allowed(self, address: ipaddress._BaseAddress) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        if address.is_loopback:
            return self.loopback_dev

        return address.is_global and not address.is_multicast


def _resolve(host: str, url: str) -> list[ipaddress._BaseAddress]:
    # NOTE: the address is checked here and resolved again by requests, so a DNS
    # answer that changes between the two (rebinding) is not caught.
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise PortfolioSetupError(
            f"the host of {url} could not be resolved ({error}); check the address",
            portfolio_url=url,
        ) from None

    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def same_origin(url: str, other: str) -> bool:
    first, second = urlsplit(url), urlsplit(other)
    return (first.scheme, first.hostname, first.port) == (
        second.scheme,
        second.hostname,
        second.port,
    )


def retry_after(response: requests.Response) -> timedelta | None:
    """Read `Retry-After` as seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None

    return max(moment - utcnow(), timedelta(0))


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self, what: str) -> Any:
        """Parse the body as JSON; a non-JSON body raises ValueError naming `what`."""
        try:
            return json.loads(self.body)
        except ValueError:
            snippet = self.body[:80].decode("utf-8", "replace")
            raise ValueError(f"{what} is not JSON (it starts with {snippet!r})") from None


@dataclass
class PortfolioHttp:
    """Send one request under the policy; map failures to delivery errors."""

    policy: OutboundPolicy
    portfolio_url: str
    credential_id: str = ""
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    session: requests.Session = field(default_factory=requests.Session)

    def request(self, method: str, url: str, **kwargs: Any) -> HttpResult:
        ids = {"portfolio_url": self.portfolio_url, "credential_id": self.credential_id}
        try:
            self.policy.check_url(url)
        except PortfolioSetupError as error:
            raise DeliveryRejected(str(error), **ids) from None

        try:
            response = self.session.request(
                method,
                url,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                **kwargs,
            )
            with response:
                body = _read_limited(response)
        except requests.Timeout:
            raise DeliveryRetryable(
                f"{url} timed out after {self.timeout[1]} s; retrying later",
                **ids,
            ) from None
        except requests.RequestException as error:
            raise DeliveryRetryable(
                f"could not reach {url}: {type(error).__name__}; retrying later", **ids
            ) from None
        except _BodyTooLarge:
            raise DeliveryRetryable(
                f"{url} sent a response larger than {MAX_BODY_BYTES} bytes; "
                "retrying later",
                http_status=response.status_code,
                **ids,
            ) from None

        result = HttpResult(response.status_code, dict(response.headers), body)
        self._raise_for_status(url, response, result, ids)

        return result

    def _raise_for_status(self, url, response, result: HttpResult, ids) -> None:
        status = result.status
        if 200 <= status < 300:
            return
        detail = describe_body(result)
        if status == 401:
            raise TokenExpired(
                f"{url} rejected the access token (401): {detail}",
                http_status=status,
                **ids,
            )
        if status == 429 or status >= 500:
            raise DeliveryRetryable(
                f"{url} responded {status}: {detail}; retrying later",
                retry_after=retry_after(response),
                http_status=status,
                **ids,
            )
        if 300 <= status < 400:
            location = result.headers.get("Location", "nowhere")
            raise DeliveryRejected(
                f"{url} redirected ({status}) to {location}; the bridge follows no "
                "redirects, so configure the portfolio's final address",
                http_status=status,
                **ids,
            )
        raise DeliveryRejected(
            f"{url} rejected the request with {status}: {detail}",
            http_status=status,
            **ids,
        )


class _BodyTooLarge(Exception):
    pass


def _read_limited(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)

    return b"".join(chunks)


def describe_body(result: HttpResult) -> str:
    """Return the portfolio's own error text, shortened, from JSON or plain bodies."""
    try:
        body = json.loads(result.body)
    except ValueError:
        text = result.body.decode("utf-8", "replace").strip()
        if text.lstrip().lower().startswith(("<!doctype", "<html")):
            return "an HTML page instead of an API response"
        return text[:300] or "no details given"
    if isinstance(body, dict):
        for key in ("imsx_description", "error_description", "error", "message"):
            if body.get(key):
                return str(body[key])[:300]
        status = body.get("status")
        if isinstance(status, dict) and status.get("statusText"):
            return str(status["statusText"])[:300]

    return json.dumps(body)[:300]
