"""The Open Badges 3.0 API route: `upsertCredential` to a learner's portfolio.

`POST {base}/ims/ob/v3p0/credentials` with the credential as JSON and a bearer
token. The portfolio responds 200 when it replaced a credential with the same id
and 201 when it created one, so a repeat of the same credential is harmless,
which makes redelivery after a worker crash safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from badge_engine.outbound import OutboundPolicy
from connectors.hpass.errors import DeliveryNeedsConsent
from connectors.hpass.http import DEFAULT_TIMEOUT, PortfolioHttp
from connectors.hpass.models import RouteName
from connectors.hpass.ob3_oauth import AccountTokens
from connectors.hpass.routes import (
    DeliveryJob,
    RouteOutcome,
    may_hold_credential,
    register_route,
)

UPSERT_PATH = "/ims/ob/v3p0/credentials"


@dataclass(frozen=True)
class UpsertResult:
    http_status: int
    created: bool


class Ob3ApiClient:
    """Send credentials to one portfolio with one access token."""

    def __init__(
        self,
        api_base_url: str,
        access_token: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self._access_token = access_token
        self.http = PortfolioHttp(
            policy or OutboundPolicy(),
            portfolio_url=self.api_base_url,
            timeout=timeout,
        )

    def upsert_credential(self, credential: dict) -> UpsertResult:
        """Send one signed credential; raise a DeliveryError subclass when it fails."""
        return upsert_credential(
            self.http, self.api_base_url, self._access_token, credential
        )


def upsert_credential(
    http: PortfolioHttp, api_base_url: str, access_token: str, credential: dict
) -> UpsertResult:
    http.credential_id = str(credential.get("id"))
    result = http.request(
        "POST",
        api_base_url.rstrip("/") + UPSERT_PATH,
        json=credential,
        headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
        },
    )

    return UpsertResult(http_status=result.status, created=result.status == 201)


class Ob3ApiRoute:
    name = RouteName.OB3_API.value

    def deliver(self, job: DeliveryJob) -> RouteOutcome:
        account = job.account
        if account is None:
            raise DeliveryNeedsConsent(
                "no portfolio account is linked for this delivery",
                portfolio_url="",
                credential_id=job.credential.public_id,
            )
        http = PortfolioHttp(
            job.policy,
            portfolio_url=account.api_base_url,
            credential_id=str(job.credential.document.get("id")),
            timeout=(3.05, job.timeout_seconds),
        )
        tokens = AccountTokens(job.session, job.vault, http, account)
        result = tokens.call_with_token(
            lambda token: upsert_credential(
                http, account.api_base_url, token, job.credential.document
            )
        )

        return RouteOutcome(http_status=result.http_status)

    def revoke(self, job: DeliveryJob) -> RouteOutcome | None:
        """Send the revoked credential again, so the portfolio checks its status.

        The OB 3.0 API has no revoke or delete operation. The credential document
        is signed and does not change, but its `credentialStatus` names the status
        list where its bit is now set, and `upsertCredential` replaces the copy
        stored in the portfolio (200), which makes the portfolio read that status again.
        A portfolio that never received the credential is sent nothing.
        """
        if not may_hold_credential(job.delivery):
            return None

        return self.deliver(job)


register_route(Ob3ApiRoute())
