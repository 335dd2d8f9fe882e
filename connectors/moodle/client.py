"""Client for the Moodle REST web service (`/webservice/rest/server.php`).

Moodle reports most errors with HTTP 200 and a JSON body that carries `exception`,
`errorcode` and a translated `message`, so every body is checked for `exception` and
the client branches on `errorcode` only. The token travels in the POST body, never in
the URL, and never appears in a log line or an error message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from badge_engine.facts import CompletionState
from badge_engine.outbound import (
    GuardedSession,
    OutboundBlocked,
    OutboundLimits,
    OutboundPolicy,
    OutboundTooLarge,
    guarded_session,
)
from connectors.moodle.conversions import (
    COMPLETION_STATES,
    CompletionTracking,
    datetime_from_unix,
)
from connectors.moodle.errors import (
    MoodleAccessDenied,
    MoodleError,
    MoodleResponseInvalid,
    MoodleUnavailable,
    error_for_errorcode,
)

# A course's contents or roster page can run to a few MB; the limit leaves room
# for large courses while stopping an endless or hostile body.
MOODLE_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=30.0,
    deadline_seconds=120.0,
    max_bytes=32 * 1024 * 1024,
    max_redirects=0,
)

logger = logging.getLogger(__name__)

REST_PATH = "/webservice/rest/server.php"

# The web service functions this connector calls, each with what the bridge uses it
# for. The external service that the token belongs to must list all of them.
REQUIRED_FUNCTIONS: dict[str, str] = {
    "core_webservice_get_site_info": "test the connection and list the token's "
    "functions",
    "core_course_get_contents": "list a course's activities for the award rule builder",
    "core_enrol_get_enrolled_users": "list a course's learners for reconciliation "
    "polls",
    "core_completion_get_course_completion_status": "re-read a learner's course "
    "completion before an award",
    "core_completion_get_activities_completion_status": "re-read a learner's "
    "activity completion and teacher overrides",
    "gradereport_user_get_grade_items": "read a learner's grades",
}

_WSFUNCTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_BODY_EXCERPT_LENGTH = 120
_TRACKING_VALUES = frozenset(tracking.value for tracking in CompletionTracking)


@dataclass(frozen=True)
class CourseCompletionStatus:
    """One learner's course completion as the web service reports it.

    `time_completed` is the latest `timecompleted` among the completed criteria when
    the course is complete, and None otherwise. The web service does not return the
    course's own completion time, but Moodle 4.x's aggregate_completions() in
    lib/completionlib.php stamps the course with this same maximum whatever the
    ALL or ANY aggregation. It is also None when Moodle reports the course complete
    but no criterion carries a time.
    """

    completed: bool
    time_completed: datetime | None
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class ActivityCompletion:
    """One course module's completion for one learner.

    `cmid` is the course module id. `time_completed` is None when Moodle stores 0;
    Moodle fills it from the completion row's `timemodified`, so for a state set
    back to incomplete it is the time of that change. `overridden_by` is the user
    id of the teacher who last overrode the state, or None.
    """

    cmid: int
    modname: str
    state: CompletionState
    time_completed: datetime | None
    tracking: CompletionTracking
    overridden_by: int | None
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class CourseModule:
    """One activity of a course as `core_course_get_contents` lists it.

    `completion` is the module's completion tracking mode.
    """

    cmid: int
    name: str
    modname: str
    section_name: str
    visible: bool
    completion: CompletionTracking


@dataclass(frozen=True)
class EnrolledUser:
    """A user enrolled in a course; `email` is None when the token may not see it."""

    user_id: int
    fullname: str
    email: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True)
class GradeItem:
    """One grade item of a learner's user report; `cmid` is None for non-activities."""

    item_id: int
    item_type: str
    cmid: int | None
    grade_raw: float | None
    grade_max: float | None
    time_graded: datetime | None


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten web service parameters into form fields in PHP's array syntax.

    Moodle reads arrays from names like `options[0][name]`, so a list becomes
    indexed keys and a dict becomes named keys. Booleans become "1" and "0". A
    parameter set to None is left out, so Moodle applies its default.

    Raises:
        TypeError: a value is not a str, int, float, bool, list, tuple, dict or None.
    """
    fields: list[tuple[str, str]] = []
    for name, value in params.items():
        _append_fields(fields, str(name), value)
    return fields


def _append_fields(fields: list[tuple[str, str]], name: str, value: Any) -> None:
    if value is None:
        return

    if isinstance(value, bool):
        fields.append((name, "1" if value else "0"))
    elif isinstance(value, (str, int, float)):
        fields.append((name, str(value)))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _append_fields(fields, f"{name}[{key}]", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _append_fields(fields, f"{name}[{index}]", item)
    else:
        raise TypeError(
            f"Moodle parameter {name!r} has unsupported type "
            f"{type(value).__name__}; pass str, int, float, bool, list, tuple or dict"
        )


class _RetryableFailure(Exception):
    """Internal wrapper for a MoodleUnavailable that is worth retrying at once."""

    def __init__(self, error: MoodleUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


class MoodleClient:
    """Client for one Moodle site's REST web service, authenticated by a token.

    `timeout` is the (connect, read) timeout in seconds for each HTTP request.
    Transient failures (timeouts, connection errors, HTTP 5xx and 429) are retried
    up to `max_retries` times, waiting `backoff`, then 2 x `backoff`, and so on
    seconds between attempts. A retry sends the request again, which is safe for
    the read-only functions that this connector calls. Use `max_retries=0` for a
    client that calls functions that change data. Redirects are not followed, so
    the token is never sent to another address.
    """

    def __init__(
        self,
        site_url: str,
        token: str,
        *,
        timeout: float | tuple[float, float] = (3.05, 10),
        policy: OutboundPolicy | None = None,
        session: GuardedSession | None = None,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        if not isinstance(site_url, str) or not re.match(r"https?://[^/?#]+", site_url):
            raise ValueError(
                f"Moodle site URL must start with http:// or https:// and a host, "
                f"got {site_url!r}"
            )
        if "?" in site_url or "#" in site_url:
            raise ValueError(
                f"Moodle site URL must not contain a query or fragment, "
                f"got {site_url!r}"
            )
        if not isinstance(token, str) or not token.strip():
            raise ValueError("Moodle web service token must be a non-empty string")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be 0 or more seconds, got {backoff}")

        self.site_url = site_url.rstrip("/")
        self.endpoint = self.site_url + REST_PATH
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._token = token
        self._owns_session = session is None
        self._session = guarded_session(session, policy, MOODLE_LIMITS)

    def __repr__(self) -> str:
        return f"MoodleClient(site_url={self.site_url!r})"

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def call(self, wsfunction: str, **params: Any) -> Any:
        """Call a web service function and return its decoded JSON result.

        Array parameters are flattened as `encode_params` describes.

        Raises:
            MoodleTokenInvalid, MoodleAccessDenied, MoodleNoCompletionCriteria:
                Moodle rejected the call with that errorcode.
            MoodleUnavailable: a transient failure outlasted the retries.
            MoodleResponseInvalid: the response was not a Moodle JSON response.
            MoodleError: Moodle returned another errorcode.
            ValueError: `wsfunction` is not a Moodle function name.
            TypeError: a parameter has a type that `encode_params` cannot send.
        """
        if not _WSFUNCTION_PATTERN.fullmatch(wsfunction):
            raise ValueError(
                f"wsfunction must be a Moodle function name such as "
                f"core_webservice_get_site_info, got {wsfunction!r}"
            )

        form = [
            ("wstoken", self._token),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *encode_params(params),
        ]
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._post_once(wsfunction, form, params, attempt, attempts)
            except _RetryableFailure as failure:
                if attempt == attempts:
                    raise failure.error from failure.__cause__

                delay = self.backoff * 2 ** (attempt - 1)
                logger.warning(
                    "Moodle call failed, retrying in %.2f s: site=%s wsfunction=%s "
                    "attempt=%d/%d status=%s error=%s",
                    delay,
                    self.site_url,
                    wsfunction,
                    attempt,
                    attempts,
                    failure.error.status_code,
                    failure.error,
                )
                time.sleep(delay)

        raise AssertionError("unreachable: the retry loop returns or raises")

    def get_site_info(self) -> dict[str, Any]:
        """Return the site info: the site, the token's user and its allowed functions.

        The result is core_webservice_get_site_info's JSON object, unchanged.
        """
        wsfunction = "core_webservice_get_site_info"
        result = self.call(wsfunction)
        return self._require_dict(result, wsfunction, "the top level")

    def get_course_completion_status(
        self, course_id: int, user_id: int
    ) -> CourseCompletionStatus:
        """Read one learner's course completion.

        Raises MoodleNoCompletionCriteria when the course has no completion criteria,
        besides the errors that `call` raises.
        """
        wsfunction = "core_completion_get_course_completion_status"
        result = self._call_for_object(wsfunction, courseid=course_id, userid=user_id)

        status = self._require_dict(
            result.get("completionstatus"), wsfunction, "completionstatus"
        )
        completed = status.get("completed")
        if not isinstance(completed, bool):
            raise self._shape_error(
                wsfunction, "completionstatus.completed", completed, "a boolean"
            )

        completions = self._require_list(
            status.get("completions"), wsfunction, "completionstatus.completions"
        )

        criteria_times: list[int] = []
        for index, criterion in enumerate(completions):
            path = f"completionstatus.completions[{index}]"
            criterion = self._require_dict(criterion, wsfunction, path)
            if criterion.get("complete") is not True:
                continue
            seconds = criterion.get("timecompleted")
            if seconds is None:
                continue
            if not _is_int(seconds) or seconds < 0:
                raise self._shape_error(
                    wsfunction, f"{path}.timecompleted", seconds, "Unix seconds"
                )
            if seconds > 0:
                criteria_times.append(seconds)

        time_completed = None
        if completed and criteria_times:
            time_completed = datetime_from_unix(max(criteria_times))

        return CourseCompletionStatus(
            completed=completed, time_completed=time_completed, raw=result
        )

    def get_activities_completion_status(
        self, course_id: int, user_id: int
    ) -> list[ActivityCompletion]:
        """Read one learner's completion of every course module that tracks it."""
        wsfunction = "core_completion_get_activities_completion_status"
        result = self._call_for_object(wsfunction, courseid=course_id, userid=user_id)
        statuses = self._require_list(result.get("statuses"), wsfunction, "statuses")

        activities = []
        for index, status in enumerate(statuses):
            path = f"statuses[{index}]"
            status = self._require_dict(status, wsfunction, path)
            activities.append(self._parse_activity(status, wsfunction, path))
        return activities

    def get_course_contents(self, course_id: int) -> list[CourseModule]:
        """Read a course's sections and list every course module with its tracking."""
        wsfunction = "core_course_get_contents"
        result = self._require_list(
            self.call(wsfunction, courseid=course_id), wsfunction, "the top level"
        )

        modules = []
        for index, section in enumerate(result):
            path = f"[{index}]"
            section = self._require_dict(section, wsfunction, path)
            section_name = str(section.get("name") or "")
            for module_index, module in enumerate(section.get("modules") or []):
                module_path = f"{path}.modules[{module_index}]"
                module = self._require_dict(module, wsfunction, module_path)
                modules.append(
                    self._parse_course_module(
                        module, section_name, wsfunction, module_path
                    )
                )
        return modules

    def get_enrolled_users(
        self, course_id: int, *, offset: int = 0, limit: int = 100
    ) -> list[EnrolledUser]:
        """Read one page of a course's enrolled users, `limit` users from `offset`.

        Moodle's `limitfrom` and `limitnumber` options page the list, so an empty
        or short page means the end of the list.
        """
        if offset < 0 or limit <= 0:
            raise ValueError(
                f"offset must be 0 or more and limit positive, got {offset}, {limit}"
            )

        wsfunction = "core_enrol_get_enrolled_users"
        options = [
            {"name": "userfields", "value": "id,fullname,email,roles"},
            {"name": "limitfrom", "value": offset},
            {"name": "limitnumber", "value": limit},
        ]
        result = self._require_list(
            self.call(wsfunction, courseid=course_id, options=options),
            wsfunction,
            "the top level",
        )

        users = []
        for index, user in enumerate(result):
            path = f"[{index}]"
            user = self._require_dict(user, wsfunction, path)
            user_id = user.get("id")
            if not _is_int(user_id) or user_id <= 0:
                raise self._shape_error(
                    wsfunction, f"{path}.id", user_id, "a positive integer"
                )
            roles = tuple(
                str(role.get("shortname"))
                for role in user.get("roles") or []
                if isinstance(role, dict)
            )
            email = user.get("email")
            users.append(
                EnrolledUser(
                    user_id=user_id,
                    fullname=str(user.get("fullname") or ""),
                    email=email if isinstance(email, str) and email else None,
                    roles=roles,
                )
            )
        return users

    def get_grade_items(self, course_id: int, user_id: int) -> list[GradeItem]:
        """Read one learner's grade items in a course from the user grade report."""
        wsfunction = "gradereport_user_get_grade_items"
        result = self._call_for_object(wsfunction, courseid=course_id, userid=user_id)
        usergrades = self._require_list(
            result.get("usergrades"), wsfunction, "usergrades"
        )

        items = []
        for index, usergrade in enumerate(usergrades):
            path = f"usergrades[{index}]"
            usergrade = self._require_dict(usergrade, wsfunction, path)
            for item_index, item in enumerate(usergrade.get("gradeitems") or []):
                item_path = f"{path}.gradeitems[{item_index}]"
                item = self._require_dict(item, wsfunction, item_path)
                items.append(self._parse_grade_item(item, wsfunction, item_path))
        return items

    def _parse_course_module(
        self, module: dict[str, Any], section_name: str, wsfunction: str, path: str
    ) -> CourseModule:
        cmid = module.get("id")
        if not _is_int(cmid) or cmid <= 0:
            raise self._shape_error(
                wsfunction, f"{path}.id", cmid, "a positive integer"
            )

        # A module without a `completion` field is read as one without tracking.
        completion = module.get("completion", 0)
        if not _is_int(completion) or completion not in _TRACKING_VALUES:
            raise self._shape_error(
                wsfunction, f"{path}.completion", completion, "an integer from 0 to 2"
            )

        return CourseModule(
            cmid=cmid,
            name=str(module.get("name") or ""),
            modname=str(module.get("modname") or ""),
            section_name=section_name,
            visible=bool(module.get("visible", 1)),
            completion=CompletionTracking(completion),
        )

    def _parse_grade_item(
        self, item: dict[str, Any], wsfunction: str, path: str
    ) -> GradeItem:
        item_id = item.get("id")
        if not _is_int(item_id):
            raise self._shape_error(wsfunction, f"{path}.id", item_id, "an integer")

        cmid = item.get("cmid")
        graded = item.get("gradedategraded")
        return GradeItem(
            item_id=item_id,
            item_type=str(item.get("itemtype") or ""),
            cmid=cmid if _is_int(cmid) else None,
            grade_raw=_number_or_none(item.get("graderaw")),
            grade_max=_number_or_none(item.get("grademax")),
            time_graded=datetime_from_unix(graded) if _is_int(graded) else None,
        )

    def _parse_activity(
        self, status: dict[str, Any], wsfunction: str, path: str
    ) -> ActivityCompletion:
        cmid = status.get("cmid")
        if not _is_int(cmid) or cmid <= 0:
            raise self._shape_error(
                wsfunction, f"{path}.cmid", cmid, "a positive integer"
            )

        modname = status.get("modname")
        if not isinstance(modname, str) or not modname:
            raise self._shape_error(
                wsfunction, f"{path}.modname", modname, "a module name"
            )

        state = status.get("state")
        if not _is_int(state) or state not in COMPLETION_STATES:
            raise self._shape_error(
                wsfunction, f"{path}.state", state, "an integer from 0 to 3"
            )

        seconds = status.get("timecompleted")
        if not _is_int(seconds) or seconds < 0:
            raise self._shape_error(
                wsfunction, f"{path}.timecompleted", seconds, "Unix seconds"
            )

        tracking = status.get("tracking")
        if not _is_int(tracking) or tracking not in _TRACKING_VALUES:
            raise self._shape_error(
                wsfunction, f"{path}.tracking", tracking, "an integer from 0 to 2"
            )

        overrideby = status.get("overrideby")
        return ActivityCompletion(
            cmid=cmid,
            modname=modname,
            state=COMPLETION_STATES[state],
            time_completed=datetime_from_unix(seconds),
            tracking=CompletionTracking(tracking),
            overridden_by=overrideby if _is_int(overrideby) else None,
            raw=status,
        )

    def _post_once(
        self,
        wsfunction: str,
        form: list[tuple[str, str]],
        params: Mapping[str, Any],
        attempt: int,
        attempts: int,
    ) -> Any:
        ids = {"site_url": self.site_url, "wsfunction": wsfunction}
        try:
            response = self._session.post(
                self.endpoint, data=form, timeout=self.timeout, allow_redirects=False
            )
        except OutboundBlocked as error:
            raise MoodleError(
                f"Moodle at {self.site_url} was not called for {wsfunction}: {error}",
                **ids,
            ) from error
        except OutboundTooLarge as error:
            raise MoodleResponseInvalid(
                f"Moodle at {self.site_url} sent a response to {wsfunction} larger "
                f"than {MOODLE_LIMITS.max_bytes} bytes. Check that the site URL "
                "points at Moodle, or ask for fewer records per call.",
                **ids,
            ) from error
        except requests.exceptions.SSLError as error:
            # A certificate problem does not clear within seconds, so it is not
            # retried here, but a later poll may succeed once the site fixes it.
            raise MoodleUnavailable(
                f"TLS connection to Moodle at {self.site_url} failed for {wsfunction}: "
                f"{error}. Fix the site's certificate or correct the site URL.",
                **ids,
            ) from error
        except requests.exceptions.Timeout as error:
            raise _RetryableFailure(
                MoodleUnavailable(
                    f"Moodle at {self.site_url} timed out on {wsfunction} "
                    f"(timeout {self.timeout} s, attempt {attempt} of {attempts}). "
                    f"Retry later, and check the site's health if this persists.",
                    **ids,
                )
            ) from error
        except requests.exceptions.ConnectionError as error:
            raise _RetryableFailure(
                MoodleUnavailable(
                    f"Could not connect to Moodle at {self.site_url} for {wsfunction} "
                    f"(attempt {attempt} of {attempts}): {error}. Retry later, and "
                    f"check the site URL and that the site is up if this persists.",
                    **ids,
                )
            ) from error

        try:
            return self._read_response(response, wsfunction, params, attempt, attempts)
        finally:
            response.close()

    def _read_response(
        self,
        response: requests.Response,
        wsfunction: str,
        params: Mapping[str, Any],
        attempt: int,
        attempts: int,
    ) -> Any:
        ids = {"site_url": self.site_url, "wsfunction": wsfunction}
        status = response.status_code

        if status >= 500 or status == 429:
            raise _RetryableFailure(
                MoodleUnavailable(
                    f"Moodle at {self.site_url} returned HTTP {status} for "
                    f"{wsfunction} (attempt {attempt} of {attempts}). Retry later.",
                    status_code=status,
                    retry_after=_retry_after_seconds(response),
                    **ids,
                )
            )

        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise MoodleResponseInvalid(
                f"Moodle at {self.site_url} redirected {wsfunction} with HTTP {status} "
                f"to {location!r}. Set the connection's site URL to the address "
                f"Moodle redirects to (for example https:// instead of http://).",
                status_code=status,
                **ids,
            )

        try:
            body = response.json()
        except ValueError:
            raise self._non_json_error(response, wsfunction) from None

        if isinstance(body, dict) and "exception" in body:
            raise self._error_from_exception(body, wsfunction, params)

        if status != 200:
            raise MoodleResponseInvalid(
                f"Moodle at {self.site_url} returned HTTP {status} for {wsfunction} "
                f"with JSON that is not a Moodle error: {self._excerpt(response)!r}. "
                f"Check the site URL.",
                status_code=status,
                **ids,
            )

        return body

    def _non_json_error(
        self, response: requests.Response, wsfunction: str
    ) -> MoodleError:
        ids = {"site_url": self.site_url, "wsfunction": wsfunction}
        status = response.status_code

        # webservice/rest/server.php ends with an empty HTTP 403 when web services
        # or the REST protocol are disabled on the site.
        if status == 403 and not response.content.strip():
            return MoodleAccessDenied(
                f"Moodle at {self.site_url} rejected {wsfunction} with an empty "
                f"HTTP 403, which means web services or the REST protocol are "
                f"disabled. Enable web services under Site administration > "
                f"Advanced features and the REST protocol under Site administration "
                f"> Server > Web services > Manage protocols.",
                **ids,
            )

        if status == 404:
            return MoodleResponseInvalid(
                f"Moodle at {self.site_url} has no {REST_PATH} (HTTP 404). Check "
                f"that the connection's site URL is the Moodle site's root address.",
                status_code=status,
                **ids,
            )

        content_type = response.headers.get("Content-Type", "none")
        return MoodleResponseInvalid(
            f"Moodle at {self.site_url} returned HTTP {status} for {wsfunction} with "
            f"a body that is not JSON (Content-Type {content_type}): "
            f"{self._excerpt(response)!r}. Check the site URL, and that a proxy or "
            f"login page is not answering in Moodle's place.",
            status_code=status,
            **ids,
        )

    def _error_from_exception(
        self, body: dict[str, Any], wsfunction: str, params: Mapping[str, Any]
    ) -> MoodleError:
        errorcode = body.get("errorcode")
        debuginfo = body.get("debuginfo")
        course_id = params.get("courseid")
        return error_for_errorcode(
            errorcode if isinstance(errorcode, str) else None,
            site_url=self.site_url,
            wsfunction=wsfunction,
            exception_class=self._redact(str(body.get("exception"))),
            moodle_message=self._redact(str(body.get("message", ""))),
            debuginfo=self._redact(str(debuginfo)) if debuginfo else None,
            course_id=course_id if _is_int(course_id) else None,
        )

    def _log_warnings(self, result: dict[str, Any], wsfunction: str) -> None:
        # Moodle returns per-item problems in `warnings` beside a successful result.
        warnings = result.get("warnings")
        if not isinstance(warnings, list):
            return
        for warning in warnings:
            if not isinstance(warning, dict):
                continue
            logger.warning(
                "Moodle returned a warning: site=%s wsfunction=%s warningcode=%s "
                "item=%s itemid=%s",
                self.site_url,
                wsfunction,
                warning.get("warningcode"),
                warning.get("item"),
                warning.get("itemid"),
            )

    def _call_for_object(self, wsfunction: str, **params: Any) -> dict[str, Any]:
        """Call `wsfunction`, require a JSON object and log the warnings it carries."""
        result = self._require_dict(
            self.call(wsfunction, **params), wsfunction, "the top level"
        )
        self._log_warnings(result, wsfunction)
        return result

    def _require_dict(self, value: Any, wsfunction: str, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self._shape_error(wsfunction, path, value, "a JSON object")
        return value

    def _require_list(self, value: Any, wsfunction: str, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self._shape_error(wsfunction, path, value, "a list")
        return value

    def _shape_error(
        self, wsfunction: str, path: str, received: Any, expected: str
    ) -> MoodleResponseInvalid:
        received_text = self._redact(repr(received))[:_BODY_EXCERPT_LENGTH]
        return MoodleResponseInvalid(
            f"Moodle at {self.site_url} returned {received_text} at {path} of the "
            f"{wsfunction} response, expected {expected}. The site's Moodle version "
            f"may return another shape, so report this with that version.",
            status_code=200,
            site_url=self.site_url,
            wsfunction=wsfunction,
        )

    def _excerpt(self, response: requests.Response) -> str:
        text = " ".join(response.text[: _BODY_EXCERPT_LENGTH * 4].split())
        return self._redact(text)[:_BODY_EXCERPT_LENGTH]

    def _redact(self, text: str) -> str:
        # Moodle's own messages may echo request values, so the token is cut out of
        # anything that goes into an error message or a log line.
        return text.replace(self._token, "[token removed]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _retry_after_seconds(response: requests.Response) -> float | None:
    # Only the delay-seconds form; the HTTP-date form is rare for Moodle and proxies.
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    return None
