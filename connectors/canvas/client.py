"""Client for the Canvas REST API (`/api/v1`), at Canvas's own limits.

Canvas pages list endpoints with a `Link` header (`rel="next"`), throttles each
token with a leaky bucket whose level it reports in `X-Rate-Limit-Remaining`, and
rejects a request over the limit with 403 "Rate Limit Exceeded" (newer releases:
429 with `Retry-After`). The client follows `next` links only on the Canvas host,
slows down when the bucket runs low, retries throttled requests with backoff,
and refreshes an OAuth2 token once on a 401 that rejects the token.

Canvas returns 401 for three different problems, and only the first is worth a
refresh. The statuses and bodies below are read from Canvas's source
(instructure/canvas-lms: `api_error_json` in app/controllers/application_controller.rb
and `render_json_unauthorized` in lib/authentication_methods.rb):

- An unknown, expired or revoked token gets 401 with `WWW-Authenticate: Bearer
  realm="canvas-lms"` and "Invalid access token." (newer releases also say
  "Expired access token." or "Revoked access token.").
- A token of a scope-enforcing developer key without the endpoint's scope gets
  401 "Insufficient scopes on access token." without `WWW-Authenticate`.
- A valid token whose user lacks a permission gets `{"status": "unauthorized",
  "errors": [{"message": "user not authorized to perform that action"}]}`
  without `WWW-Authenticate`, with status 401, or 403 where the site admin
  feature `api_auth_error_updates` is on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests

from badge_engine.outbound import (
    GuardedSession,
    OutboundBlocked,
    OutboundLimits,
    OutboundPolicy,
    OutboundTooLarge,
    guarded_session,
)
from connectors.canvas.errors import (
    CanvasAccessDenied,
    CanvasError,
    CanvasNotFound,
    CanvasNotModuleBased,
    CanvasResponseInvalid,
    CanvasScopeMissing,
    CanvasTokenInvalid,
    CanvasUnavailable,
)

logger = logging.getLogger(__name__)

PER_PAGE = 100
# A page of 100 module or progress records is well under 1 MB; the limit leaves
# room for long module item lists while stopping an endless or hostile body.
CANVAS_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=30.0,
    deadline_seconds=120.0,
    max_bytes=16 * 1024 * 1024,
    max_redirects=0,
)
# Below this many units left in the token's quota, wait before the next request.
# NOTE: Canvas documents the X-Rate-Limit-Remaining header but not the quota size
# or refill rate (both are per-site settings), so this margin is an estimate.
LOW_WATER_REMAINING = 100.0
THROTTLE_MARKER = "rate limit exceeded"
SCOPE_MARKER = "insufficient scopes"
PERMISSION_MARKER = "user not authorized to perform that action"
USERS_API_PREFIX = "/api/v1/users/"
_BODY_EXCERPT_LENGTH = 120
# One link of a Link header: <url>; param=value; ...
_LINK_PATTERN = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_PARAM_PATTERN = re.compile(r';\s*([A-Za-z]+)\s*=\s*"?([^";,]*)"?')


class TokenSource(Protocol):
    can_refresh: bool

    def access_token(self) -> str: ...

    def refresh(self) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items and the URL of the next page, if any."""

    items: list[Any]
    next_url: str | None
    url: str


@dataclass
class RequestStats:
    """Counts of what the client did, for logs and tests."""

    requests: int = 0
    throttled: int = 0
    refreshed: int = 0
    slowed: int = 0
    server_errors: int = 0
    waits: list[float] = field(default_factory=list)


def _lti_reference(prefix: str, value: str) -> str:
    """Return a Canvas id reference such as `lti_context_id:<value>`, URL-escaped."""
    return f"{prefix}:{quote(value, safe='')}"


def next_link(header: str | None) -> str | None:
    """Return the `rel="next"` URL of a Link header, matching rel case-insensitively.

    A link may carry several space-separated relation types (`rel="next last"`).
    """
    if not header:
        return None

    for match in _LINK_PATTERN.finditer(header):
        url, params = match.group(1), match.group(2)
        for name, value in _PARAM_PATTERN.findall(params):
            if name.lower() == "rel" and "next" in value.lower().split():
                return url.strip()
    return None


