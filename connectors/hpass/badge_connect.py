"""The Open Badges 2.1 Badge Connect route, for backpacks that speak it.

Badge Connect (1EdTech, OB 2.1) works like the OB 3.0 API one version earlier:

- the backpack publishes a manifest at `{origin}/.well-known/badgeconnect.json`
  whose `badgeConnectAPI` entries name `apiBase`, `registrationUrl`,
  `authorizationUrl`, `tokenUrl` and `scopesOffered`;
- the client registers dynamically and gets consent by authorization code with
  PKCE, exactly as in `connectors.hpass.ob3_oauth`;
- `POST {apiBase}/assertions` sends an OB 2.0 Assertion; the backpack responds
  201 for a new assertion and 200 for one it already holds, so a repeat is safe.

The bridge sends the hosted OB 2.0 Assertion of the credential, whose id is the
bridge's public assertion URL, so the backpack can verify it by fetching it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from badge_engine import ob2
from connectors.hpass.errors import (
    DeliveryNeedsConsent,
    DeliveryRetryable,
    PortfolioSetupError,
)
from connectors.hpass.http import PortfolioHttp, same_origin
from connectors.hpass.models import RouteName
from connectors.hpass.ob3_oauth import AccountTokens, ServiceDescription
from connectors.hpass.routes import DeliveryJob, RouteOutcome, register_route

MANIFEST_PATH = "/.well-known/badgeconnect.json"
SCOPE_CREATE = "https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.create"


def _checked(portfolio_url: str, entry: dict, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise PortfolioSetupError(
            f"the Badge Connect manifest has no {key}", portfolio_url=portfolio_url
        )
    if not same_origin(value, portfolio_url):
        raise PortfolioSetupError(
            f"the Badge Connect manifest names {key} {value}, which is not on "
            f"{portfolio_url}; the bridge calls only the backpack's own host",
            portfolio_url=portfolio_url,
        )

    return value


def discover_badge_connect(http: PortfolioHttp) -> ServiceDescription:
    """Read the backpack's Badge Connect manifest and check its URLs and scopes."""
    parts = urlsplit(http.portfolio_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    portfolio_url = http.portfolio_url.rstrip("/")
    try:
        manifest = http.request("GET", origin + MANIFEST_PATH).json(
            "the Badge Connect manifest"
        )
    except Exception as error:  # noqa: BLE001 - every failure means no manifest
        raise PortfolioSetupError(
            f"reading the Badge Connect manifest failed: {error}",
            portfolio_url=portfolio_url,
            unreachable=isinstance(error, DeliveryRetryable),
        ) from None
    entries = manifest.get("badgeConnectAPI") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise PortfolioSetupError(
            "the Badge Connect manifest lists no badgeConnectAPI entry",
            portfolio_url=portfolio_url,
        )
    entry = entries[0]
    if SCOPE_CREATE not in (entry.get("scopesOffered") or []):
        raise PortfolioSetupError(
            f"the backpack does not offer the scope {SCOPE_CREATE}",
            portfolio_url=portfolio_url,
        )

    return ServiceDescription(
        name=str(entry.get("name") or origin)[:200],
        api_base_url=_checked(origin, entry, "apiBase").rstrip("/"),
        registration_url=_checked(origin, entry, "registrationUrl"),
        authorization_url=_checked(origin, entry, "authorizationUrl"),
        token_url=_checked(origin, entry, "tokenUrl"),
        scope=SCOPE_CREATE,
    )


class BadgeConnectRoute:
    name = RouteName.BADGE_CONNECT.value

    def deliver(self, job: DeliveryJob) -> RouteOutcome:
        account = job.account
        if account is None:
            raise DeliveryNeedsConsent(
                "no backpack is linked for this delivery",
                portfolio_url="",
                credential_id=job.credential.public_id,
            )
        assertion = ob2.build_assertion(job.base_url, job.credential)
        http = PortfolioHttp(
            job.policy,
            portfolio_url=account.api_base_url,
            credential_id=assertion["id"],
            timeout=(3.05, job.timeout_seconds),
        )
        tokens = AccountTokens(job.session, job.vault, http, account)
        result = tokens.call_with_token(
            lambda token: http.request(
                "POST",
                account.api_base_url + "/assertions",
                json=assertion,
                headers={"Authorization": f"Bearer {token}"},
            )
        )

        return RouteOutcome(http_status=result.status, remote_id=assertion["id"])

    def revoke(self, job: DeliveryJob) -> RouteOutcome | None:
        # Badge Connect has no revoke call; backpacks re-read the hosted assertion,
        # which contains `revoked` once the credential is revoked.
        return None


register_route(BadgeConnectRoute())
