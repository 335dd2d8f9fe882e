"""Assignment and Grade Services 2.0: the endpoint claim and a read-only client.

A platform that grants the tool AGS puts the claim
`https://purl.imsglobal.org/spec/lti-ags/claim/endpoint` in resource link launches.
Its `scope` lists the granted AGS scopes, and `lineitems` is the course's line item
container. `lineitem` is the launching resource link's own line item. Either URL may
be missing when the platform grants no access to it.

`AgsClient` reads line items and results through the guarded outbound client. The
errors it raises::

    AgsError                  platform (issuer), url, status
    ├── AgsBlocked            the outbound policy forbids the URL, or a next
    │                         page link leaves the first page's host
    ├── AgsScopeMissing       the scope is not granted (claim, invalid_scope, 403)
    ├── AgsTokenFailed        the token request failed otherwise
    ├── AgsUnauthorized       401 again after one fresh token
    ├── AgsRateLimited        429 or 503; `retry_after` in seconds when sent
    ├── AgsUnavailable        timeout, connection failure or another 5xx
    ├── AgsResponseInvalid    a body that is not the AGS media type's JSON shape
    └── AgsRequestFailed      any other status, such as 404
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from badge_engine.outbound import (
    GuardedSession,
    OutboundBlocked,
    OutboundError,
    OutboundLimits,
    OutboundPolicy,
    OutboundTooLarge,
)
from badge_engine.vault import Vault
from lti_tool.logs import get_logger
from lti_tool.lti.service_token import ServiceTokenError, ServiceTokens
from lti_tool.lti.service_urls import check_service_url, next_page_url
from lti_tool.models import Registration

ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
)
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

log = get_logger(__name__)


@dataclass(frozen=True)
class AgsEndpoint:
    """The AGS endpoint claim of one launch, checked for shape."""

    scopes: tuple[str, ...]
    lineitems_url: str | None
    lineitem_url: str | None

    @property
    def scopes_text(self) -> str:
        """Return the scopes space-separated, as OAuth 2.0 writes a scope list."""
        return " ".join(self.scopes)


class InvalidEndpointClaim(ValueError):
    """The AGS endpoint claim is present but not of the shape AGS 2.0 defines."""


def endpoint_from_claims(claims: dict) -> AgsEndpoint | None:
    """Return the launch's AGS endpoint, or None when the launch carries no claim.

    Raises InvalidEndpointClaim naming the member that is wrong.
    """
    claim = claims.get(ENDPOINT_CLAIM)
    if claim is None:
        return None

    if not isinstance(claim, dict):
        raise InvalidEndpointClaim(
            f"the AGS endpoint claim is a JSON {type(claim).__name__}, not an object"
        )

    scopes = claim.get("scope")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidEndpointClaim(
            "the AGS endpoint claim's scope is not a list of strings"
        )

    return AgsEndpoint(
        scopes=tuple(scopes),
        lineitems_url=_url_member(claim, "lineitems"),
        lineitem_url=_url_member(claim, "lineitem"),
    )


def _url_member(claim: dict, name: str) -> str | None:
    value = claim.get(name)
    if value is None:
        return None

    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise InvalidEndpointClaim(
            f"the AGS endpoint claim's {name} is not an absolute http(s) URL: "
            f"{str(value)[:200]!r}"
        )

    return value


def endpoint_or_none(claims: dict, ids: dict) -> AgsEndpoint | None:
    """Return the launch's AGS endpoint; log and drop a malformed claim.

    A malformed claim does not reject the launch, because the course page needs no
    grades. The course keeps the endpoint of its last valid launch.
    """
    try:
        return endpoint_from_claims(claims)
    except InvalidEndpointClaim as error:
        log.warning("lti_ags_claim_invalid", problem=str(error), **ids)
        return None


LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULT_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
# Reading line items needs either line item scope; results need their own.
LINEITEM_READ_SCOPES = (SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM)
MAX_PAGES = 1000


class AgsError(Exception):
    """An AGS request failed; the message names the platform, the URL and the status."""

    def __init__(
        self, message: str, *, platform: str, url: str | None, status: int | None
    ) -> None:
        super().__init__(message)
        self.platform = platform
        self.url = url
        self.status = status


class AgsBlocked(AgsError):
    """The bridge's outbound policy forbids calling the URL."""


