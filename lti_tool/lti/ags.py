"""Assignment and Grade Services 2.0: the endpoint claim a launch carries.

A platform that grants the tool AGS puts the claim
`https://purl.imsglobal.org/spec/lti-ags/claim/endpoint` in resource link launches:
`scope` lists the AGS scopes granted, `lineitems` is the course's line item container
and `lineitem` is the launching resource link's own line item. Either URL may be
missing when the platform grants no access to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from lti_tool.logs import get_logger

ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
)
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

log = get_logger(__name__)


@dataclass(frozen=True)
class AgsEndpoint:
    """The AGS endpoint claim of one launch, checked for shape."""

    scopes: tuple[str, ...]
    lineitems_url: str | None
    lineitem_url: str | None

    @property
    def scopes_text(self) -> str:
        """Return the scopes space-separated, as OAuth 2.0 writes a scope list."""
        return " ".join(self.scopes)


class InvalidEndpointClaim(ValueError):
    """The AGS endpoint claim is present but not of the shape AGS 2.0 defines."""


def endpoint_from_claims(claims: dict) -> AgsEndpoint | None:
    """Return the launch's AGS endpoint, or None when the launch carries no claim.

    Raises InvalidEndpointClaim naming the member that is wrong.
    """
    claim = claims.get(ENDPOINT_CLAIM)
    if claim is None:
        return None

    if not isinstance(claim, dict):
        raise InvalidEndpointClaim(
            f"the AGS endpoint claim is a JSON {type(claim).__name__}, not an object"
        )

    scopes = claim.get("scope")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidEndpointClaim(
            "the AGS endpoint claim's scope is not a list of strings"
        )

    return AgsEndpoint(
        scopes=tuple(scopes),
        lineitems_url=_url_member(claim, "lineitems"),
        lineitem_url=_url_member(claim, "lineitem"),
    )


def _url_member(claim: dict, name: str) -> str | None:
    value = claim.get(name)
    if value is None:
        return None

    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise InvalidEndpointClaim(
            f"the AGS endpoint claim's {name} is not an absolute http(s) URL: "
            f"{str(value)[:200]!r}"
        )

    return value


def endpoint_or_none(claims: dict, ids: dict) -> AgsEndpoint | None:
    """Return the launch's AGS endpoint; log and drop a malformed claim.

    A malformed claim does not reject the launch, because the course page needs no
    grades. The course keeps the endpoint of its last valid launch.
    """
    try:
        return endpoint_from_claims(claims)
    except InvalidEndpointClaim as error:
        log.warning("lti_ags_claim_invalid", problem=str(error), **ids)
        return None
