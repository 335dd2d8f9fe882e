"""A requests transport adapter that checks and pins addresses when it connects.

urllib3 resolves a host name itself when it opens a connection. So a check made
before the request could approve one DNS answer while the connection uses another
(DNS rebinding). Here the connection resolves the name once, checks every address
against the policy and connects only to those checked addresses. TLS still verifies
the certificate against the host name, because only the socket is replaced.

An adapter built with `timed_resolution=True` also bounds name resolution: the
lookup gets at most the connect timeout, and the connect gets what the lookup left
of it (see `resolve_host_within`).

NOTE: this overrides urllib3's `HTTPConnection._new_conn`, which urllib3 2.x
documents only in its source; the tests in tests/badge_engine/test_outbound.py fail
if a urllib3 upgrade stops calling it.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from badge_engine.outbound.errors import OutboundBlocked, OutboundTimeout
from badge_engine.outbound import policy as outbound_policy
from badge_engine.outbound.policy import IPAddress, OutboundPolicy, redact_url

# Lookups that may run at once in `resolve_host_within`. getaddrinfo cannot be
# cancelled, so a lookup that hangs keeps its thread until the system resolver gives
# up. This cap keeps a hanging resolver from growing the thread count.
MAX_TIMED_LOOKUPS = 8
_lookup_slots = threading.BoundedSemaphore(MAX_TIMED_LOOKUPS)


class _PinnedConnectionMixin:
    """Resolve once, check every address, connect only to the checked ones."""

    outbound_policy: OutboundPolicy
    scheme: str
    timed_resolution: bool = False
    # The socket of the last connect, TLS-wrapped for https. http.client sets `sock`
    # to None when a response ends the connection (Connection: close) while that
    # response still reads its body through this socket, so a reader that needs to
    # change the socket's timeout during the body finds it here.
    response_socket: socket.socket | None = None

    def connect(self) -> None:
        super().connect()
        self.response_socket = self.sock

    def _new_conn(self) -> socket.socket:
        url = redact_url(f"{self.scheme}://{_netloc(self.host, self.port)}/")
        connect_timeout = self.timeout
        if self.timed_resolution and isinstance(connect_timeout, (int, float)):
            started = time.monotonic()
            addresses = resolve_host_within(
                self.host, self.port, url=url, timeout_seconds=connect_timeout
            )
            connect_timeout -= time.monotonic() - started
            if connect_timeout <= 0:
                raise _lookup_timed_out(self.host, url, self.timeout)
        else:
            addresses = outbound_policy.resolve_host(self.host, self.port, url=url)
        self.outbound_policy.check_addresses(
            addresses, url=url, plain_http=self.scheme == "http"
        )

        last_error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (str(address), self.port),
                    connect_timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except socket.timeout as error:
                raise ConnectTimeoutError(
                    self,
                    f"Connection to {self.host} timed out "
                    f"(connect timeout={self.timeout})",
                ) from error
            except OSError as error:
                last_error = error

        raise NewConnectionError(
            self, f"Failed to establish a new connection: {last_error}"
        )


def resolve_host_within(
    host: str, port: int, *, url: str, timeout_seconds: float
) -> list[IPAddress]:
    """Resolve `host` like `policy.resolve_host`, or raise OutboundTimeout.

    The lookup runs on a daemon thread so that the caller can stop waiting after
    `timeout_seconds`. At most MAX_TIMED_LOOKUPS lookups run at once, and a caller
    that finds them all busy waits for a free one within the same timeout. A lookup
    abandoned on timeout finishes in the background and frees its slot then.
    Daemon threads, unlike a ThreadPoolExecutor's workers, do not hold up the
    interpreter's exit while the system resolver still hangs.
    """
    started = time.monotonic()
    if not _lookup_slots.acquire(timeout=timeout_seconds):
        raise _lookup_timed_out(host, url, timeout_seconds)

    result: Future[list[IPAddress]] = Future()

    def look_up() -> None:
        try:
            result.set_result(outbound_policy.resolve_host(host, port, url=url))
        except BaseException as error:
            result.set_exception(error)
        finally:
            _lookup_slots.release()

    try:
        threading.Thread(target=look_up, name=f"resolve {host}", daemon=True).start()
    except BaseException:
        _lookup_slots.release()
        raise

    try:
        return result.result(timeout=timeout_seconds - (time.monotonic() - started))
    except FutureTimeout:
        raise _lookup_timed_out(host, url, timeout_seconds) from None


def _lookup_timed_out(host: str, url: str, timeout_seconds: float) -> OutboundTimeout:
    return OutboundTimeout(
        f"The host {host!r} could not be resolved within {timeout_seconds:.3g} s",
        url=url,
        code="resolve_timeout",
        hint=f"Check that the DNS resolver of the bridge's machine responds "
        f"promptly, for example with `getent hosts {host}` there",
    )


def _netloc(host: str, port: int | None) -> str:
    redacted_url = f"[{host}]" if ":" in host else host
    return f"{redacted_url}:{port}" if port else redacted_url


class _PinnedPoolManager(PoolManager):
    def __init__(
        self,
        *args,
        outbound_policy: OutboundPolicy,
        timed_resolution: bool,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        attributes = {
            "outbound_policy": outbound_policy,
            "timed_resolution": timed_resolution,
        }
        self._connection_classes = {
            "http": type(
                "PinnedHTTPConnection",
                (_PinnedConnectionMixin, HTTPConnection),
                {**attributes, "scheme": "http"},
            ),
            "https": type(
                "PinnedHTTPSConnection",
                (_PinnedConnectionMixin, HTTPSConnection),
                {**attributes, "scheme": "https"},
            ),
        }

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = self._connection_classes[scheme]

        return pool


class PinnedAddressAdapter(HTTPAdapter):
    """An HTTPAdapter whose every new connection passes the outbound policy.

    Proxies are blocked because the address check would judge the proxy, not the host
    the request is meant for. With `timed_resolution`, name resolution counts against
    the connect timeout.
    """

    def __init__(
        self, policy: OutboundPolicy, *, timed_resolution: bool = False
    ) -> None:
        self.outbound_policy = policy
        self.timed_resolution = timed_resolution
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            outbound_policy=self.outbound_policy,
            timed_resolution=self.timed_resolution,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise OutboundBlocked(
            "Requests through a proxy are not supported by the guarded client",
            url=redact_url(proxy),
            code="proxy_blocked",
            hint="Remove the proxy setting for this request",
        )