class AgsScopeMissing(AgsError):
    """The platform has not granted the AGS scope the request needs."""


class AgsTokenFailed(AgsError):
    """The platform's token endpoint issued no access token."""


class AgsUnauthorized(AgsError):
    """The service rejected a freshly issued token as well."""


class AgsRateLimited(AgsError):
    """The service returned 429 or 503; `retry_after` is in seconds, or None."""

    def __init__(self, message: str, *, retry_after: float | None, **ids: Any) -> None:
        super().__init__(message, **ids)
        self.retry_after = retry_after


class AgsUnavailable(AgsError):
    """The service timed out, could not be reached or failed with a 5xx status."""


class AgsResponseInvalid(AgsError):
    """The body is not JSON of the shape AGS 2.0 gives the media type."""


class AgsRequestFailed(AgsError):
    """The service returned another error status, such as 404."""


@dataclass(frozen=True)
class LineItem:
    """A platform gradebook column; `id` is its URL, `score_maximum` its points."""

    id: str
    label: str
    score_maximum: float
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Result:
    """One learner's current score on a line item, as the result service returns it.

    `result_score` is None where the learner has no score yet. `result_maximum`
    defaults to 1, as AGS 2.0 specifies for a result without one.
    """

    user_id: str
    result_score: float | None
    result_maximum: float
    score_of: str | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def percent(self) -> float | None:
        """Return the score as a percentage of its maximum, or None without a score."""
        if self.result_score is None or self.result_maximum <= 0:
            return None

        return 100.0 * self.result_score / self.result_maximum


