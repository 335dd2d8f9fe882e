"""The one guarded HTTP client the verifier uses for outside documents.

A verifier fetches only the target URL and what a credential's issuer names: its
did:web document, its OB 2.0 hosted documents and its status list. Every fetch has a
connect and read timeout, a response size limit and a redirect limit, and is rejected
when the host resolves to a private, loopback, link-local, multicast, reserved or
unspecified address. `allow_loopback` (for loopback development mode only) lets
loopback addresses and plain http to them through. JSON-LD contexts are never
fetched: they come from the local copies in `badge_engine.jsonld`.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from badge_engine.errors import BadgeEngineError

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 3
_CHUNK_BYTES = 64 * 1024


class FetchError(BadgeEngineError):
    """A guarded fetch was rejected or failed; `url` is the address at fault."""

    def __init__(self, message: str, *, url: str, code: str = "fetch_failed") -> None:
        self.url = url
        self.code = code
        super().__init__(f"{message} (url={url!r})")


@dataclass(frozen=True)
class FetchedDocument:
    """The body of a successful fetch, with the final URL after redirects."""

    url: str
    status_code: int
    content_type: str
    body: bytes


@dataclass
class GuardedFetcher:
    """Fetch outside documents with timeouts, a size limit and an address check.

    NOTE: the address check resolves the host before requests connects, so a DNS
    server that answers differently the second time could still steer the request.
    Pinning the checked address needs a custom transport adapter.
    """

    allow_loopback: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def get(self, url: str, accept: str = "application/json") -> FetchedDocument:
        """GET `url`, following at most `max_redirects` redirects.

        Raises FetchError naming the URL for a rejected address or scheme, a timeout,
        a connection failure, an HTTP status other than 2xx, a body over `max_bytes`,
        or too many redirects.
        """
        current = url
        with requests.Session() as session:
            session.trust_env = False
            for _ in range(self.max_redirects + 1):
                self.check_url(current)
                response = self._send(session, current, accept)
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    response.close()
                    current = urljoin(current, location)
                    continue

                return self._read(response, current)

        raise FetchError(
            f"More than {self.max_redirects} redirects; the document cannot be "
            "fetched.",
            url=url,
            code="too_many_redirects",
        )

    def check_url(self, url: str) -> None:
        """Raise FetchError unless `url` is http(s) to a host this fetcher may reach."""
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("https", "http") or not host:
            raise FetchError(
                "Expected an https:// URL with a host.", url=url, code="invalid_url"
            )

        addresses = self._resolve(host, parts.port, url)
        loopback = all(address.is_loopback for address in addresses)
        if parts.scheme == "http" and not (self.allow_loopback and loopback):
            raise FetchError(
                "Plain http is allowed only to loopback in development mode; use "
                "https.",
                url=url,
                code="insecure_url",
            )
        for address in addresses:
            if address.is_loopback and self.allow_loopback:
                continue
            if not address.is_global or address.is_multicast:
                raise FetchError(
                    f"The host resolves to the non-public address {address}, which "
                    "the verifier never contacts.",
                    url=url,
                    code="blocked_address",
                )

    def _resolve(
        self, host: str, port: int | None, url: str
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as error:
            raise FetchError(
                f"The host {host!r} cannot be resolved: {error}.",
                url=url,
                code="unresolvable_host",
            ) from error

        return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]

    def _send(
        self, session: requests.Session, url: str, accept: str
    ) -> requests.Response:
        try:
            return session.get(
                url,
                headers={"Accept": accept},
                timeout=(self.timeout_seconds, self.timeout_seconds),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as error:
            raise FetchError(
                f"Timed out after {self.timeout_seconds} seconds.",
                url=url,
                code="timeout",
            ) from error
        except requests.RequestException as error:
            raise FetchError(
                f"The request failed: {type(error).__name__}.", url=url
            ) from error

    def _read(self, response: requests.Response, url: str) -> FetchedDocument:
        with response:
            if not 200 <= response.status_code < 300:
                raise FetchError(
                    f"The server returned HTTP {response.status_code}.",
                    url=url,
                    code=f"http_{response.status_code}",
                )

            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large(url)

            body = bytearray()
            try:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise self._too_large(url)
            except requests.RequestException as error:
                raise FetchError(
                    f"Reading the response failed: {type(error).__name__}.", url=url
                ) from error

            return FetchedDocument(
                url=url,
                status_code=response.status_code,
                content_type=response.headers.get("Content-Type", ""),
                body=bytes(body),
            )

    def _too_large(self, url: str) -> FetchError:
        return FetchError(
            f"The response is larger than {self.max_bytes} bytes.",
            url=url,
            code="too_large",
        )
