"""Outgoing HTTP for every delivery route: limits and error mapping.

Every request a route sends goes through `PortfolioHttp.request`, which sends it
through the bridge's guarded client (`badge_engine.outbound`), so all routes handle
the same way slow, malformed, oversized or redirecting portfolios:

- The address rules are the guard's: HTTPS to public addresses, plain HTTP only to
  loopback in loopback development mode, private networks only when configured.
- Redirects are never followed, so a 3xx loop costs one request.
- Bodies are read up to `PORTFOLIO_LIMITS.max_bytes`; a larger body is an error.
- Timeouts and connection errors, 429 and 5xx are retryable; 401 is
  `TokenExpired` so the caller can refresh once; other statuses are rejections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from badge_engine.db import utcnow
from badge_engine.outbound import (
    GuardedSession,
    OutboundBlocked,
    OutboundError,
    OutboundLimits,
    OutboundPolicy,
    OutboundTimeout,
    OutboundTooLarge,
)
from connectors.hpass.errors import (
    DeliveryRejected,
    DeliveryRetryable,
    PortfolioSetupError,
    TokenExpired,
)

PORTFOLIO_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=15.0,
    deadline_seconds=60.0,
    max_bytes=1024 * 1024,
    max_redirects=0,
)
DEFAULT_TIMEOUT = (
    PORTFOLIO_LIMITS.connect_timeout_seconds,
    PORTFOLIO_LIMITS.read_timeout_seconds,
)


def check_portfolio_url(policy: OutboundPolicy, url: str) -> str:
    """Return `url`, or raise PortfolioSetupError saying why it may not be called."""
    try:
        policy.check_url_now(url)
    except OutboundError as error:
        raise PortfolioSetupError(str(error), portfolio_url=url) from None

    return url


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
            raise ValueError(
                f"{what} is not JSON (it starts with {snippet!r})"
            ) from None


@dataclass
class PortfolioHttp:
    """Send one request through the guarded client; map failures to delivery errors.

    `timeout` (connect, read) in seconds replaces the limits' timeouts, because
    each route sets its own from configuration.
    """

    policy: OutboundPolicy
    portfolio_url: str
    credential_id: str = ""
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    session: GuardedSession = field(init=False)

    def __post_init__(self) -> None:
        limits = replace(
            PORTFOLIO_LIMITS,
            connect_timeout_seconds=self.timeout[0],
            read_timeout_seconds=self.timeout[1],
        )
        self.session = GuardedSession(self.policy, limits)

    def request(self, method: str, url: str, **kwargs: Any) -> HttpResult:
        ids = {"portfolio_url": self.portfolio_url, "credential_id": self.credential_id}
        try:
            response = self.session.request(
                method, url, allow_redirects=False, **kwargs
            )
        except OutboundBlocked as error:
            raise DeliveryRejected(str(error), **ids) from None
        except OutboundTimeout:
            raise DeliveryRetryable(
                f"{url} timed out after {self.timeout[1]} s; retrying later",
                **ids,
            ) from None
        except OutboundTooLarge:
            raise DeliveryRetryable(
                f"{url} sent a response larger than {PORTFOLIO_LIMITS.max_bytes} "
                "bytes; retrying later",
                **ids,
            ) from None
        except (OutboundError, requests.RequestException) as error:
            raise DeliveryRetryable(
                f"could not reach {url}: {type(error).__name__}; retrying later", **ids
            ) from None

        result = HttpResult(
            response.status_code, dict(response.headers), response.content
        )
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
