"""Client for the Open Badges 3.0 API's `upsertCredential` call (1EdTech OB 3.0 API).

`POST {base}/ims/ob/v3p0/credentials` with the credential as JSON and a bearer token.
The portfolio answers 200 when it replaced a credential with the same id and 201 when
it created one; a repeat of the same credential is therefore harmless, which is what
makes redelivery after a worker crash safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests

from connectors.hpass.errors import DeliveryRejected, DeliveryRetryable

log = logging.getLogger(__name__)

UPSERT_PATH = "/ims/ob/v3p0/credentials"


@dataclass(frozen=True)
class UpsertResult:
    http_status: int
    created: bool


def _retry_after(response: requests.Response) -> timedelta | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from badge_engine.db import utcnow

    return max(moment - utcnow(), timedelta(0))


def _describe(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("imsx_description") or body)[:300]
    return str(body)[:300]


class Ob3ApiClient:
    def __init__(
        self,
        api_base_url: str,
        access_token: str,
        *,
        timeout: tuple[float, float] = (3.05, 15),
        session: requests.Session | None = None,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self._access_token = access_token
        self.timeout = timeout
        self.session = session or requests.Session()

    def upsert_credential(self, credential: dict) -> UpsertResult:
        """Send one signed credential; raise DeliveryRetryable or DeliveryRejected."""
        url = self.api_base_url + UPSERT_PATH
        credential_id = str(credential.get("id"))
        ids = {"portfolio_url": self.api_base_url, "credential_id": credential_id}
        try:
            response = self.session.post(
                url,
                json=credential,
                headers={
                    "Authorization": f"Bearer {self._access_token}",
                    "Accept": "application/json",
                },
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise DeliveryRetryable(
                f"portfolio at {self.api_base_url} did not answer within "
                f"{self.timeout[1]} s; the delivery will be retried",
                **ids,
            ) from None
        except requests.RequestException as error:
            raise DeliveryRetryable(
                f"could not reach portfolio at {self.api_base_url}: "
                f"{type(error).__name__}; the delivery will be retried",
                **ids,
            ) from None

        status = response.status_code
        if status in (200, 201):
            return UpsertResult(http_status=status, created=status == 201)
        detail = _describe(response)
        if status == 429 or status >= 500:
            raise DeliveryRetryable(
                f"portfolio at {self.api_base_url} answered {status}: {detail}; "
                "the delivery will be retried",
                retry_after=_retry_after(response),
                http_status=status,
                **ids,
            )
        raise DeliveryRejected(
            f"portfolio at {self.api_base_url} rejected the credential with {status}: "
            f"{detail}. If it is 401 or 403 the learner must link the portfolio again; "
            "otherwise check the credential against the portfolio's rules and retry.",
            http_status=status,
            **ids,
        )