class CanvasClient:
    """Client for one Canvas site's REST API.

    `max_retries` applies to throttling, timeouts and 5xx responses. Throttled
    requests wait `Retry-After` seconds when Canvas sends it, otherwise `backoff`,
    2 x `backoff`, ... capped at `max_backoff`. `sleep` is injectable so tests can
    record waits instead of spending them. Redirects are not followed, because
    Canvas redirects an unauthenticated API call to its HTML login page.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        policy: OutboundPolicy | None = None,
        session: GuardedSession | None = None,
        timeout: float | tuple[float, float] = (3.05, 20),
        max_retries: int = 8,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        per_page: int = PER_PAGE,
    ) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"Canvas base URL must start with http:// or https:// and a host, "
                f"got {base_url!r}"
            )
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")

        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self.token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.per_page = per_page
        self.stats = RequestStats()
        self._sleep = sleep
        self._session = guarded_session(session, policy, CANVAS_LIMITS)

    def __repr__(self) -> str:
        return f"CanvasClient(base_url={self.base_url!r})"

    # Course data -------------------------------------------------------------

    def list_modules(self, course_id: str, student_id: str | None = None) -> list:
        """Return the course's modules with their items and completion requirements.

        With `student_id`, Canvas adds each requirement's `completed` for that student.
        """
        params: dict[str, Any] = {"include[]": ["items", "content_details"]}
        if student_id is not None:
            params["student_id"] = student_id
        return list(self.iter_items(f"/api/v1/courses/{course_id}/modules", params))

    def list_student_enrollments(
        self, course_id: str, user_id: str | None = None
    ) -> list:
        """Return student enrollments, of one user if given, each with `grades`."""
        params: dict[str, Any] = {
            "type[]": ["StudentEnrollment"],
            "state[]": ["active", "completed"],
        }
        if user_id is not None:
            params["user_id"] = user_id
        return list(self.iter_items(f"/api/v1/courses/{course_id}/enrollments", params))

    def list_student_submissions(self, course_id: str, user_id: str) -> list:
        """Return one student's submissions, each with its assignment's points."""
        params = {"student_ids[]": [user_id], "include[]": ["assignment"]}
        path = f"/api/v1/courses/{course_id}/students/submissions"
        return list(self.iter_items(path, params))

    def get_user_progress(self, course_id: str, user_id: str) -> dict[str, Any]:
        """Return `users/:id/progress`; a 400 response raises CanvasNotModuleBased."""
        return self.get_json(f"/api/v1/courses/{course_id}/users/{user_id}/progress")

    def get_course_by_lti_context_id(self, context_id: str) -> dict[str, Any]:
        """Return the course whose LTI `context.id` is `context_id` (Get a single course).

        Canvas accepts `lti_context_id:<id>` wherever the API takes a course id.
        """
        return self._get_object(
            f"/api/v1/courses/{_lti_reference('lti_context_id', context_id)}"
        )

    def get_course_user_by_lti_1_3_id(
        self, context_id: str, sub: str
    ) -> dict[str, Any]:
        """Return the user of the course with LTI `context.id` whose LTI 1.3 `sub` is `sub`.

        Canvas accepts `lti_1_3_id:<sub>` wherever the API takes a user id. A user
        who is not in the course gets 404 (CanvasNotFound).
        """
        course = _lti_reference("lti_context_id", context_id)
        user = _lti_reference("lti_1_3_id", sub)
        return self._get_object(f"/api/v1/courses/{course}/users/{user}")

    def get_user_by_lti_1_3_id(self, sub: str) -> dict[str, Any]:
        """Return the Canvas user whose LTI 1.3 `sub` is `sub`, in any course or none.

        This is the Users API's "Show user details" (`GET /api/v1/users/:id`),
        which needs the scope `url:GET|/api/v1/users/:id`. Canvas shows a user to
        that user and to admins whose role has "Users - view list" (`read_roster`)
        or `manage_user_logins` in an account of the user (`api_show_user` in
        app/models/user.rb of instructure/canvas-lms). An unknown `sub` gets 404
        (CanvasNotFound). On current Canvas, a user whom the token's user may not
        read gets the same 404, because `UsersController#api_show` raises
        RecordNotFound in both cases. Older releases returned the 401 or 403 "user
        not authorized to perform that action" there, which raises
        CanvasAccessDenied without a token refresh.

        NOTE: these responses were read from the canvas-lms source, not observed on
        a live Canvas site. Which release moved `api_show` from 401 to 404, and
        whether hosted Canvas has `api_auth_error_updates` on, is not confirmed.
        """
        user = _lti_reference("lti_1_3_id", sub)
        return self._get_object(f"/api/v1/users/{user}")

    def iter_bulk_user_progress(
        self, course_id: str, start_url: str | None = None
    ) -> Iterator[Page]:
        """Page through `bulk_user_progress`, starting at `start_url` to resume."""
        path = f"/api/v1/courses/{course_id}/bulk_user_progress"
        return self.iter_pages(start_url or path)

    # Transport ---------------------------------------------------------------

    def get_json(self, path_or_url: str, params: dict | None = None) -> Any:
        return self._get(path_or_url, params).json()

    def _get_object(self, path: str) -> dict[str, Any]:
        response = self._get(path, None)
        body = response.json()
        if not isinstance(body, dict):
            raise CanvasResponseInvalid(
                f"Canvas returned a JSON {type(body).__name__} for {path}, expected "
                "an object; check the bridge's Canvas URL.",
                base_url=self.base_url,
                path=path,
                status_code=response.status_code,
            )
        return body

    def iter_items(self, path: str, params: dict | None = None) -> Iterator[Any]:
        for page in self.iter_pages(path, params):
            yield from page.items

    def iter_pages(
        self, path_or_url: str, params: dict | None = None
    ) -> Iterator[Page]:
        """Yield each page of a list endpoint, following `rel="next"` links.

        The first request adds `per_page`; later requests use the `next` URL as
        Canvas built it, because Canvas encodes its own page bookmark in it.
        """
        url = path_or_url
        request_params: dict | None = {**(params or {}), "per_page": self.per_page}
        if self._is_absolute(path_or_url):
            request_params = None

        while url:
            response = self._get(url, request_params)
            items = response.json()
            if not isinstance(items, list):
                raise CanvasResponseInvalid(
                    f"Canvas returned a JSON {type(items).__name__} for {url}, "
                    f"expected a list; check the bridge's Canvas URL.",
                    base_url=self.base_url,
                    path=url,
                    status_code=response.status_code,
                )
            next_url = next_link(response.headers.get("Link"))
            if next_url is not None:
                self._check_same_origin(next_url)
            yield Page(items=items, next_url=next_url, url=response.url)
            url, request_params = next_url, None

    def _is_absolute(self, url: str) -> bool:
        return url.startswith(("http://", "https://"))

    def _check_same_origin(self, url: str) -> None:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise CanvasResponseInvalid(
                f"Canvas sent a next-page link to another host ({parts.netloc!r}); "
                f"the bridge sends its token only to {self.base_url}.",
                base_url=self.base_url,
                path=url,
            )

    def _get(self, path_or_url: str, params: dict | None) -> requests.Response:
        url = path_or_url
        if not self._is_absolute(url):
            url = self.base_url + path_or_url
        path = urlsplit(url).path
        refreshed = False
        attempt = 0

        while True:
            attempt += 1
            response = self._send(url, params, path, attempt)
            if response is None:
                continue

            if response.status_code == 401:
                self._raise_for_scope(response, path)
                if _is_permission_denial(response):
                    raise self._access_denied(response, path)
                if refreshed or not self.token.can_refresh:
                    raise self._token_invalid(path, refreshed)
                self._refresh(path)
                refreshed = True
                continue

            retry_after = self._throttle_delay(response, attempt)
            if retry_after is not None:
                self._wait_throttled(path, attempt, retry_after, response.status_code)
                continue

            if response.status_code >= 500:
                self._wait_server_error(path, attempt, response.status_code)
                continue

            self._check_status(response, path)
            self._slow_down_if_low(response, path)
            return response

    def _send(
        self, url: str, params: dict | None, path: str, attempt: int
    ) -> requests.Response | None:
        """Send one GET; return None when a network failure is worth a retry."""
        self.stats.requests += 1
        headers = {
            "Authorization": f"Bearer {self.token.access_token()}",
            "Accept": "application/json",
        }
        try:
            return self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except OutboundBlocked as error:
            raise CanvasError(
                f"Canvas at {self.base_url} was not called for {path}: {error}",
                base_url=self.base_url,
                path=path,
            ) from error
        except OutboundTooLarge as error:
            raise CanvasResponseInvalid(
                f"Canvas at {self.base_url} sent a response to {path} larger than "
                f"{CANVAS_LIMITS.max_bytes} bytes. Check that the base URL points "
                "at Canvas.",
                base_url=self.base_url,
                path=path,
            ) from error
        except requests.RequestException as error:
            if attempt > self.max_retries:
                raise CanvasUnavailable(
                    f"Canvas at {self.base_url} could not be reached for {path} "
                    f"after {attempt} attempts ({type(error).__name__}); retry later.",
                    base_url=self.base_url,
                    path=path,
                ) from None
            delay = self._backoff_delay(attempt)
            logger.warning(
                "Canvas request failed, retrying in %.2f s: base_url=%s path=%s "
                "attempt=%d error=%s",
                delay,
                self.base_url,
                path,
                attempt,
                type(error).__name__,
            )
            self._wait(delay)
            return None

    def _refresh(self, path: str) -> None:
        logger.info(
            "Canvas returned 401, refreshing the token once: base_url=%s path=%s",
            self.base_url,
            path,
        )
        self.stats.refreshed += 1
        self.token.refresh()

    def _token_invalid(self, path: str, refreshed: bool) -> CanvasTokenInvalid:
        if refreshed:
            detail = "even after a token refresh"
        else:
            detail = "and the admin access token cannot be refreshed"
        return CanvasTokenInvalid(
            f"Canvas at {self.base_url} rejected the token for {path} (HTTP 401) "
            f"{detail}. Mark the connection broken and ask the provider admin to "
            f"connect Canvas again with a new token or developer key.",
            base_url=self.base_url,
            path=path,
            status_code=401,
        )

    def _raise_for_scope(self, response: requests.Response, path: str) -> None:
        # Canvas rejects a token of a scope-enforcing developer key that lacks the
        # endpoint's scope with 401 "Insufficient scopes on access token.". A refresh
        # cannot add a scope, so this is not a token problem.
        if SCOPE_MARKER not in response.text[:500].lower():
            return

        raise CanvasScopeMissing(
            f"Canvas at {self.base_url} rejected {path} because the access token "
            f"lacks its scope. {self._scope_fix(path)}",
            base_url=self.base_url,
            path=path,
            status_code=401,
        )

    def _access_denied(
        self, response: requests.Response, path: str
    ) -> CanvasAccessDenied:
        status = response.status_code
        if path.startswith(USERS_API_PREFIX):
            fix = (
                "The token's user must be an account admin whose role has the "
                "permission Users - view list in an account that contains this user. "
                "Add such a role to the token's user in Canvas under Admin > the "
                f"account > Settings > Admins, or {self._reconnect_as_admin()}"
            )
        else:
            fix = (
                "Give the token's user a role that can read the course's modules, "
                "enrollments and progress."
            )
        return CanvasAccessDenied(
            f"Canvas at {self.base_url} denied {path} (HTTP {status}, "
            f"{_excerpt(response)}) because the token's user lacks a permission, "
            f"although the token is valid. {fix}",
            base_url=self.base_url,
            path=path,
            status_code=status,
        )

    def _reconnect_as_admin(self) -> str:
        if self.token.can_refresh:
            return (
                "authorise the bridge again while logged in to Canvas as such an admin."
            )
        return (
            "create a token as such an admin and save it with `hpass-bridge "
            "connection set-token CONNECTION_ID --token-file FILE`."
        )

    def _scope_fix(self, path: str) -> str:
        if self.token.can_refresh:
            return (
                f"Add the scope for GET {path} to the developer key under Admin > "
                "Developer Keys, then authorise the bridge again."
            )
        return (
            f"Create a token that grants the scope for GET {path}, then save it with "
            "`hpass-bridge connection set-token CONNECTION_ID --token-file FILE`."
        )

    def _throttle_delay(
        self, response: requests.Response, attempt: int
    ) -> float | None:
        """Return how long to wait before retrying a throttled response, else None."""
        throttled = response.status_code == 429 or (
            response.status_code == 403
            and THROTTLE_MARKER in response.text[:500].lower()
        )
        if not throttled:
            return None

        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            retry_after = self._backoff_delay(attempt)
        return min(retry_after, self.max_backoff)

    def _wait_throttled(
        self, path: str, attempt: int, delay: float, status_code: int
    ) -> None:
        self.stats.throttled += 1
        if attempt > self.max_retries:
            raise CanvasUnavailable(
                f"Canvas at {self.base_url} kept throttling {path} (HTTP "
                f"{status_code}) through {attempt} attempts; the bridge retries "
                f"later. This is a rate limit, not a permission problem.",
                base_url=self.base_url,
                path=path,
                status_code=status_code,
                retry_after=delay,
            )
        logger.warning(
            "Canvas throttled the request, retrying in %.2f s: base_url=%s path=%s "
            "status=%d attempt=%d/%d",
            delay,
            self.base_url,
            path,
            status_code,
            attempt,
            self.max_retries + 1,
        )
        self._wait(delay)

    def _wait_server_error(self, path: str, attempt: int, status_code: int) -> None:
        self.stats.server_errors += 1
        if attempt > self.max_retries:
            raise CanvasUnavailable(
                f"Canvas at {self.base_url} returned HTTP {status_code} for {path} "
                f"through {attempt} attempts; retry later.",
                base_url=self.base_url,
                path=path,
                status_code=status_code,
            )
        delay = self._backoff_delay(attempt)
        logger.warning(
            "Canvas returned HTTP %d, retrying in %.2f s: base_url=%s path=%s "
            "attempt=%d",
            status_code,
            delay,
            self.base_url,
            path,
            attempt,
        )
        self._wait(delay)

    def _check_status(self, response: requests.Response, path: str) -> None:
        ids = dict(base_url=self.base_url, path=path, status_code=response.status_code)
        status = response.status_code
        if 300 <= status < 400:
            raise CanvasResponseInvalid(
                f"Canvas redirected {path} to {response.headers.get('Location')!r} "
                f"instead of answering; check that the connection's Canvas URL is "
                f"the site's canonical https address.",
                **ids,
            )
        if status == 403:
            raise self._access_denied(response, path)
        if status == 404 and path.startswith(USERS_API_PREFIX):
            raise CanvasNotFound(
                f"Canvas at {self.base_url} has no user at {path} that the token's "
                f"user may read (HTTP 404). Current Canvas releases return 404 when "
                f"the user does not exist in the account, and also when the token's "
                f"user is no admin with the permission Users - view list in an "
                f"account that contains the user. Check the user id, then the token "
                f"user's admin role.",
                **ids,
            )
        if status == 404:
            raise CanvasNotFound(
                f"Canvas at {self.base_url} has nothing at {path} (HTTP 404); check "
                f"the course and user ids.",
                **ids,
            )
        if status == 400 and path.endswith("/progress"):
            raise _not_module_based(response, **ids)
        if status != 200:
            raise CanvasError(
                f"Canvas at {self.base_url} returned HTTP {status} for {path} "
                f"({_excerpt(response)}).",
                **ids,
            )

        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type.lower():
            raise CanvasResponseInvalid(
                f"Canvas returned {content_type or 'no content type'} for {path} "
                f"instead of JSON ({_excerpt(response)}); check that the connection's "
                f"URL is the Canvas site and not a login or maintenance page.",
                **ids,
            )
        try:
            response.json()
        except ValueError:
            raise CanvasResponseInvalid(
                f"Canvas returned a body that is not valid JSON for {path} "
                f"({_excerpt(response)}).",
                **ids,
            ) from None

    def _slow_down_if_low(self, response: requests.Response, path: str) -> None:
        try:
            remaining = float(response.headers.get("X-Rate-Limit-Remaining", ""))
        except ValueError:
            return
        if remaining >= LOW_WATER_REMAINING:
            return

        # NOTE: the refill rate of 10 units a second is an estimate, because Canvas
        # does not document it. The wait is sized to refill the gap below the mark.
        delay = min((LOW_WATER_REMAINING - remaining) / 10.0, self.max_backoff)
        self.stats.slowed += 1
        logger.info(
            "Canvas rate limit bucket is low, waiting %.2f s: base_url=%s path=%s "
            "remaining=%.1f",
            delay,
            self.base_url,
            path,
            remaining,
        )
        self._wait(delay)

    def _backoff_delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)

    def _wait(self, seconds: float) -> None:
        self.stats.waits.append(seconds)
        self._sleep(seconds)


def _not_module_based(response: requests.Response, **ids: Any) -> CanvasNotModuleBased:
    canvas_message = None
    try:
        error = response.json().get("error") or response.json().get("errors")
        if isinstance(error, dict):
            canvas_message = error.get("message")
        elif isinstance(error, list) and error and isinstance(error[0], dict):
            canvas_message = error[0].get("message")
    except (ValueError, AttributeError):
        pass
    return CanvasNotModuleBased(
        f"Canvas cannot report module progress for this course and learner (HTTP "
        f"400, Canvas message {canvas_message!r}): the course has no module "
        f"completion requirements, or the user is not a student in it. Ask the "
        f"instructor to add completion requirements to the course's modules, or to "
        f"use grade rules for this badge.",
        canvas_message=canvas_message,
        **ids,
    )


def _is_permission_denial(response: requests.Response) -> bool:
    """Return whether a 401 reports a missing permission of a valid token's user.

    Canvas adds `WWW-Authenticate` only when it rejects the token itself, so a 401
    with that header is a token problem whatever its body contains.
    """
    if "WWW-Authenticate" in response.headers:
        return False
    return PERMISSION_MARKER in response.text[:500].lower()


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def _excerpt(response: requests.Response) -> str:
    text = " ".join(response.text[:_BODY_EXCERPT_LENGTH].split())
    return f"body starts {text!r}" if text else "empty body"