class AgsClient:
    """Reads one registration's line items and results on one platform.

    `granted_scopes` are the scopes of the course's endpoint claim. A request whose
    scope is not among them raises AgsScopeMissing without calling the platform.
    A 429 or 503 response is retried once when its Retry-After is at most
    `max_retry_wait` seconds. A longer or missing Retry-After raises AgsRateLimited.
    """

    def __init__(
        self,
        registration: Registration,
        vault: Vault,
        policy: OutboundPolicy,
        *,
        granted_scopes: tuple[str, ...],
        timeout: float = 10.0,
        max_retry_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registration = registration
        self.platform = registration.issuer
        self.granted_scopes = granted_scopes
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.policy = policy
        self.http = GuardedSession(policy, OutboundLimits(read_timeout_seconds=timeout))
        # OAuth 2.0 token endpoints must not redirect, so the token session follows none.
        token_http = GuardedSession(
            policy, OutboundLimits(read_timeout_seconds=timeout, max_redirects=0)
        )
        self.tokens = ServiceTokens(
            registration,
            vault,
            token_http,
            scopes=self._token_scopes(),
            service_name="Assignment and Grade Services",
            policy=policy,
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()
        self.tokens.http.close()

    def __enter__(self) -> AgsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def line_items(self, lineitems_url: str) -> list[LineItem]:
        """Return every line item of the container, following all pages."""
        self._require_scope(LINEITEM_READ_SCOPES, lineitems_url)
        pages = self._pages(lineitems_url, LINEITEM_CONTAINER_MEDIA_TYPE, params=None)
        return [
            self._line_item(item, url, f"[{index}]")
            for url, body in pages
            for index, item in enumerate(self._list_body(body, url))
        ]

    def line_item(self, lineitem_url: str) -> LineItem:
        """Return one line item read from its own URL."""
        self._require_scope(LINEITEM_READ_SCOPES, lineitem_url)
        response = self._get(lineitem_url, LINEITEM_MEDIA_TYPE, params=None)
        return self._line_item(self._json(response, lineitem_url), lineitem_url, "")

    def results(self, lineitem_url: str, *, user_id: str | None = None) -> list[Result]:
        """Return the line item's results, of one learner (`sub`) when given."""
        url = results_url(lineitem_url)
        self._require_scope((SCOPE_RESULT_READONLY,), url)
        params = {"user_id": user_id} if user_id is not None else None
        pages = self._pages(url, RESULT_CONTAINER_MEDIA_TYPE, params=params)
        return [
            self._result(item, page_url, f"[{index}]")
            for page_url, body in pages
            for index, item in enumerate(self._list_body(body, page_url))
        ]

    def _token_scopes(self) -> tuple[str, ...]:
        wanted = (SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY)
        granted = tuple(scope for scope in wanted if scope in self.granted_scopes)
        if SCOPE_LINEITEM_READONLY not in granted and (
            SCOPE_LINEITEM in self.granted_scopes
        ):
            granted = (SCOPE_LINEITEM, *granted)
        return granted or wanted

    def _require_scope(self, scopes: tuple[str, ...], url: str) -> None:
        if any(scope in self.granted_scopes for scope in scopes):
            return

        raise AgsScopeMissing(
            f"{self.platform} has not granted the AGS scope {scopes[0]} needed for "
            f"{url}; enable the tool's grade services (read line items and results) "
            "on the platform, then launch the tool from the course again",
            platform=self.platform,
            url=url,
            status=None,
        )

    def _pages(
        self, first_url: str, media_type: str, *, params: dict | None
    ) -> list[tuple[str, Any]]:
        pages = []
        url: str | None = first_url
        seen: set[str] = set()
        while url is not None:
            if len(pages) >= MAX_PAGES or url in seen:
                raise self._invalid(
                    f"paging of {first_url} does not end (more than {MAX_PAGES} pages "
                    f"or a repeated next link)",
                    first_url,
                    200,
                )

            seen.add(url)
            response = self._get(url, media_type, params=params if not pages else None)
            pages.append((url, self._json(response, url)))
            try:
                url = next_page_url(
                    self.policy, first_url, url, response.headers.get("Link", "")
                )
            except OutboundBlocked as error:
                raise self._outbound_error(error, error.url) from None

        return pages

    def _get(self, url: str, media_type: str, *, params: dict | None):
        try:
            check_service_url(self.policy, url)
        except OutboundBlocked as error:
            raise self._outbound_error(error, error.url) from None

        refreshed = False
        waited = False
        while True:
            token = self._access_token(url)
            response = self._send(url, media_type, token, params)
            status = response.status_code
            if status == 200:
                return response

            if status == 401 and not refreshed:
                # The token may have expired early or been revoked, so one fresh
                # token is tried before the 401 is final.
                self.tokens.invalidate(token)
                refreshed = True
                continue

            if status in (429, 503):
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if not waited and wait is not None and wait <= self.max_retry_wait:
                    log.info("ags_retry_after_wait", url=url, status=status, wait=wait)
                    self.sleep(wait)
                    waited = True
                    continue

                raise AgsRateLimited(
                    f"{self.platform} returned HTTP {status} for {url}"
                    + (f"; retry after {wait:g} s" if wait is not None else "")
                    + "; the next poll tries again",
                    retry_after=wait,
                    platform=self.platform,
                    url=url,
                    status=status,
                )

            raise self._status_error(response, url)

    def _send(self, url: str, media_type: str, token: str, params: dict | None):
        try:
            return self.http.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {token}", "Accept": media_type},
                timeout=(3.05, self.timeout),
            )
        except OutboundError as error:
            raise self._outbound_error(error, url) from None

    def _access_token(self, url: str) -> str:
        try:
            return self.tokens.access_token()
        except ServiceTokenError as error:
            token_url = error.url or url
            if error.oauth_error == "invalid_scope":
                raise AgsScopeMissing(
                    f"{self.platform} rejected the AGS scopes at {token_url} "
                    f"(invalid_scope); enable the tool's grade services on the "
                    "platform",
                    platform=self.platform,
                    url=token_url,
                    status=error.status,
                ) from None
            raise AgsTokenFailed(
                f"{self.platform}: {error}; check the registration's token URL and "
                "that the platform has the tool's public key",
                platform=self.platform,
                url=token_url,
                status=error.status,
            ) from None
        except OutboundError as error:
            raise self._outbound_error(error, error.url) from None

    def _outbound_error(self, error: OutboundError, url: str) -> AgsError:
        if isinstance(error, OutboundBlocked):
            kind: type[AgsError] = AgsBlocked
        elif isinstance(error, OutboundTooLarge):
            kind = AgsResponseInvalid
        else:
            kind = AgsUnavailable
        return kind(
            f"{self.platform}: request to {url} failed: {error}",
            platform=self.platform,
            url=url,
            status=None,
        )

    def _status_error(self, response: requests.Response, url: str) -> AgsError:
        status = response.status_code
        detail = response.text[:200]
        ids = dict(platform=self.platform, url=url, status=status)
        if status == 401:
            return AgsUnauthorized(
                f"{self.platform} rejected a fresh access token for {url} with HTTP "
                f"401: {detail}; check that the tool's grade services are enabled",
                **ids,
            )
        if status == 403:
            return AgsScopeMissing(
                f"{self.platform} denied {url} with HTTP 403: {detail}; the token "
                "lacks the AGS scope, so enable the tool's grade services",
                **ids,
            )
        if status >= 500:
            return AgsUnavailable(
                f"{self.platform} failed with HTTP {status} for {url}: {detail}",
                **ids,
            )
        return AgsRequestFailed(
            f"{self.platform} returned HTTP {status} for {url}: {detail}", **ids
        )

    def _json(self, response: requests.Response, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._invalid(
                f"the body is not JSON (Content-Type "
                f"{response.headers.get('Content-Type')!r}): {response.text[:100]!r}",
                url,
                response.status_code,
            ) from None

    def _list_body(self, body: Any, url: str) -> list:
        if not isinstance(body, list):
            raise self._invalid(
                f"expected a JSON array, got a JSON {type(body).__name__}", url, 200
            )
        return body

    def _line_item(self, item: Any, url: str, where: str) -> LineItem:
        if not isinstance(item, dict):
            raise self._invalid(f"line item{where} is not an object", url, 200)

        item_id, label = item.get("id"), item.get("label")
        maximum = item.get("scoreMaximum")
        if not isinstance(item_id, str) or not item_id:
            raise self._invalid(f"line item{where} has no id", url, 200)
        if not _is_number(maximum) or maximum <= 0:
            raise self._invalid(
                f"line item{where} has scoreMaximum {maximum!r}, expected a number "
                "above 0",
                url,
                200,
            )

        return LineItem(
            id=item_id,
            label=label if isinstance(label, str) and label else item_id,
            score_maximum=float(maximum),
            resource_link_id=_text_or_none(item.get("resourceLinkId")),
            resource_id=_text_or_none(item.get("resourceId")),
            tag=_text_or_none(item.get("tag")),
        )

    def _result(self, item: Any, url: str, where: str) -> Result:
        if not isinstance(item, dict):
            raise self._invalid(f"result{where} is not an object", url, 200)

        user_id = item.get("userId")
        score = item.get("resultScore")
        maximum = item.get("resultMaximum", 1)
        if not isinstance(user_id, str) or not user_id:
            raise self._invalid(f"result{where} has no userId", url, 200)
        if score is not None and not _is_number(score):
            raise self._invalid(
                f"result{where} has resultScore {score!r}, expected a number", url, 200
            )
        if not _is_number(maximum) or maximum < 0:
            raise self._invalid(
                f"result{where} has resultMaximum {maximum!r}, expected a number of "
                "0 or more",
                url,
                200,
            )

        return Result(
            user_id=user_id,
            result_score=None if score is None else float(score),
            result_maximum=float(maximum),
            score_of=_text_or_none(item.get("scoreOf")),
            raw=item,
        )

    def _invalid(
        self, problem: str, url: str, status: int | None
    ) -> AgsResponseInvalid:
        return AgsResponseInvalid(
            f"{self.platform} sent an invalid AGS response from {url}: {problem}",
            platform=self.platform,
            url=url,
            status=status,
        )


def results_url(lineitem_url: str) -> str:
    """Return the result service URL of a line item: its path plus `/results`.

    The query stays, because some platforms (Moodle) put the tool's type id there.
    """
    parts = urlsplit(lineitem_url)
    path = parts.path.rstrip("/") + "/results"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def retry_after_seconds(value: str | None) -> float | None:
    """Return the wait a Retry-After header requests, in seconds, or None.

    RFC 9110 allows a number of seconds or an HTTP date.
    """
    if not value:
        return None

    value = value.strip()
    if value.isdigit():
        return float(value)

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
