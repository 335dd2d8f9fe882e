"""A requests transport adapter that checks and pins addresses when it connects.

urllib3 resolves a host name itself when it opens a connection. So a check made
before the request could approve one DNS answer while the connection uses another
(DNS rebinding). Here the connection resolves the name once, checks every address
against the policy and connects only to those checked addresses. TLS still verifies
the certificate against the host name, because only the socket is replaced.

NOTE: this overrides urllib3's `HTTPConnection._new_conn`, which urllib3 2.x
documents only in its source; the tests in tests/badge_engine/test_outbound.py fail
if a urllib3 upgrade stops calling it.
"""

from __future__ import annotations

import socket

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from badge_engine.outbound.errors import OutboundBlocked
from badge_engine.outbound import policy as outbound_policy
from badge_engine.outbound.policy import OutboundPolicy, redact_url


class _PinnedConnectionMixin:
    """Resolve once, check every address, connect only to the checked ones."""

    outbound_policy: OutboundPolicy
    scheme: str

    def _new_conn(self) -> socket.socket:
        url = redact_url(f"{self.scheme}://{_netloc(self.host, self.port)}/")
        addresses = outbound_policy.resolve_host(self.host, self.port, url=url)
        self.outbound_policy.check_addresses(
            addresses, url=url, plain_http=self.scheme == "http"
        )

        last_error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (str(address), self.port),
                    self.timeout,
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


def _netloc(host: str, port: int | None) -> str:
    redacted_url = f"[{host}]" if ":" in host else host
    return f"{redacted_url}:{port}" if port else redacted_url


class _PinnedPoolManager(PoolManager):
    def __init__(self, *args, outbound_policy: OutboundPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        attributes = {"outbound_policy": outbound_policy}
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
    the request is meant for.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self.outbound_policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            outbound_policy=self.outbound_policy,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise OutboundBlocked(
            "Requests through a proxy are not supported by the guarded client",
            url=redact_url(proxy),
            code="proxy_blocked",
            hint="Remove the proxy setting for this request",
        )
