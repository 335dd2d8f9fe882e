"""Names and Role Provisioning Services 2.0: list a course's members.

The tool gets an access token from `service_token` (client credentials with a signed
JWT assertion, cached until shortly before it expires) and follows every page of the
membership container through `Link` headers, whose `rel="next"` is matched
case-insensitively because platforms differ in case.
"""

from __future__ import annotations

import re

import requests

from badge_engine.vault import Vault
from lti_tool.lti.outbound import check_outbound_url
from lti_tool.lti.service_token import ServiceTokenError, ServiceTokens
from lti_tool.models import Registration

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_PAGES = 1000
_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel\s*=\s*"?next"?', re.IGNORECASE)


class NrpsError(Exception):
    """A token or membership request failed; the message names the URL and status."""


class NrpsClient:
    """Reads memberships for one registration; tokens are cached per scope set."""

    def __init__(
        self, registration: Registration, vault: Vault, *, loopback_dev: bool,
        timeout: float = 10.0,
    ) -> None:
        self.registration = registration
        self.vault = vault
        self.loopback_dev = loopback_dev
        self.timeout = timeout
        self.http = requests.Session()
        self.tokens = ServiceTokens(
            registration,
            vault,
            self.http,
            scopes=(NRPS_SCOPE,),
            service_name="Names and Role Provisioning",
            check_url=lambda url: check_outbound_url(
                url, loopback_dev=loopback_dev, name="token URL"
            ),
            timeout=timeout,
        )

    def access_token(self) -> str:
        """Return a cached access token, requesting a new one 30 s before expiry."""
        try:
            return self.tokens.access_token()
        except ServiceTokenError as error:
            raise NrpsError(str(error)) from None

    def members(self, memberships_url: str) -> list[dict]:
        """Return every member of the context, following all pages."""
        members: list[dict] = []
        url: str | None = memberships_url
        for _ in range(MAX_PAGES):
            if url is None:
                return members
            check_outbound_url(url, loopback_dev=self.loopback_dev, name="NRPS URL")
            response = self.http.get(
                url,
                headers={
                    "Authorization": f"Bearer {self.access_token()}",
                    "Accept": MEMBERSHIP_MEDIA_TYPE,
                },
                timeout=(3.05, self.timeout),
            )
            if response.status_code != 200:
                raise NrpsError(
                    f"membership request to {url} failed with HTTP "
                    f"{response.status_code}: {response.text[:200]}"
                )
            page = response.json().get("members") or []
            members.extend(member for member in page if isinstance(member, dict))
            url = next_page(response.headers.get("Link", ""))
        raise NrpsError(
            f"membership of {memberships_url} has more than {MAX_PAGES} pages"
        )


def next_page(link_header: str) -> str | None:
    """Return the `rel="next"` URL of a Link header, whatever the case of `rel`."""
    match = _NEXT.search(link_header or "")
    return match.group(1) if match else None
