"""Credentials for the Canvas REST API: an admin access token or an OAuth2 token.

An LTI client-credentials token carries no REST scopes, so the REST API needs its
own credentials. An API developer key gives OAuth2 access tokens that expire
(Canvas issues them for one hour) and a refresh token that does not. An admin's
manual access token does not expire unless the admin sets a date.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests

from badge_engine.outbound import (
    TOKEN_ENDPOINT_LIMITS,
    GuardedSession,
    OutboundBlocked,
    OutboundPolicy,
    OutboundTooLarge,
    guarded_session,
)
from connectors.canvas.errors import (
    CanvasError,
    CanvasResponseInvalid,
    CanvasTokenInvalid,
    CanvasUnavailable,
)

logger = logging.getLogger(__name__)

TOKEN_PATH = "/login/oauth2/token"  # noqa: S105 - a URL path, not a secret
# Refresh this long before the access token expires, so a request never carries a
# token that expires while Canvas handles it.
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class OAuth2Tokens:
    """An OAuth2 access token with its expiry, and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"OAuth2Tokens(expires_at={self.expires_at!r})"


class StaticToken:
    """An admin access token: it cannot be refreshed, so a 401 breaks the connection."""

    can_refresh = False

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValueError("Canvas access token must be a non-empty string")
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken()"

    def access_token(self) -> str:
        return self._token

    def refresh(self) -> None:
        raise CanvasTokenInvalid(
            "Canvas rejected the admin access token, which cannot be refreshed. Ask "
            "a Canvas admin to create a new token under Account > Settings > "
            "Approved integrations and save it in the connection."
        )


class OAuth2Token:
    """OAuth2 credentials of a Canvas API developer key, refreshed before expiry.

    `on_refresh` receives the new tokens after each refresh, so the caller can store
    them (encrypted) before the next request. `clock` returns the current UTC time.
    """

    can_refresh = True

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        tokens: OAuth2Tokens,
        *,
        policy: OutboundPolicy | None = None,
        session: GuardedSession | None = None,
        timeout: float | tuple[float, float] = (3.05, 10),
        on_refresh: Callable[[OAuth2Tokens], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("Canvas developer key needs a client id and a secret")
        if not tokens.refresh_token:
            raise ValueError("Canvas OAuth2 credentials need a refresh token")
        self.token_url = base_url.rstrip("/") + TOKEN_PATH
        self.client_id = client_id
        self._client_secret = client_secret
        self._tokens = tokens
        self._session = guarded_session(session, policy, TOKEN_ENDPOINT_LIMITS)
        self._timeout = timeout
        self._on_refresh = on_refresh
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuth2Token(client_id={self.client_id!r})"

    @property
    def tokens(self) -> OAuth2Tokens:
        return self._tokens

    def access_token(self) -> str:
        """Return a token that is valid for at least REFRESH_MARGIN, refreshing first."""
        expires_at = self._tokens.expires_at
        if expires_at is not None and expires_at - REFRESH_MARGIN <= self._clock():
            self.refresh()

        return self._tokens.access_token

    def refresh(self) -> None:
        """Exchange the refresh token for a new access token.

        Raises:
            CanvasTokenInvalid: Canvas rejected the refresh token or the developer key
                (revoked, deleted, or its secret changed).
            CanvasUnavailable: Canvas could not be reached or failed.
        """
        with self._lock:
            self._tokens = self._request_new_tokens()

        logger.info("canvas_token_refreshed client_id=%s", self.client_id)
        if self._on_refresh is not None:
            self._on_refresh(self._tokens)

    def _request_new_tokens(self) -> OAuth2Tokens:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._tokens.refresh_token,
        }
        try:
            response = self._session.post(
                self.token_url, data=form, timeout=self._timeout, allow_redirects=False
            )
        except OutboundBlocked as error:
            raise CanvasError(
                f"Canvas token endpoint {self.token_url} was not called: {error}",
                path=TOKEN_PATH,
            ) from error
        except OutboundTooLarge as error:
            raise CanvasResponseInvalid(
                f"Canvas token endpoint {self.token_url} sent a response larger "
                f"than {TOKEN_ENDPOINT_LIMITS.max_bytes} bytes; check the Canvas "
                "base URL.",
                path=TOKEN_PATH,
            ) from error
        except requests.RequestException as error:
            raise CanvasUnavailable(
                f"Canvas token endpoint {self.token_url} could not be reached "
                f"({type(error).__name__}); the refresh is retried later.",
                path=TOKEN_PATH,
            ) from None

        if response.status_code in (400, 401):
            raise CanvasTokenInvalid(
                f"Canvas rejected the refresh token of developer key "
                f"{self.client_id} (HTTP {response.status_code}): the user revoked "
                f"the bridge's access or the key was deleted or changed. Ask the "
                f"provider admin to connect Canvas again.",
                path=TOKEN_PATH,
                status_code=response.status_code,
            )
        if response.status_code != 200:
            raise CanvasUnavailable(
                f"Canvas token endpoint returned HTTP {response.status_code}; the "
                f"refresh is retried later.",
                path=TOKEN_PATH,
                status_code=response.status_code,
            )

        try:
            body = response.json()
            access_token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise CanvasUnavailable(
                "Canvas token endpoint returned no access_token; the "
                "refresh is retried later.",
                path=TOKEN_PATH,
                status_code=response.status_code,
            ) from None

        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            expires_at = self._clock() + timedelta(seconds=expires_in)
        # Canvas keeps the same refresh token and leaves it out of the refresh response.
        refresh_token = body.get("refresh_token") or self._tokens.refresh_token
        return OAuth2Tokens(access_token, refresh_token, expires_at)
