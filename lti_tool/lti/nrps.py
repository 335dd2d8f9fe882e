"""Names and Role Provisioning Services 2.0: list a course's members.

The tool gets an access token from `service_token` (client credentials with a signed
JWT assertion, cached until shortly before it expires) and follows every page of the
membership container through `Link` headers. Every URL, the next pages included,
passes the check in `service_urls` that AGS uses too.
"""

from __future__ import annotations

from badge_engine.outbound import (
    TOKEN_ENDPOINT_LIMITS,
    GuardedSession,
    OutboundError,
    OutboundLimits,
    OutboundPolicy,
)
from badge_engine.vault import Vault
from lti_tool.lti.service_token import ServiceTokenError, ServiceTokens
from lti_tool.lti.service_urls import check_service_url, next_page_url
from lti_tool.models import Registration

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_PAGES = 1000
# A page of a large course's membership can run to a few MB.
MEMBERSHIP_LIMITS = OutboundLimits(
    connect_timeout_seconds=3.05,
    read_timeout_seconds=30.0,
    deadline_seconds=120.0,
    max_bytes=16 * 1024 * 1024,
    max_redirects=3,
)


class NrpsError(Exception):
    """A token or membership request failed; the message names the URL and status."""


class NrpsClient:
    """Reads memberships for one registration; tokens are cached per scope set."""

    def __init__(
        self,
        registration: Registration,
        vault: Vault,
        *,
        policy: OutboundPolicy,
        timeout: float = 10.0,
    ) -> None:
        self.registration = registration
        self.vault = vault
        self.timeout = timeout
        self.policy = policy
        self.http = GuardedSession(policy, MEMBERSHIP_LIMITS)
        self.tokens = ServiceTokens(
            registration,
            vault,
            GuardedSession(policy, TOKEN_ENDPOINT_LIMITS),
            scopes=(NRPS_SCOPE,),
            service_name="Names and Role Provisioning",
            policy=policy,
            timeout=timeout,
        )

    def access_token(self) -> str:
        """Return a cached access token, requesting a new one 30 s before expiry."""
        try:
            return self.tokens.access_token()
        except ServiceTokenError as error:
            raise NrpsError(str(error)) from None
        except OutboundError as error:
            raise NrpsError(f"token request failed: {error}") from error

    def members(self, memberships_url: str) -> list[dict]:
        """Return every member of the context, following all pages."""
        members: list[dict] = []
        url: str | None = memberships_url
        seen: set[str] = set()
        try:
            check_service_url(self.policy, memberships_url)
        except OutboundError as error:
            raise NrpsError(f"membership request failed: {error}") from error

        for _ in range(MAX_PAGES):
            if url is None:
                return members
            if url in seen:
                raise NrpsError(
                    f"membership of {memberships_url} repeats the next page link {url}"
                )
            seen.add(url)
            headers = {
                "Authorization": f"Bearer {self.access_token()}",
                "Accept": MEMBERSHIP_MEDIA_TYPE,
            }
            try:
                response = self.http.get(
                    url, headers=headers, timeout=(3.05, self.timeout)
                )
            except OutboundError as error:
                raise NrpsError(f"membership request failed: {error}") from error
            if response.status_code != 200:
                raise NrpsError(
                    f"membership request to {url} failed with HTTP "
                    f"{response.status_code}: {response.text[:200]}"
                )
            page = response.json().get("members") or []
            members.extend(member for member in page if isinstance(member, dict))
            try:
                url = next_page_url(
                    self.policy, memberships_url, url, response.headers.get("Link", "")
                )
            except OutboundError as error:
                raise NrpsError(f"membership next page rejected: {error}") from error
        raise NrpsError(
            f"membership of {memberships_url} has more than {MAX_PAGES} pages"
        )
