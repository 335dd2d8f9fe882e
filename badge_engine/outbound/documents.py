"""The verifier's document fetch: a GET through the guarded client.

A verifier fetches only the target URL and what a credential's issuer names: its
did:web document, its OB 2.0 hosted documents and its status list. JSON-LD contexts
are never fetched; they come from the local copies in `badge_engine.jsonld`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from badge_engine.outbound.errors import OutboundStatusError
from badge_engine.outbound.policy import OutboundLimits, OutboundPolicy, redact_url
from badge_engine.outbound.session import GuardedSession

DOCUMENT_LIMITS = OutboundLimits(
    connect_timeout_seconds=5.0,
    read_timeout_seconds=5.0,
    deadline_seconds=20.0,
    max_bytes=2 * 1024 * 1024,
    max_redirects=3,
)


@dataclass(frozen=True)
class FetchedDocument:
    """The body of a successful fetch, with the final URL after redirects."""

    url: str
    status_code: int
    content_type: str
    body: bytes


@dataclass
class DocumentFetcher:
    """Fetch outside documents for the verifier under `policy` and `limits`."""

    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    limits: OutboundLimits = DOCUMENT_LIMITS

    @property
    def allow_loopback(self) -> bool:
        return self.policy.allow_loopback

    def get(self, url: str, accept: str = "application/json") -> FetchedDocument:
        """GET `url` and return its body.

        Raises an OutboundError naming the URL for a blocked address or scheme, a
        timeout, a connection failure, a body over the limit or too many redirects.
        A status other than 2xx raises OutboundStatusError.
        """
        with GuardedSession(self.policy, self.limits) as session:
            response = session.get(url, headers={"Accept": accept})

        if not 200 <= response.status_code < 300:
            raise OutboundStatusError(
                f"The server returned HTTP {response.status_code}",
                url=redact_url(response.url),
                status=response.status_code,
            )

        return FetchedDocument(
            url=response.url,
            status_code=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            body=response.content,
        )
