"""The platforms' public key sets, fetched over HTTPS and cached per URL.

A key set is fetched once and kept until its `Cache-Control: max-age` (one hour when
absent, at most a day). A token whose `kid` is not in the cached set triggers one
refetch, because the platform may have rotated its key; refetches of one URL are rate
limited so that tokens with made-up key ids cannot make the tool hammer the platform.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import jwt
import requests

from badge_engine.outbound import (
    KEY_SET_LIMITS,
    GuardedSession,
    OutboundError,
    OutboundPolicy,
)
from lti_tool.logs import get_logger

log = get_logger(__name__)

DEFAULT_TTL_SECONDS = 3600.0
MAX_TTL_SECONDS = 86400.0
_MAX_AGE = re.compile(r"max-age=(\d+)", re.IGNORECASE)


class JwksUnavailable(Exception):
    """The key set could not be fetched or parsed; the message names the cause."""


@dataclass
class _Entry:
    keys: dict[str | None, jwt.PyJWK]
    fetched_at: float
    expires_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Key sets by URL, shared by every request of one process."""

    def __init__(
        self,
        *,
        policy: OutboundPolicy,
        timeout: float = 5.0,
        min_refetch_seconds: float = 30.0,
    ) -> None:
        self.timeout = timeout
        self.min_refetch_seconds = min_refetch_seconds
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._http = GuardedSession(policy, KEY_SET_LIMITS)

    def keys(self, url: str) -> dict[str | None, jwt.PyJWK]:
        """Return the cached keys of `url`, fetching them when absent or expired."""
        entry = self._entries.get(url)
        if entry is not None and time.monotonic() < entry.expires_at:
            return entry.keys

        return self._refresh(url, previous=entry)

    def key(self, url: str, kid: str | None) -> jwt.PyJWK | None:
        """Return the key with id `kid`, refetching once when it is unknown.

        A token without `kid` matches only a key set that holds exactly one key.
        Returns None when no key matches; raises JwksUnavailable when the set could
        not be fetched.
        """
        keys = self.keys(url)
        found = _pick(keys, kid)
        if found is not None:
            return found

        entry = self._entries.get(url)
        if (
            entry is not None
            and time.monotonic() - entry.fetched_at < self.min_refetch_seconds
        ):
            log.info("jwks_refetch_rate_limited", url=url, kid=kid)
            return None

        keys = self._refresh(url, previous=entry, force=True)
        return _pick(keys, kid)

    def _refresh(
        self,
        url: str,
        *,
        previous: _Entry | None,
        force: bool = False,
    ) -> dict[str | None, jwt.PyJWK]:
        with self._lock:
            current = self._entries.get(url)
            # Another thread may have fetched the set while this one waited.
            if current is not None and current is not previous:
                if force or time.monotonic() < current.expires_at:
                    return current.keys

            try:
                keys, ttl = self._fetch(url)
            except JwksUnavailable:
                if previous is not None and not force:
                    # A stale set still verifies tokens signed with unchanged keys.
                    log.warning("jwks_fetch_failed_using_stale", url=url)
                    previous.expires_at = time.monotonic() + self.min_refetch_seconds
                    return previous.keys
                if previous is not None:
                    previous.fetched_at = time.monotonic()
                raise

            now = time.monotonic()
            self._entries[url] = _Entry(keys=keys, fetched_at=now, expires_at=now + ttl)
            log.info("jwks_fetched", url=url, key_count=len(keys))

            return keys

    def _fetch(self, url: str) -> tuple[dict[str | None, jwt.PyJWK], float]:
        try:
            response = self._http.get(
                url,
                timeout=(3.05, self.timeout),
                headers={"Accept": "application/json"},
                allow_redirects=False,
            )
        except OutboundError as error:
            raise JwksUnavailable(f"key set URL: {error}") from None
        except requests.RequestException as error:
            raise JwksUnavailable(
                f"key set URL {url!r} could not be reached: {type(error).__name__}"
            ) from None

        if response.status_code != 200:
            raise JwksUnavailable(
                f"key set URL {url!r} returned HTTP {response.status_code}"
            )
        try:
            document = response.json()
            entries = document["keys"]
        except (ValueError, KeyError, TypeError):
            raise JwksUnavailable(
                f"key set URL {url!r} did not return a JSON object with a 'keys' list"
            ) from None

        return _parse_keys(url, entries), _ttl_of(response)


def _parse_keys(url: str, entries: object) -> dict[str | None, jwt.PyJWK]:
    if not isinstance(entries, list):
        raise JwksUnavailable(f"'keys' of the key set at {url!r} is not a list")

    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry.get("kid")] = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
            log.warning(
                "jwks_key_skipped", url=url, kid=entry.get("kid"), error=str(error)
            )

    return keys


def _pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


def _ttl_of(response: requests.Response) -> float:
    match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
    if match is None:
        return DEFAULT_TTL_SECONDS
    return min(max(float(match.group(1)), 60.0), MAX_TTL_SECONDS)
