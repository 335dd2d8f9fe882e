"""Errors raised by the Canvas connector.

    CanvasError
     ├── CanvasTokenInvalid       401 after one token refresh: the connection is broken
     ├── CanvasScopeMissing       401 "Insufficient scopes on access token": the
     │                            developer key lacks a scope the bridge needs
     ├── CanvasAccessDenied       401 "user not authorized to perform that action",
     │                            or a 403 that is not throttling: the token is valid
     │                            but its user lacks a permission in the account or
     │                            course
     ├── CanvasNotFound           404: the course or user does not exist, or (users/:id
     │                            on current Canvas) the token's user may not read it
     ├── CanvasNotModuleBased     400 from users/:id/progress: the course has no module
     │                            completion requirements (or the user is no student)
     ├── CanvasUnavailable        timeout, connection failure, 5xx, or throttling that
     │                            outlasted the retries: transient, retry later
     ├── CanvasResponseInvalid    HTML instead of JSON, a redirect, or a wrong shape
     └── CanvasEventInvalid       a Live Event that cannot be used (also a ValueError)
          └── CanvasEventSignatureInvalid   a JWT event whose signature, key or expiry
                                            fails verification

Throttling (403 "Rate Limit Exceeded", 429) is never an access error: the client
retries it, and only CanvasUnavailable reaches a caller when it lasts too long. No
error message contains an access token, a refresh token or a client secret.
"""

from __future__ import annotations

from typing import Any


class CanvasError(Exception):
    """Base class for every error of the Canvas connector.

    `base_url` and `path` name the request where there was one; `status_code` is the
    HTTP status of Canvas's response, or None when there was no response.
    """

    def __init__(
        self,
        message: str,
        *,
        base_url: str | None = None,
        path: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.base_url = base_url
        self.path = path
        self.status_code = status_code


class CanvasTokenInvalid(CanvasError):
    """Canvas rejected the token, and a refresh did not help (or was not possible).

    Stop calling Canvas for this connection until the provider admin saves new
    credentials.
    """


class CanvasScopeMissing(CanvasError):
    """The token is valid, but it lacks the scope for a call (its developer key's
    scopes, or the scopes it was issued with).

    `scope` is the Canvas scope string, for example
    `url:GET|/api/v1/courses/:course_id/bulk_user_progress`.
    """

    def __init__(self, message: str, *, scope: str | None = None, **ids: Any) -> None:
        super().__init__(message, **ids)
        self.scope = scope


class CanvasAccessDenied(CanvasError):
    """Canvas accepted the token, but its user lacks a permission for the call.

    Canvas reports this with 401 "user not authorized to perform that action"
    (without `WWW-Authenticate`), or with 403 where the site admin feature
    `api_auth_error_updates` is on. A token refresh cannot help.
    """


class CanvasNotFound(CanvasError):
    """Canvas returned 404 for the requested course, user or module."""


class CanvasNotModuleBased(CanvasError):
    """Canvas cannot report module progress for this course and user (HTTP 400).

    Canvas returns 400 from `users/:id/progress` when the course has no module
    completion requirements or the user is not a student in it. `canvas_message` is
    Canvas's own text.
    """

    def __init__(
        self, message: str, *, canvas_message: str | None = None, **ids: Any
    ) -> None:
        super().__init__(message, **ids)
        self.canvas_message = canvas_message


class CanvasUnavailable(CanvasError):
    """Canvas could not be reached, failed, or kept throttling: retry later.

    `retry_after` is the delay in seconds Canvas asked for, where it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **ids: Any):
        super().__init__(message, **ids)
        self.retry_after = retry_after


class CanvasResponseInvalid(CanvasError):
    """Canvas's response was not the JSON shape the endpoint documents."""


class CanvasEventInvalid(CanvasError, ValueError):
    """A Live Event that the bridge cannot use.

    `field` is the dotted path of the missing or wrong field (for example
    `body.progress.requirement_count`) and `received` the value found there.
    """

    def __init__(self, message: str, *, field: str, received: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.received = received


class CanvasEventSignatureInvalid(CanvasEventInvalid):
    """A JWT-signed Live Event failed verification: forged, expired or unknown key."""

    def __init__(self, message: str, *, kid: str | None = None) -> None:
        super().__init__(message, field="jwt", received=kid)
        self.kid = kid
