"""Verify JWT-signed Live Events against the keys of a JWKS URL.

Canvas signs Live Events with keys it rotates, so the bridge caches the key set
and fetches it again when an event names a `kid` it has not seen. An unknown `kid`
triggers at most one refetch per `negative_ttl` seconds. All refetches together
stay within `max_refetches_per_minute`, so forged events with random key ids
cannot turn the bridge into a load generator against the JWKS host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import jwt
import requests

from badge_engine.outbound import (
    KEY_SET_LIMITS,
    GuardedSession,
    OutboundError,
    OutboundPolicy,
    guarded_session,
)
from connectors.canvas.errors import CanvasEventSignatureInvalid

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: an HS* or "none" token could be made by anyone.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
CLOCK_SKEW_SECONDS = 60


class JwksCache:
    """The key set of one JWKS URL, fetched on first use and on unknown key ids."""

    def __init__(
        self,
        url: str,
        *,
        policy: OutboundPolicy | None = None,
        session: GuardedSession | None = None,
        timeout: float | tuple[float, float] = (3.05, 5),
        negative_ttl: float = 60.0,
        max_refetches_per_minute: int = 6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.fetch_count = 0
        self._session = guarded_session(session, policy, KEY_SET_LIMITS)
        self._timeout = timeout
        self._negative_ttl = negative_ttl
        self._max_refetches = max_refetches_per_minute
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._unknown_since: dict[str, float] = {}
        self._recent_fetches: deque[float] = deque()
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK:
        """Return the key with id `kid`, fetching the key set again once if needed.

        Raises:
            CanvasEventSignatureInvalid: no key with that id exists after a refetch,
                or the key set could not be fetched.
        """
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_refetch(kid):
                self._fetch()
                key = self._keys.get(kid)
                if key is None:
                    self._unknown_since[kid] = self._clock()

        if key is None:
            raise CanvasEventSignatureInvalid(
                f"Live Event JWT names key id {kid!r}, which the JWKS at {self.url} "
                f"does not contain. Check the connection's JWKS URL; a forged event "
                f"is rejected the same way.",
                kid=kid,
            )
        return key

    def _may_refetch(self, kid: str) -> bool:
        now = self._clock()
        if self.fetch_count == 0:
            return True
        seen = self._unknown_since.get(kid)
        if seen is not None and now - seen < self._negative_ttl:
            return False
        while self._recent_fetches and now - self._recent_fetches[0] > 60:
            self._recent_fetches.popleft()
        return len(self._recent_fetches) < self._max_refetches

    def _fetch(self) -> None:
        self.fetch_count += 1
        self._recent_fetches.append(self._clock())
        try:
            response = self._session.get(self.url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
            keys = document["keys"]
        except (
            OutboundError,
            requests.RequestException,
            ValueError,
            KeyError,
            TypeError,
        ) as error:
            logger.warning(
                "Fetching the Live Events JWKS failed: url=%s error=%s code=%s",
                self.url,
                type(error).__name__,
                getattr(error, "code", ""),
            )
            return

        fresh: dict[str, jwt.PyJWK] = {}
        for entry in keys if isinstance(keys, list) else []:
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError) as error:
                logger.warning(
                    "Skipping a JWKS key that cannot be used: url=%s kid=%s error=%s",
                    self.url,
                    entry.get("kid") if isinstance(entry, dict) else None,
                    error,
                )
                continue
            if key.key_id:
                fresh[key.key_id] = key
        self._keys = fresh
        logger.info(
            "Fetched the Live Events JWKS: url=%s keys=%d", self.url, len(fresh)
        )


def decode_signed_event(token: str, jwks: JwksCache) -> dict[str, Any]:
    """Verify a compact JWT and return its claims, which carry the Live Event.

    Raises:
        CanvasEventSignatureInvalid: the token is malformed, uses a symmetric or
            unknown algorithm, names an unknown key, has a bad signature, or has
            expired (`exp`, with CLOCK_SKEW_SECONDS of leeway).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as error:
        raise CanvasEventSignatureInvalid(
            f"Live Event body is not a valid compact JWT ({error})."
        ) from None

    algorithm = header.get("alg")
    kid = header.get("kid")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise CanvasEventSignatureInvalid(
            f"Live Event JWT uses algorithm {algorithm!r}; expected one of "
            f"{', '.join(ALLOWED_ALGORITHMS)}.",
            kid=kid,
        )
    if not isinstance(kid, str) or not kid:
        raise CanvasEventSignatureInvalid(
            "Live Event JWT has no kid header, so its key cannot be chosen.", kid=None
        )

    key = jwks.key_for(kid)
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[algorithm],
            leeway=CLOCK_SKEW_SECONDS,
            options={"verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise CanvasEventSignatureInvalid(
            f"Live Event JWT signed with key {kid!r} has expired.", kid=kid
        ) from None
    except jwt.InvalidTokenError as error:
        raise CanvasEventSignatureInvalid(
            f"Live Event JWT failed verification with key {kid!r} ({error}).", kid=kid
        ) from None

    return claims
