"""Checks for URLs the tool calls on a platform's behalf (JWKS, token, registration).

A registration URL comes from whoever pastes it, so without these checks the tool could
be made to call addresses inside its own network (server-side request forgery). Only
public HTTPS hosts are allowed; loopback development mode also allows loopback
addresses over plain HTTP and nothing else private.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from lti_tool.config import is_loopback_host


class UnsafeUrl(ValueError):
    """A URL the tool will not call; the message names the URL and the reason."""


def _addresses_of(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise UnsafeUrl(f"host {host!r} could not be resolved ({error})") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_outbound_url(url: str, *, loopback_dev: bool, name: str = "URL") -> str:
    """Return `url` when the tool may call it, else raise UnsafeUrl.

    Every address the host resolves to must be public (not private, loopback,
    link-local, multicast, reserved or unspecified), so a cloud metadata address such
    as 169.254.169.254 is rejected too.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrl(f"{name} {url!r} is not an absolute https URL")
    if parts.username or parts.password:
        raise UnsafeUrl(f"{name} {url!r} must not contain a user name or password")

    if loopback_dev and is_loopback_host(host):
        return url
    if parts.scheme != "https":
        raise UnsafeUrl(f"{name} {url!r} uses plain HTTP; platforms must use https")

    # NOTE: requests resolves the host again when it connects, so a DNS answer that
    # changes between this check and the call is not caught here.
    for address in _addresses_of(host):
        if not address.is_global or address.is_multicast:
            raise UnsafeUrl(
                f"{name} {url!r} points at the non-public address {address}; "
                "the tool only calls public platform addresses"
            )

    return url
