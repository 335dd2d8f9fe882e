"""Errors raised by the Moodle connector.

    MoodleError
     ├── MoodleTokenInvalid          invalidtoken: the connection is broken
     ├── MoodleAccessDenied          accessexception, nopermissions, requireloginerror,
     │                               or HTTP 403 when web services are disabled
     ├── MoodleNoCompletionCriteria  nocriteriaset: the course has no criteria
     ├── MoodleUnavailable           timeout, connection failure, HTTP 5xx or 429,
     │                               sitemaintenance: transient, retry later
     ├── MoodleResponseInvalid       not JSON, a redirect, or an unexpected shape
     └── MoodleEventInvalid          a webhook body that is not a valid Moodle event
                                     (also a ValueError)

Only MoodleUnavailable is transient. Every other error needs a person to change
something (a token, a service, a course setting, the connector) before a retry can
succeed. The client branches on Moodle's `errorcode`, never on its translated
`message`. No error message contains the web service token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class MoodleError(Exception):
    """Base class for every error of the Moodle connector.

    `site_url`, `wsfunction` and `errorcode` are None where they are not known, for
    example for a timeout (no errorcode) or a webhook body (no web service call).
    """

    def __init__(
        self,
        message: str,
        *,
        site_url: str | None = None,
        wsfunction: str | None = None,
        errorcode: str | None = None,
    ) -> None:
        super().__init__(message)
        self.site_url = site_url
        self.wsfunction = wsfunction
        self.errorcode = errorcode


class MoodleTokenInvalid(MoodleError):
    """Moodle rejected the token (errorcode invalidtoken), so no call can succeed.

    Moodle raises `invalidtoken` for a token that never existed, was deleted, or
    expired earlier (Moodle deletes an expired token on its first rejected use).
    Stop polling the connection until the provider admin saves a new token.
    """


class MoodleAccessDenied(MoodleError):
    """The token is valid, but Moodle does not let it run the requested function."""


class MoodleNoCompletionCriteria(MoodleError):
    """The course has no course completion criteria, so it can never be complete.

    `course_id` is the requested course where the call named one.
    """

    def __init__(
        self, message: str, *, course_id: int | None = None, **ids: Any
    ) -> None:
        super().__init__(message, **ids)
        self.course_id = course_id


class MoodleUnavailable(MoodleError):
    """Moodle could not be reached or could not handle the request, so retry later.

    `status_code` is the HTTP status where there was a response. `retry_after` is
    the delay in seconds from a `Retry-After` header, if Moodle or a proxy sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        **ids: Any,
    ) -> None:
        super().__init__(message, **ids)
        self.status_code = status_code
        self.retry_after = retry_after


class MoodleResponseInvalid(MoodleError):
    """Moodle's response was not the JSON shape that the requested function returns.

    `status_code` is the HTTP status of that response.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, **ids: Any
    ) -> None:
        super().__init__(message, **ids)
        self.status_code = status_code


class MoodleEventInvalid(MoodleError, ValueError):
    """A webhook body that is not a valid Moodle event.

    `field` is the dotted path of the missing or wrong field (for example
    `other.completionstate`) and `received` is the value found there, or None when
    the field is missing. When several fields are bad, `field` and `received` are
    the first one's and `problems` contains one error per field. Otherwise `problems`
    contains this error alone.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        received: Any = None,
        problems: Sequence[MoodleEventInvalid] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.received = received
        self.problems = tuple(problems) or (self,)


def error_for_errorcode(
    errorcode: str | None,
    *,
    site_url: str,
    wsfunction: str,
    exception_class: str,
    moodle_message: str,
    debuginfo: str | None = None,
    course_id: int | None = None,
) -> MoodleError:
    """Build the typed error for a Moodle web service exception body.

    The class depends on `errorcode` only, because Moodle translates `message` into
    the site's language. `debuginfo`, which Moodle sends only in debugging mode, and
    `moodle_message` are added to the text for people and must not contain the token.
    """
    ids: dict[str, Any] = {
        "site_url": site_url,
        "wsfunction": wsfunction,
        "errorcode": errorcode,
    }
    where = f"Moodle at {site_url}"
    detail = f" Moodle debug info: {debuginfo!r}." if debuginfo else ""

    if errorcode == "invalidtoken":
        return MoodleTokenInvalid(
            f"{where} rejected the web service token on {wsfunction} (errorcode "
            f"invalidtoken): the token does not exist, or it was deleted or expired. "
            f"Stop polling this connection, and ask the provider admin to issue a "
            f"new token under Site administration > Server > Web services > Manage "
            f"tokens and save it in the connection.",
            **ids,
        )

    if errorcode == "accessexception":
        # webservice_access_exception covers every access check of the web service
        # layer, and debuginfo (when present) names the one that failed.
        return MoodleAccessDenied(
            f"{where} denied access to {wsfunction} (errorcode accessexception). "
            f"Add {wsfunction} to the token's external service under Site "
            f"administration > Server > Web services > External services > "
            f"Functions. If it is listed already, check that the service is enabled, "
            f"the token has not expired, the bridge's IP address is allowed and the "
            f"token's user is not suspended.{detail}",
            **ids,
        )

    if errorcode == "nopermissions":
        return MoodleAccessDenied(
            f"{where} rejected {wsfunction} because the token's user lacks a "
            f"capability (errorcode nopermissions, Moodle message "
            f"{moodle_message!r}). Give that user a role with the capability in the "
            f"course or at site level.{detail}",
            **ids,
        )

    if errorcode == "requireloginerror":
        return MoodleAccessDenied(
            f"{where} rejected {wsfunction} because the token's user cannot access "
            f"the requested course (errorcode requireloginerror). Give that user a "
            f"role that can view the course.{detail}",
            **ids,
        )

    if errorcode == "nocriteriaset":
        course = f"course {course_id}" if course_id is not None else "the course"
        return MoodleNoCompletionCriteria(
            f"{where} has no course completion criteria for {course} (errorcode "
            f"nocriteriaset), so no learner can complete it. Ask the course's "
            f"instructor to set them in the course's Course completion settings.",
            course_id=course_id,
            **ids,
        )

    if errorcode == "sitemaintenance":
        # The client does not retry this at once, because maintenance usually lasts
        # longer than its backoff.
        return MoodleUnavailable(
            f"{where} is in maintenance mode (errorcode sitemaintenance) and "
            f"rejected {wsfunction}. Retry after the maintenance ends.",
            **ids,
        )

    return MoodleError(
        f"{where} returned {exception_class} with errorcode {errorcode!r} for "
        f"{wsfunction} (Moodle message {moodle_message!r}). Check that the ids in "
        f"the request exist on that site and that its Moodle version provides "
        f"{wsfunction}.{detail}",
        **ids,
    )
