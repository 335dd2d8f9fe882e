"""The guarded HTTP client: one requests Session subclass for every outbound call.

`GuardedSession.request` keeps the requests interface, so a client written for
`requests.Session` works unchanged. Every call also:

- blocks URLs the policy forbids, at every redirect hop, and checks the addresses
  each new connection uses (see `transport`);
- follows at most `limits.max_redirects` redirects itself, dropping the
  Authorization header when a redirect leaves the original host;
- uses the smaller of the caller's timeouts and the limits, and stops the exchange
  when the overall deadline passes, also while the body arrives;
- reads the body while counting bytes and stops at `limits.max_bytes`, so the
  returned response is fully read and `response.content` never touches the network.

Failures raise the errors in `badge_engine.outbound.errors`.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import requests
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.util import Timeout

from badge_engine.outbound.errors import (
    OutboundBlocked,
    OutboundConnectionFailed,
    OutboundError,
    OutboundTimeout,
    OutboundTlsFailed,
    OutboundTooLarge,
)
from badge_engine.outbound.policy import OutboundLimits, OutboundPolicy, redact_url
from badge_engine.outbound.transport import PinnedAddressAdapter

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
# urllib3 rejects a timeout of zero, so a deadline that passes between the check
# and the send becomes this short timeout.
MIN_TIMEOUT_SECONDS = 0.001
# Headers that describe a request body. A redirect that turns the request into a
# GET (301 or 302 after POST, and every 303) sends no body, so they are dropped.
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")


class GuardedSession(requests.Session):
    """A requests Session that sends only what `policy` allows, within `limits`."""

    def __init__(
        self, policy: OutboundPolicy, limits: OutboundLimits | None = None
    ) -> None:
        super().__init__()
        self.policy = policy
        self.limits = limits or OutboundLimits()
        # Proxy and certificate settings from the environment would change where
        # a request goes after the policy approved it.
        self.trust_env = False
        self.max_redirects = self.limits.max_redirects
        adapter = PinnedAddressAdapter(policy)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request and return its fully read response.

        `allow_redirects=False` returns a 3xx response to the caller instead of
        following it. `stream` is ignored: the body is always read, within the
        size limit, before this returns.
        """
        follow_redirects = kwargs.pop("allow_redirects", True)
        caller_timeout = kwargs.pop("timeout", None)
        kwargs.pop("stream", None)
        deadline = time.monotonic() + self.limits.deadline_seconds

        request = requests.Request(
            method=method.upper(),
            url=url,
            headers=kwargs.pop("headers", None),
            files=kwargs.pop("files", None),
            data=kwargs.pop("data", None) or {},
            json=kwargs.pop("json", None),
            params=kwargs.pop("params", None) or {},
            auth=kwargs.pop("auth", None),
            cookies=kwargs.pop("cookies", None),
            hooks=kwargs.pop("hooks", None),
        )
        if kwargs:
            raise TypeError(
                f"GuardedSession.request() does not accept {sorted(kwargs)}"
            )

        try:
            self.policy.check_url(url)
            return self._exchange(
                self.prepare_request(request),
                follow_redirects,
                caller_timeout,
                deadline,
            )
        except OutboundError as error:
            logger.warning(
                "Outbound request failed: %s %s: %s (%s)",
                method.upper(),
                error.url,
                error.code,
                type(error).__name__,
            )
            raise

    def _exchange(
        self,
        prepared: requests.PreparedRequest,
        follow_redirects: bool,
        caller_timeout: Any,
        deadline: float,
    ) -> requests.Response:
        history: list[requests.Response] = []
        while True:
            self.policy.check_url(prepared.url)
            response = self._send_once(prepared, caller_timeout, deadline)
            if not (response.is_redirect and follow_redirects):
                break

            response.close()
            history.append(response)
            prepared = self._next_hop(prepared, response, len(history))

        response.history = history
        self._read_body(response, caller_timeout, deadline)

        return response

    def _send_once(
        self,
        prepared: requests.PreparedRequest,
        caller_timeout: Any,
        deadline: float,
    ) -> requests.Response:
        redacted_url = redact_url(prepared.url)
        timeout = self._timeout(caller_timeout, deadline, redacted_url)
        adapter = self.get_adapter(prepared.url)
        started = time.monotonic()
        # With `total`, urllib3 waits for the response headers only for what the
        # name lookup, connect and send left of the deadline.
        exchange_timeout = Timeout(
            connect=timeout[0],
            read=timeout[1],
            total=max(deadline - started, MIN_TIMEOUT_SECONDS),
        )
        try:
            # The adapter is called directly because Session.send reads the whole
            # body of a redirect response, with no size limit.
            response = adapter.send(
                prepared,
                stream=True,
                timeout=exchange_timeout,
                verify=self.verify,
                cert=self.cert,
                proxies={},
            )
        except OutboundError as error:
            raise error.with_url(redacted_url) from None
        except requests.Timeout as error:
            raise OutboundTimeout(
                f"The request timed out after {timeout[0]} s to connect or "
                f"{timeout[1]} s to read ({type(error).__name__})",
                url=redacted_url,
                code="timeout",
                hint="Check that the service is up and answers promptly",
            ) from None
        except requests.exceptions.SSLError as error:
            raise OutboundTlsFailed(
                f"The TLS handshake failed ({_reason(error)})",
                url=redacted_url,
                code="tls_failed",
                hint="Check that the service presents a valid certificate for "
                "this host name",
            ) from None
        except requests.ConnectionError as error:
            # An address blocked or unresolvable at connect time arrives wrapped in
            # urllib3's errors; the guard's own error is the one to report.
            inner = _outbound_cause(error)
            if inner is not None:
                raise inner.with_url(redacted_url) from None
            raise OutboundConnectionFailed(
                f"The connection failed ({_reason(error)})",
                url=redacted_url,
                code="connection_failed",
                hint="Check that the service is up and reachable from the bridge",
            ) from None

        response.elapsed = timedelta(seconds=time.monotonic() - started)
        extract_cookies_to_jar(self.cookies, prepared, response.raw)

        return dispatch_hook("response", prepared.hooks, response)

    def _next_hop(
        self,
        prepared: requests.PreparedRequest,
        response: requests.Response,
        redirects: int,
    ) -> requests.PreparedRequest:
        redacted_url = redact_url(prepared.url)
        if self.limits.max_redirects == 0:
            raise OutboundBlocked(
                f"The server redirected (HTTP {response.status_code}), and this "
                "request must be answered without redirects",
                url=redacted_url,
                code="redirect_not_allowed",
                hint="Configure the service's final address, not one that redirects",
            )
        if redirects > self.limits.max_redirects:
            raise OutboundBlocked(
                f"More than {self.limits.max_redirects} redirects",
                url=redacted_url,
                code="too_many_redirects",
                hint="Configure the service's final address, and check for a "
                "redirect loop",
            )

        target = urljoin(prepared.url, self.get_redirect_target(response))
        following = prepared.copy()
        following.prepare_url(target, None)
        self.rebuild_method(following, response)
        if response.status_code not in (307, 308):
            following.body = None
            for header in _BODY_HEADERS:
                following.headers.pop(header, None)
        # requests' own rule: drop Authorization when the host changes.
        self.rebuild_auth(following, response)
        following.headers.pop("Cookie", None)
        following.prepare_cookies(self.cookies)

        return following

    def _timeout(
        self, caller_timeout: Any, deadline: float, url: str
    ) -> tuple[float, float]:
        connect, read = self._configured_timeouts(caller_timeout)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_passed(url)

        return (min(connect, remaining), min(read, remaining))

    def _configured_timeouts(self, caller_timeout: Any) -> tuple[float, float]:
        connect = self.limits.connect_timeout_seconds
        read = self.limits.read_timeout_seconds
        if isinstance(caller_timeout, tuple):
            connect = min(connect, caller_timeout[0] or connect)
            read = min(read, caller_timeout[1] or read)
        elif caller_timeout:
            connect = min(connect, caller_timeout)
            read = min(read, caller_timeout)

        return (connect, read)

    def _read_body(
        self, response: requests.Response, caller_timeout: Any, deadline: float
    ) -> None:
        redacted_url = redact_url(response.url)
        max_bytes = self.limits.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            response.close()
            raise self._too_large(redacted_url, f"announces {declared} bytes")

        read_timeout = self._configured_timeouts(caller_timeout)[1]
        body = bytearray()
        try:
            while True:
                # The size counts decoded bytes, so a compressed body cannot
                # expand past the limit.
                chunk = self._read_chunk(response, read_timeout, deadline, redacted_url)
                if not chunk:
                    break
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise self._too_large(redacted_url, "continued past the limit")
        except ReadTimeoutError:
            response.close()
            raise OutboundTimeout(
                "The response body stopped arriving",
                url=redacted_url,
                code="timeout",
                hint="Check that the service is up and answers promptly",
            ) from None
        except (ProtocolError, DecodeError) as error:
            response.close()
            raise OutboundConnectionFailed(
                f"Reading the response failed ({type(error).__name__})",
                url=redacted_url,
                code="read_failed",
                hint="Check that the service is up and sends complete responses",
            ) from None
        except OutboundError:
            response.close()
            raise

        response._content = bytes(body)
        response._content_consumed = True
        response.raw.release_conn()

    def _read_chunk(
        self,
        response: requests.Response,
        read_timeout: float,
        deadline: float,
        url: str,
    ) -> bytes:
        """Read the next part of the body, waiting at most until the deadline.

        urllib3 sets the socket's timeout once, before it waits for the headers, so
        without this a body that stalls could hold the exchange for a whole read
        timeout past the deadline. Each chunk's read gets the read timeout or the
        time left, whichever is shorter, and a read that times out when the
        time left was the shorter raises the deadline error.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_passed(url)

        wait = min(read_timeout, remaining)
        body_socket = getattr(response.raw.connection, "response_socket", None)
        if body_socket is not None:
            body_socket.settimeout(max(wait, MIN_TIMEOUT_SECONDS))
        try:
            # read1 mostly returns what one socket read delivers, so a body that
            # arrives byte by byte comes back here between bytes.
            # NOTE: some read1 calls make several socket reads, each with this
            # timeout. urllib3 reads on while compressed bytes decode to nothing,
            # and http.client reads all trailer lines of a chunked body in one call,
            # so a server that trickles those bytes can hold a read past the deadline.
            return response.raw.read1(CHUNK_BYTES, decode_content=True)
        except ReadTimeoutError:
            if remaining <= read_timeout:
                raise self._deadline_passed(url) from None
            raise

    def _too_large(self, url: str, detail: str) -> OutboundTooLarge:
        return OutboundTooLarge(
            f"The response is larger than the limit of {self.limits.max_bytes} "
            f"bytes (it {detail})",
            url=url,
            code="too_large",
            hint="Check that the address points at the expected API",
        )

    def _deadline_passed(self, url: str) -> OutboundTimeout:
        return OutboundTimeout(
            f"The exchange took longer than its deadline of "
            f"{self.limits.deadline_seconds:.3g} s",
            url=url,
            code="deadline",
            hint="Check that the service is up and answers promptly",
        )


def guarded_session(
    session: GuardedSession | None,
    policy: OutboundPolicy | None,
    limits: OutboundLimits,
) -> GuardedSession:
    """Return `session`, or a new GuardedSession when it is None.

    Clients accept a session so that tests and callers can share connections, and
    this check keeps a plain requests.Session from bypassing the guard. A missing
    policy means the strictest one: public https addresses only.
    """
    if session is None:
        return GuardedSession(policy or OutboundPolicy(), limits)
    if not isinstance(session, GuardedSession):
        raise TypeError(
            "session must be a badge_engine.outbound.GuardedSession, so every "
            f"request passes the outbound guard; got {type(session).__name__}"
        )

    return session


def _outbound_cause(error: BaseException) -> OutboundError | None:
    pending: list[object] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OutboundError):
            return current
        pending.extend(current.args)
        pending.extend(
            (current.__cause__, current.__context__, getattr(current, "reason", None))
        )

    return None


def _reason(error: Exception) -> str:
    # The text of a requests ConnectionError repeats the request path and query,
    # which can carry secrets, so only the innermost cause's type is redacted_url.
    cause: BaseException = error
    while cause.__context__ is not None or getattr(cause, "reason", None) is not None:
        following = getattr(cause, "reason", None) or cause.__context__
        if not isinstance(following, BaseException) or following is cause:
            break
        cause = following

    return type(cause).__name__
