"""Errors of the guarded HTTP client.

Every message names the URL (with its query values and any user name removed), states
what failed and what an administrator should check. The tree::

    BadgeEngineError
    └── OutboundError              url, code, hint
        ├── OutboundBlocked        the policy forbids the URL, an address it resolves
        │                          to, or a redirect; retrying will not help
        ├── OutboundTooLarge       the response body is over the size limit
        ├── OutboundStatusError    a document fetch got a status other than 2xx
        ├── OutboundTimeout        (also requests.Timeout) a connect or read timeout,
        │                          or the overall deadline passed
        └── OutboundConnectionFailed
            │                      (also requests.ConnectionError) name resolution,
            │                      TCP or the response stream failed
            └── OutboundTlsFailed  (also requests.exceptions.SSLError) the TLS
                                   handshake or certificate check failed

The last three also subclass the requests exceptions. So clients that already map
`requests.Timeout` and `requests.ConnectionError` to their own retryable errors keep
doing so.
"""

from __future__ import annotations

import requests

from badge_engine.errors import BadgeEngineError


class OutboundError(BadgeEngineError):
    """A request through the guarded client was blocked or failed."""

    def __init__(self, message: str, *, url: str, code: str, hint: str = "") -> None:
        self.message = message
        self.url = url
        self.code = code
        self.hint = hint
        text = f"{message} (url={url!r})"
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)

    def with_url(self, url: str) -> OutboundError:
        """Return the same error naming `url`, the request rather than the host."""
        return type(self)(self.message, url=url, code=self.code, hint=self.hint)


class OutboundBlocked(OutboundError):
    """The outbound policy forbids this request.

    `address` is the resolved address the policy forbids, for code blocked_address.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        code: str,
        hint: str = "",
        address: str | None = None,
    ) -> None:
        super().__init__(message, url=url, code=code, hint=hint)
        self.address = address

    def with_url(self, url: str) -> OutboundBlocked:
        return type(self)(
            self.message, url=url, code=self.code, hint=self.hint, address=self.address
        )


class OutboundTooLarge(OutboundError):
    """The response body is larger than the request's limit."""


class OutboundStatusError(OutboundError):
    """A document fetch got an HTTP status other than 2xx; `status` is that code."""

    def __init__(self, message: str, *, url: str, status: int) -> None:
        self.status = status
        super().__init__(message, url=url, code=f"http_{status}")


class OutboundTimeout(OutboundError, requests.Timeout):
    """A connect or read timeout passed, or the request's overall deadline."""


class OutboundConnectionFailed(OutboundError, requests.ConnectionError):
    """The host could not be resolved or reached, or the response stream broke."""


class OutboundTlsFailed(OutboundConnectionFailed, requests.exceptions.SSLError):
    """The TLS handshake failed, for example on an invalid certificate."""
