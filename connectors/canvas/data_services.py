"""Subscribe to Canvas Live Events through the Data Services API.

The Data Services API accepts the LTI tool's client-credentials token (LTI
Advantage's JWT-bearer grant), not a REST API token, and its scope
`https://canvas.instructure.com/lti/data_services/scope/create` must be enabled on
the tool's LTI developer key. A subscription names the events and the HTTPS URL
Canvas posts them to.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import requests

from badge_engine.outbound import (
    TOKEN_ENDPOINT_LIMITS,
    GuardedSession,
    OutboundBlocked,
    OutboundLimits,
    OutboundPolicy,
    OutboundTooLarge,
    guarded_session,
)
from connectors.canvas.errors import (
    CanvasError,
    CanvasResponseInvalid,
    CanvasUnavailable,
)

TOKEN_PATH = "/login/oauth2/token"  # noqa: S105 - a URL path, not a secret
SUBSCRIPTION_LIMITS = OutboundLimits(max_bytes=256 * 1024, max_redirects=0)
DATA_SERVICES_CREATE_SCOPE = (
    "https://canvas.instructure.com/lti/data_services/scope/create"
)
SUBSCRIBED_EVENTS = ("course_completed", "course_progress")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_credentials_form(
    base_url: str, client_id: str, private_key_pem: bytes, kid: str, scopes: list[str]
) -> dict[str, str]:
    """Build the token request form, with a client assertion valid for 5 minutes."""
    token_url = base_url.rstrip("/") + TOKEN_PATH
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    assertion = jwt.encode(
        claims, private_key_pem, algorithm="RS256", headers={"kid": kid}
    )
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": " ".join(scopes),
    }


def request_client_credentials_token(
    base_url: str,
    client_id: str,
    private_key_pem: bytes,
    kid: str,
    *,
    scopes: list[str] | None = None,
    http: GuardedSession | None = None,
    policy: OutboundPolicy | None = None,
    timeout: float | tuple[float, float] = (3.05, 10),
) -> str:
    """Return an LTI client-credentials access token for the Data Services API."""
    form = client_credentials_form(
        base_url,
        client_id,
        private_key_pem,
        kid,
        scopes or [DATA_SERVICES_CREATE_SCOPE],
    )
    session = guarded_session(http, policy, TOKEN_ENDPOINT_LIMITS)
    response = _post(session, base_url.rstrip("/") + TOKEN_PATH, timeout, data=form)
    try:
        return response.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        raise CanvasError(
            f"Canvas token endpoint returned HTTP {response.status_code} without an "
            f"access_token; check that the LTI developer key {client_id} is on and "
            f"has the Data Services scope enabled.",
            base_url=base_url,
            path=TOKEN_PATH,
            status_code=response.status_code,
        ) from None


def subscription_request(
    base_url: str,
    root_account_lti_context_id: str,
    *,
    context_id: str,
    webhook_url: str,
    event_types: tuple[str, ...] = SUBSCRIBED_EVENTS,
) -> dict[str, Any]:
    """Build the subscription create request: its URL and JSON body.

    NOTE: Canvas's documentation does not pin down the `ContextId` form for an
    account subscription; the bridge sends the value the admin configured.
    """
    return {
        "url": (
            f"{base_url.rstrip('/')}/api/lti/accounts/"
            f"{root_account_lti_context_id}/data_services"
        ),
        "body": {
            "subscription": {
                "ContextId": context_id,
                "ContextType": "account",
                "EventTypes": list(event_types),
                "Format": "live-event",
                "TransportMetadata": {"Url": webhook_url},
                "TransportType": "https",
            }
        },
    }


def create_subscription(
    token: str,
    request: dict[str, Any],
    *,
    http: GuardedSession | None = None,
    policy: OutboundPolicy | None = None,
    timeout: float | tuple[float, float] = (3.05, 10),
) -> dict[str, Any]:
    """Send a subscription request from `subscription_request`; return Canvas's response."""
    response = _post(
        guarded_session(http, policy, SUBSCRIPTION_LIMITS),
        request["url"],
        timeout,
        json=request["body"],
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code not in (200, 201):
        raise CanvasError(
            f"Canvas rejected the Live Events subscription (HTTP "
            f"{response.status_code}, body starts {response.text[:120]!r}); check the "
            f"Data Services scope of the LTI developer key and the account id.",
            path=request["url"],
            status_code=response.status_code,
        )
    return response.json()


def _post(session: GuardedSession, url: str, timeout, **options) -> requests.Response:
    try:
        return session.post(url, timeout=timeout, allow_redirects=False, **options)
    except OutboundBlocked as error:
        raise CanvasError(
            f"Canvas at {url} was not called: {error}", path=url
        ) from error
    except OutboundTooLarge as error:
        raise CanvasResponseInvalid(
            f"Canvas at {url} sent a response larger than the limit: {error}",
            path=url,
        ) from error
    except requests.RequestException as error:
        raise CanvasUnavailable(
            f"Canvas at {url} could not be reached ({type(error).__name__}); retry later.",
            path=url,
        ) from None
