"""Leased tokens of Redis rate-limit buckets, against a real Redis server.

Each `RedisBuckets` stands for one web process. The tests check the documented
bound: all processes together spend no more tokens than the shared bucket gives
out, most requests make no round trip, and an empty bucket is asked again only
once a token can be there.
"""

from __future__ import annotations

import logging
import threading

import pytest

from lti_tool.config import RateLimit
from lti_tool.logs import configure_logging
from lti_tool.ratelimit import (
    LEASE_MAX_TOKENS,
    LEASE_SECONDS,
    MemoryBuckets,
    RedisBuckets,
    lease_size,
)
from tests.support.databases import reset_redis

# No refill worth counting during a test: one token a minute.
BIG = RateLimit(per_minute=1, burst=1000)
SMALL = RateLimit(per_minute=1, burst=20)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class _CountedScripts:
    """Counts the Redis round trips of one `RedisBuckets`."""

    def __init__(self, buckets: RedisBuckets):
        self.calls = 0
        for name in ("_script", "_lease_script"):
            setattr(buckets, name, self._counted(getattr(buckets, name)))

    def _counted(self, script):
        def call(*args, **options):
            self.calls += 1
            return script(*args, **options)

        return call


@pytest.fixture
def redis_url():
    return reset_redis()


def _process(url: str, clock=None) -> RedisBuckets:
    options = {"clock": clock} if clock else {}
    return RedisBuckets(url, fallback=MemoryBuckets(), **options)


def test_lease_size_by_burst():
    assert lease_size(RateLimit(per_minute=6000, burst=20000)) == LEASE_MAX_TOKENS
    assert lease_size(BIG) == 10
    assert lease_size(SMALL) == 0


def test_processes_share_exact_budget(redis_url):
    """Two processes alternating admit exactly the burst, with one trip per lease."""
    first, second = _process(redis_url), _process(redis_url)
    trips = [_CountedScripts(first), _CountedScripts(second)]

    admitted = 0
    for _ in range(700):
        for buckets in (first, second):
            admitted += buckets.take([("webhook:10.0.0.1", BIG)]).allowed

    assert admitted == BIG.burst
    # 100 leases of 10 tokens, then each process learns once that the bucket is
    # empty and keeps that verdict.
    assert trips[0].calls + trips[1].calls <= 100 + 2


def test_threads_never_overspend(redis_url):
    """Eight threads in each of two processes admit no more than the burst."""
    processes = [_process(redis_url), _process(redis_url)]
    admitted = []
    lock = threading.Lock()

    def spend(buckets):
        count = sum(
            buckets.take([("webhook:10.0.0.2", BIG)]).allowed for _ in range(200)
        )
        with lock:
            admitted.append(count)

    threads = [
        threading.Thread(target=spend, args=(processes[index % 2],))
        for index in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(admitted) <= BIG.burst
    # Leases dropped unspent are the only loss: at most one lease per process.
    assert sum(admitted) >= BIG.burst - 2 * (lease_size(BIG) - 1)


def test_empty_bucket_verdict_kept(redis_url):
    """After Redis finds the bucket empty, the process rejects without a trip."""
    clock = _Clock()
    buckets = _process(redis_url, clock)
    limit = RateLimit(per_minute=60, burst=200)
    for _ in range(200):
        assert buckets.take([("webhook:10.0.0.3", limit)]).allowed
    trips = _CountedScripts(buckets)

    first = buckets.take([("webhook:10.0.0.3", limit)])
    again = buckets.take([("webhook:10.0.0.3", limit)])

    assert not first.allowed
    assert not again.allowed
    assert first.retry_after > 0
    assert again.retry_after == pytest.approx(first.retry_after)
    assert trips.calls == 1


def test_expired_lease_not_spent(redis_url):
    """Tokens of a lease older than LEASE_SECONDS are dropped, not spent late."""
    clock = _Clock()
    buckets = _process(redis_url, clock)
    trips = _CountedScripts(buckets)

    assert buckets.take([("webhook:10.0.0.4", BIG)]).allowed
    assert buckets.take([("webhook:10.0.0.4", BIG)]).allowed
    clock.now += LEASE_SECONDS + 0.1
    assert buckets.take([("webhook:10.0.0.4", BIG)]).allowed

    assert trips.calls == 2


def test_small_bucket_one_trip_each(redis_url):
    """A bucket too small to lease from is checked in Redis on every request."""
    buckets = _process(redis_url)
    trips = _CountedScripts(buckets)

    verdicts = [buckets.take([("sign_in:10.0.0.5", SMALL)]) for _ in range(25)]

    assert sum(verdict.allowed for verdict in verdicts) == SMALL.burst
    assert trips.calls == 25


def test_leased_bucket_redis_down(caplog):
    """With Redis unreachable, a leased bucket is limited in the process and logged."""
    configure_logging("console", "INFO")
    buckets = RedisBuckets("redis://127.0.0.1:1/0", fallback=MemoryBuckets())
    limit = RateLimit(per_minute=1, burst=200)

    with caplog.at_level(logging.ERROR, logger="lti_tool.ratelimit"):
        verdicts = [buckets.take([("webhook:10.0.0.6", limit)]) for _ in range(201)]

    assert all(verdict.allowed for verdict in verdicts[:200])
    assert not verdicts[200].allowed
    assert any("rate_limit_store_failed" in r.getMessage() for r in caplog.records)
