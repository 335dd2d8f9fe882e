"""Which URLs and addresses the bridge may call, and the limits on each request.

An address is allowed when it is public, which means `ipaddress` calls it global and
it is not multicast. An address in a network the operator listed is allowed too, and
so is a loopback address in loopback development mode. Everything else is blocked: private ranges,
link-local ones (which hold cloud metadata services such as 169.254.169.254),
loopback, unspecified, reserved and multicast addresses. Plain http is allowed only
to loopback addresses in loopback development mode.

An IPv6 address that carries an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64,
6to4, Teredo) is judged on that IPv4 address too, because the request ends up at
that IPv4 host through the kernel, a NAT64 gateway or a relay.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from badge_engine.outbound.errors import (
    OutboundBlocked,
    OutboundConnectionFailed,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REDACTED = "REDACTED"

# RFC 6052 well-known NAT64 prefix: the IPv4 address is the last 32 bits.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215 local-use NAT64 prefix. Each network picks its own prefix length inside
# it, so the position of the IPv4 address is unknown and the whole /48 is treated
# as private (IANA lists it as not globally reachable).
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# RFC 4291 IPv4-compatible addresses (::a.b.c.d, deprecated) and RFC 2765
# IPv4-translated addresses (::ffff:0:a.b.c.d): the IPv4 address is the last 32 bits.
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")

ADDRESS_HINT = (
    "Check that the address is the service's public https:// address; a service on "
    "a private network is reachable only when HPASS_OUTBOUND_ALLOWED_NETWORKS lists "
    "its network"
)


@dataclass(frozen=True)
class OutboundLimits:
    """Timeouts (seconds), body size (bytes) and redirects for one kind of request.

    `deadline_seconds` bounds the whole exchange: every redirect hop, the connects
    and reading the body. `max_redirects=0` is for protocols that forbid redirects,
    such as OAuth token endpoints: a 3xx response then raises OutboundBlocked.
    """

    connect_timeout_seconds: float = 3.05
    read_timeout_seconds: float = 10.0
    deadline_seconds: float = 30.0
    max_bytes: int = 1024 * 1024
    max_redirects: int = 3


# An OAuth token request carries the client secret or a refresh token, so a
# redirect is never followed: the secret would go wherever the Location points.
TOKEN_ENDPOINT_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=10.0,
    deadline_seconds=20.0,
    max_bytes=64 * 1024,
    max_redirects=0,
)
# A JSON Web Key Set of a few dozen RSA keys is tens of KB; 512 KiB leaves room.
KEY_SET_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=5.0,
    deadline_seconds=15.0,
    max_bytes=512 * 1024,
    max_redirects=0,
)


@dataclass(frozen=True)
class OutboundPolicy:
    """The addresses the bridge may call; build it with `from_settings`."""

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        """Build the policy from `loopback_dev` and `outbound_allowed_networks`."""
        networks = settings.outbound_allowed_networks or ()
        return cls(
            allow_loopback=bool(settings.loopback_dev),
            allowed_networks=tuple(
                ipaddress.ip_network(item, strict=False) for item in networks
            ),
        )

    def check_url(self, url: str) -> None:
        """Raise OutboundBlocked for a URL this policy never sends, before any DNS.

        The address check happens when the connection is opened, on the addresses
        that connection then uses.
        """
        parts = urlsplit(url)
        redacted_url = redact_url(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundBlocked(
                "Expected an absolute https:// URL with a host",
                url=redacted_url,
                code="invalid_url",
                hint="Enter the service's full https:// address",
            )
        if parts.username or parts.password:
            raise OutboundBlocked(
                "The URL contains a user name or password",
                url=redacted_url,
                code="invalid_url",
                hint="Remove the credentials from the address and configure them "
                "where the connection's secrets are kept",
            )
        if parts.scheme == "http" and not self.allow_loopback:
            raise OutboundBlocked(
                "Plain http is not allowed; the bridge calls other systems only over "
                "https",
                url=redacted_url,
                code="insecure_url",
                hint="Use the service's https:// address",
            )

    def check_addresses(
        self, addresses: Iterable[IPAddress], *, url: str, plain_http: bool
    ) -> None:
        """Raise OutboundBlocked unless every address may be called.

        Every address must pass, not only the first: otherwise a host that
        resolves to one public and one private address could still be steered to
        the private one.
        """
        for address in addresses:
            address = _unmapped(address)
            if not self.address_allowed(address):
                raise OutboundBlocked(
                    f"The host resolves to the non-public address {address} "
                    "(private, loopback, link-local or reserved), which the bridge "
                    "does not call",
                    url=url,
                    code="blocked_address",
                    hint=ADDRESS_HINT,
                    address=str(address),
                )
            if plain_http and not address.is_loopback:
                raise OutboundBlocked(
                    f"Plain http is allowed only to loopback addresses, and the host "
                    f"resolves to {address}",
                    url=url,
                    code="insecure_url",
                    hint="Use the service's https:// address",
                )

    def address_allowed(self, address: IPAddress) -> bool:
        """Return True when this policy lets the bridge connect to `address`.

        Unless a listed network contains it, an IPv6 address that embeds IPv4
        addresses is allowed only when the IPv6 address is public and each embedded
        IPv4 address is public or in a listed network. Loopback development mode
        does not allow an embedded loopback address, because that names the loopback
        of a NAT64 gateway or relay, not of this machine.
        """
        address = _unmapped(address)
        if address.is_loopback:
            return self.allow_loopback
        if self._in_allowed_network(address):
            return True
        if not _is_public(address):
            return False

        return all(
            self._in_allowed_network(embedded) or _is_public(embedded)
            for embedded in embedded_ipv4_addresses(address)
        )

    def _in_allowed_network(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)

    def check_url_now(self, url: str) -> None:
        """Check `url` and the addresses its host resolves to at this moment.

        For forms that store a URL: the admin learns about a blocked address when
        saving it. Requests are still checked again when they connect, because DNS
        answers change.
        """
        self.check_url(url)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve_host(parts.hostname, port, url=redact_url(url))
        self.check_addresses(
            addresses, url=redact_url(url), plain_http=parts.scheme == "http"
        )


def resolve_host(host: str, port: int, *, url: str) -> list[IPAddress]:
    """Resolve `host` to its addresses in the order the system resolver returns.

    Tests replace this function to point a DNS name at an address without touching
    any hosts file.
    """
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as error:
        raise OutboundConnectionFailed(
            f"The host {host!r} could not be resolved ({error})",
            url=url,
            code="unresolvable_host",
            hint="Check the host name for typing errors and that the bridge's DNS "
            "can resolve it",
        ) from None

    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)

    return addresses


def redact_url(url: str) -> str:
    """Return `url` without user name, password or query values, for logs and errors.

    API keys and tokens travel in query strings on some services, so every value
    is replaced; the parameter names stay to help a reader find the request.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "<unparseable URL>"

    query = urlencode(
        [
            (name, REDACTED)
            for name, _ in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe=REDACTED,
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def embedded_ipv4_addresses(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses that an IPv6 address carries, or [] for none.

    Covers IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo
    2001::/32 (both the server and the client address), IPv4-compatible ::/96 and
    IPv4-translated ::ffff:0:0:0/96.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in NAT64_WELL_KNOWN or address in IPV4_TRANSLATED:
        return [_last_32_bits(address)]
    if address in IPV4_COMPATIBLE and address not in (
        ipaddress.IPv6Address("::"),
        ipaddress.IPv6Address("::1"),
    ):
        return [_last_32_bits(address)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)

    return []


def _last_32_bits(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _is_public(address: IPAddress) -> bool:
    # Python's ipaddress calls the local-use NAT64 prefix global before 3.11.10;
    # from that release on it agrees with IANA that the prefix is not.
    if address.version == 6 and address in NAT64_LOCAL_USE:
        return False

    return address.is_global and not address.is_multicast


def _unmapped(address: IPAddress) -> IPAddress:
    # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) reaches the IPv4 host, so it is
    # judged as that IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped

    return address
