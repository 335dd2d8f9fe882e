"""The platform key set cache: one refetch for an unknown kid, rate limited, over HTTP."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify

from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti import jwks
from lti_tool.lti.jwks import JwksCache, JwksUnavailable
from tests.lti_tool.lti.harness import new_rsa_key, public_jwk, stop_server
from tests.support.outbound import LOOPBACK_POLICY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class KeyServer:
    """A JWKS endpoint that counts its fetches; `keys`, `status`, `max_age` can change."""

    def __init__(self) -> None:
        self.keys = [public_jwk(new_rsa_key(), "k1")]
        self.status = 200
        self.max_age: int | None = None
        self.fetches = 0
        app = Flask("key_server")
        app.add_url_rule("/jwks", "jwks", self._jwks)
        self.server = serve_in_thread(app)
        self.url = f"{self.server.url}/jwks"

    def _jwks(self):
        self.fetches += 1
        response = jsonify({"keys": self.keys})
        response.status_code = self.status
        if self.max_age is not None:
            response.headers["Cache-Control"] = f"max-age={self.max_age}"
        return response


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(jwks, "time", clock)
    return clock


@pytest.fixture
def keys():
    server = KeyServer()
    yield server
    stop_server(server.server)


@pytest.fixture
def cache():
    return JwksCache(policy=LOOPBACK_POLICY, timeout=5, min_refetch_seconds=30)


def test_cached(cache, keys, clock):
    """Known keys come from the cache: one fetch for many look-ups."""
    for _ in range(5):
        assert cache.key(keys.url, "k1") is not None
    assert keys.fetches == 1


def test_unknown_kid_refetched_once(cache, keys, clock):
    """A rotated key is found by one refetch when its kid first appears."""
    cache.key(keys.url, "k1")
    keys.keys.append(public_jwk(new_rsa_key(), "k2"))
    clock.now += 31

    assert cache.key(keys.url, "k2") is not None
    assert keys.fetches == 2


def test_refetch_rate_limited(cache, keys, clock):
    """Made-up kids within the rate limit window cause no further fetches."""
    cache.key(keys.url, "k1")
    clock.now += 31
    assert cache.key(keys.url, "nope-1") is None
    assert keys.fetches == 2

    for index in range(10):
        clock.now += 1
        assert cache.key(keys.url, f"nope-{index}") is None
    assert keys.fetches == 2

    clock.now += 30
    keys.keys.append(public_jwk(new_rsa_key(), "k3"))
    assert cache.key(keys.url, "k3") is not None
    assert keys.fetches == 3


def test_fresh_fetch_not_repeated(cache, keys, clock):
    """An unknown kid right after the first fetch does not fetch again."""
    assert cache.key(keys.url, "unknown") is None
    assert keys.fetches == 1


def test_max_age_honoured(cache, keys, clock):
    """The set is fetched again after its Cache-Control max-age."""
    keys.max_age = 120
    cache.key(keys.url, "k1")
    clock.now += 100
    cache.key(keys.url, "k1")
    assert keys.fetches == 1
    clock.now += 21
    cache.key(keys.url, "k1")
    assert keys.fetches == 2


def test_stale_set_kept(cache, keys, clock):
    """When a refresh fails, the expired set still verifies unchanged keys."""
    cache.key(keys.url, "k1")
    keys.status = 503
    clock.now += jwks.DEFAULT_TTL_SECONDS + 1
    assert cache.key(keys.url, "k1") is not None
    assert keys.fetches == 2


def test_unreachable_refetch(cache, keys, clock):
    """An unknown kid with the key set failing raises JwksUnavailable naming the status."""
    cache.key(keys.url, "k1")
    keys.status = 500
    clock.now += 31
    with pytest.raises(JwksUnavailable, match="HTTP 500"):
        cache.key(keys.url, "k2")
    # The failed attempt counts against the rate limit too.
    assert cache.key(keys.url, "k2") is None
    assert keys.fetches == 2


def test_kid_absent(cache, keys, clock):
    """A token without kid matches a set of one key only."""
    assert cache.key(keys.url, None) is not None
    keys.keys.append(public_jwk(new_rsa_key(), "k2"))
    clock.now += jwks.DEFAULT_TTL_SECONDS + 1
    assert cache.key(keys.url, None) is None
