"""Access tokens for LTI Advantage services (NRPS, AGS) by OAuth 2.0 client credentials.

The tool authenticates with a JWT signed by its registration key (the LTI Advantage
security framework's `private_key_jwt`), requests the scopes the service needs, and
keeps the token until 30 s before it expires. A service that rejects a token with
401 calls `invalidate`, so the next request gets a fresh one.
"""

from __future__ import annotations

import threading
import time
import uuid

import requests

from badge_engine.outbound import OutboundPolicy
from badge_engine.vault import Vault
from lti_tool.lti import tool_keys
from lti_tool.lti.service_urls import check_service_url
from lti_tool.models import Registration

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Seconds before `expires_in` runs out at which a cached token is replaced.
EXPIRY_MARGIN_SECONDS = 30


class ServiceTokenError(Exception):
    """The token request failed at `url` with HTTP `status` (None without a response).

    `oauth_error` is the OAuth 2.0 `error` code of the response body, such as
    `invalid_scope`, when the platform sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None,
        status: int | None,
        oauth_error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.oauth_error = oauth_error


class ServiceTokens:
    """Requests and caches one registration's access token for one set of scopes.

    The token URL passes `check_service_url` under `policy` before each token
    request, which raises OutboundBlocked for a URL the tool must not call. `http`
    is any requests-compatible session.
    """

    def __init__(
        self,
        registration: Registration,
        vault: Vault,
        http: requests.Session,
        *,
        scopes: tuple[str, ...],
        service_name: str,
        policy: OutboundPolicy,
        timeout: float = 10.0,
    ) -> None:
        self.registration = registration
        self.vault = vault
        self.http = http
        self.scopes = scopes
        self.service_name = service_name
        self.policy = policy
        self.timeout = timeout
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """Return the cached token, requesting a new one 30 s before it expires."""
        with self._lock:
            if self._token is not None and time.time() < self._token[1]:
                return self._token[0]

            self._token = self._request_token()
            return self._token[0]

    def invalidate(self, token: str) -> None:
        """Drop `token` from the cache, unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _request_token(self) -> tuple[str, float]:
        registration = self.registration
        url = registration.auth_token_url
        if not url:
            raise ServiceTokenError(
                f"registration {registration.public_id} has no token URL; add the "
                f"platform's OAuth 2.0 token URL to use {self.service_name}",
                url=None,
                status=None,
            )

        check_service_url(self.policy, url)
        response = self.http.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": JWT_BEARER,
                "client_assertion": self._assertion(url),
                "scope": " ".join(self.scopes),
            },
            timeout=(3.05, self.timeout),
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            oauth_error = body.get("error") if isinstance(body, dict) else None
            raise ServiceTokenError(
                f"token request to {url} failed with HTTP {response.status_code}: "
                f"{response.text[:200]}",
                url=url,
                status=response.status_code,
                oauth_error=oauth_error if isinstance(oauth_error, str) else None,
            )

        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServiceTokenError(
                f"token response from {url} is not JSON with an access_token",
                url=url,
                status=response.status_code,
            )

        lifetime = _seconds(body.get("expires_in"), default=3600.0)
        return token, time.time() + lifetime - EXPIRY_MARGIN_SECONDS

    def _assertion(self, url: str) -> str:
        registration = self.registration
        now = int(time.time())
        return tool_keys.sign(
            registration,
            self.vault,
            {
                "iss": registration.client_id,
                "sub": registration.client_id,
                "aud": url,
                "iat": now,
                "exp": now + 300,
                "jti": uuid.uuid4().hex,
            },
        )


def _seconds(value: object, *, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return default

    try:
        return max(float(value), 0.0)
    except ValueError:
        return default
