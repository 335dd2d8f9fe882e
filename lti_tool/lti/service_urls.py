"""The URL check shared by the LTI Advantage service clients (NRPS and AGS).

The platform supplies every URL these clients call: the token URL comes from the
registration, the first service URL from a launch claim, and each further page from
the `Link` header of the page before. Each request carries the platform's bearer
token or the tool's signed client assertion, so every URL passes the same check
before it is requested:

- the outbound policy's URL rules (`OutboundPolicy.check_url`): absolute http(s), no
  credentials in the URL, https unless loopback development mode is on;
- a host written as an IP address must be one the policy allows, so a private or
  link-local address is rejected before any connection is opened. A host name is
  checked on the addresses it resolves to when the guarded session connects;
- a next-page URL must have the scheme, host and port of the first page, because the
  token sent with it would otherwise reach another host.

A rejected URL raises OutboundBlocked, which each client maps to its own error.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urljoin, urlsplit

from badge_engine.outbound import OutboundBlocked, OutboundPolicy, redact_url
from badge_engine.outbound.policy import ADDRESS_HINT

_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel\s*=\s*"?next"?', re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_service_url(policy: OutboundPolicy, url: str) -> None:
    """Raise OutboundBlocked for a service or token URL the bridge must not call."""
    policy.check_url(url)
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        raise OutboundBlocked(
            "The URL's port is not a number from 0 to 65535",
            url=redact_url(url),
            code="invalid_url",
            hint="Check the service URL the platform sent",
        ) from None

    host = (parts.hostname or "").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return

    if not policy.address_allowed(address):
        raise OutboundBlocked(
            f"The URL names the non-public address {address} (private, loopback, "
            "link-local or reserved), which the bridge does not call",
            url=redact_url(url),
            code="blocked_address",
            hint=ADDRESS_HINT,
        )


def next_page(link_header: str) -> str | None:
    """Return the `rel="next"` URL of a Link header, whatever the case of `rel`."""
    match = _NEXT.search(link_header or "")
    return match.group(1) if match else None


def next_page_url(
    policy: OutboundPolicy, first_url: str, page_url: str, link_header: str
) -> str | None:
    """Return the checked next-page URL of a paged response, or None on the last page.

    A relative link is resolved against `page_url`, as RFC 8288 specifies. Raises
    OutboundBlocked when the link fails `check_service_url` or leaves the host of
    `first_url`.
    """
    link = next_page(link_header)
    if link is None:
        return None

    url = urljoin(page_url, link)
    check_service_url(policy, url)
    if _origin(url) != _origin(first_url):
        raise OutboundBlocked(
            f"The next page link leaves the host of {redact_url(first_url)}, and "
            "the platform's access token is not sent to another host",
            url=redact_url(url),
            code="next_page_other_host",
            hint="Check the platform's Link headers; every page of a service must "
            "come from the same scheme, host and port",
        )
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    # Callers pass URLs that check_service_url accepted, so the port parses.
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or _DEFAULT_PORTS.get(scheme)
