"""Rate limits on password sign-in, LTI launches, webhooks and the JSON API.

`RateLimitMiddleware` wraps the whole WSGI app, ahead of Flask and of any WSGI fast
path installed inside it, so every request to a limited path is counted before any
other work. It sorts a request into a class by its method and path and takes one
token from a bucket per key: the client address (an IPv6 address by its /64
network), and for sign-in forms also the email typed. When a bucket is empty it
rejects the request with 429 and `Retry-After`.

Buckets live in this process unless `Settings.rate_limit_redis_url` is set (it
follows a Redis broker by default); then all web processes share one budget in
Redis. A request with one bucket whose burst is large (webhooks, launches) spends
tokens that its process leased from Redis in a block (see `RedisBuckets`), so most
requests make no round trip. Other requests make one Redis script call that checks
and takes from every bucket of the request. If Redis fails, the request is counted
in this process's buckets instead and the failure is logged, so an outage of Redis
weakens the limit but blocks no one.
"""

from __future__ import annotations

import functools
import io
import ipaddress
import json
import math
import threading
import time
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from lti_tool.config import RateLimit, Settings
from lti_tool.lti.proxy import client_address
from lti_tool.logs import get_logger
from lti_tool.rate_limit_page import PAGE_MESSAGES, SessionLocales, render_page

log = get_logger(__name__)

# Paths under /account that take a password or send account mail when posted.
_SIGN_IN_PATHS = (
    "/account/sign-in",
    "/account/reset",
    "/account/invitation/",
    "/account/password",
)
# A sign-in form is a few hundred bytes; a larger body is not parsed for its email.
_MAX_FORM_BYTES = 16 * 1024
# The body types Flask's `request.form` reads, compared in lower case.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Email key of a sign-in form whose body is not read (no Content-Length, or over
# _MAX_FORM_BYTES). Browsers send neither, so all such requests share one bucket,
# rather than each skipping the per-account limit.
UNREAD_FORM_EMAIL = "<unread body>"
# An IPv6 client is keyed by this prefix, because one subscriber usually has a
# whole /64 and could otherwise take a fresh address for each request.
IPV6_KEY_PREFIX = 64
# In-process buckets kept before idle ones are dropped.
MAX_BUCKETS = 100_000
# A rejected key is logged once per this many seconds, with the count since.
LOG_INTERVAL_SECONDS = 60.0
# A process leases at most this many tokens of a Redis bucket at once, and at most
# one per LEASE_BURST_DIVISOR tokens of its burst. A bucket whose lease size comes
# to less than 2 (sign-in with the defaults) gets no leases.
LEASE_MAX_TOKENS = 50
LEASE_BURST_DIVISOR = 100
# Leased tokens not spent within this many seconds are dropped, not spent late.
LEASE_SECONDS = 1.0

_MESSAGES = {
    **PAGE_MESSAGES,
    "webhook": "Too many events from this address.",
    "api": "Too many API requests from this address.",
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0


# The verdict of every admitted request. It is built once, because creating a
# frozen dataclass costs about a microsecond.
_ALLOWED = Verdict(True)


def classify(method: str, path: str) -> str | None:
    """Return the rate-limit class of a request, or None when it is not limited."""
    if path.startswith("/webhooks/"):
        return "webhook"
    if path.startswith("/lti/") and path.endswith(("/login", "/launch")):
        return "lti_launch"
    if path.startswith("/api/"):
        return "api"
    if method == "POST" and path.startswith(_SIGN_IN_PATHS):
        return "sign_in"
    return None


class MemoryBuckets:
    """Token buckets in this process, safe to share between request threads."""

    def __init__(
        self,
        clock=time.monotonic,
        max_buckets: int = MAX_BUCKETS,
        refill_seconds: float = 0.0,
    ) -> None:
        """`refill_seconds` is the longest time any configured bucket takes to refill."""
        self._clock = clock
        self._max_buckets = max_buckets
        self._refill_seconds = refill_seconds
        self._lock = threading.Lock()
        # key -> (tokens left, time of that count)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, keys: list[tuple[str, RateLimit]]) -> Verdict:
        """Take one token from every bucket, or none when any of them is empty."""
        if len(keys) == 1:
            return self._take_one(*keys[0])
        now = self._clock()
        with self._lock:
            levels = [self._level(key, limit, now) for key, limit in keys]
            wait = max(
                (_wait(level, limit) for level, (_, limit) in zip(levels, keys)),
                default=0.0,
            )
            if wait > 0:
                return Verdict(False, wait)
            if len(self._buckets) >= self._max_buckets:
                self._drop_full(now, keys)
            for level, (key, _) in zip(levels, keys):
                self._buckets[key] = (level - 1, now)

        return _ALLOWED

    def _take_one(self, key: str, limit: RateLimit) -> Verdict:
        # The same steps as `take` for the one bucket of most requests, without
        # the lists and generators that several buckets need.
        now = self._clock()
        with self._lock:
            level = self._level(key, limit, now)
            if level < 1:
                return Verdict(False, _wait(level, limit))
            if len(self._buckets) >= self._max_buckets:
                self._drop_full(now, [(key, limit)])
            self._buckets[key] = (level - 1, now)

        return _ALLOWED

    def _level(self, key: str, limit: RateLimit, now: float) -> float:
        tokens, since = self._buckets.get(key, (limit.burst, now))
        return min(limit.burst, tokens + (now - since) * limit.per_minute / 60)

    def _drop_full(self, now: float, keys: list[tuple[str, RateLimit]]) -> None:
        # A bucket idle long enough to have refilled is the same as no bucket, so
        # dropping it changes no verdict.
        longest = max(
            self._refill_seconds,
            *(limit.burst / limit.per_minute * 60 for _, limit in keys),
        )
        idle = [
            key for key, (_, since) in self._buckets.items() if now - since > longest
        ]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:
            log.warning("rate_limit_buckets_reset", buckets=len(self._buckets))
            self._buckets.clear()


def _wait(level: float, limit: RateLimit) -> float:
    if level >= 1:
        return 0.0
    return (1 - level) * 60 / limit.per_minute


# KEYS: bucket keys; ARGV: per key, burst then tokens per second. Takes a token from
# every bucket only when each has one; returns {1, 0} or {0, seconds to wait}.
_REDIS_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  local level = math.min(burst, tokens + math.max(0, now - at) * rate)
  levels[i] = level
  if level < 1 then wait = math.max(wait, (1 - level) / rate) end
end
if wait > 0 then return {0, tostring(wait)} end
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return {1, '0'}
"""


# KEYS: one bucket key; ARGV: burst, tokens per second, tokens requested. Takes as
# many whole tokens as the bucket has, up to the number requested; returns
# {tokens taken, '0'} or {0, seconds until one token is there}.
_REDIS_LEASE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local level = math.min(burst, tokens + math.max(0, now - at) * rate)
if level < 1 then return {0, tostring((1 - level) / rate)} end
local taken = math.min(requested, math.floor(level))
redis.call('HSET', KEYS[1], 'tokens', level - taken, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {taken, '0'}
"""


def lease_size(limit: RateLimit) -> int:
    """Return how many tokens of a bucket with this limit a process leases at once."""
    return min(LEASE_MAX_TOKENS, int(limit.burst // LEASE_BURST_DIVISOR))


class RedisBuckets:
    """Token buckets in Redis, shared by every web process.

    A request with one bucket whose `lease_size` is 2 or more spends a token of a
    lease: a block of tokens this process took from the Redis bucket in one round
    trip. Only when the lease is spent or older than `LEASE_SECONDS` does a request
    go to Redis, for a new lease. A Redis verdict that the bucket is empty is kept
    until a token can be there again, so rejected requests make no round trip
    either. Every other request makes one round trip, which checks and takes from
    all its buckets at once.

    Bound: tokens are taken from Redis when leased, so all processes together never
    spend more tokens than the shared bucket gives out. A process may spend a lease
    up to `LEASE_SECONDS` after it was taken, so within any window the requests
    admitted may exceed the limit by at most `lease_size - 1` per web process and
    bucket (49 for the default webhook limit). Tokens of a lease that expires
    unspent are lost, so the limit may also admit up to that many fewer.
    """

    def __init__(self, url: str, fallback: MemoryBuckets, clock=time.monotonic) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._script = self._client.register_script(_REDIS_SCRIPT)
        self._lease_script = self._client.register_script(_REDIS_LEASE_SCRIPT)
        self._fallback = fallback
        self._clock = clock
        self._errors = _RepeatCounter()
        self._lock = threading.Lock()
        # bucket key -> (tokens left, lease end), or (0, time of the next token)
        # after Redis found the bucket empty.
        self._leases: dict[str, tuple[int, float]] = {}

    def take(self, keys: list[tuple[str, RateLimit]]) -> Verdict:
        if len(keys) == 1 and lease_size(keys[0][1]) >= 2:
            return self._take_leased(*keys[0])

        arguments = []
        for _, limit in keys:
            arguments += [limit.burst, limit.per_minute / 60]
        try:
            allowed, wait = self._script(
                keys=["hpass:rl:" + key for key, _ in keys], args=arguments
            )
        except Exception as error:  # noqa: BLE001 - any Redis failure falls back
            return self._fall_back(keys, error)

        return Verdict(bool(int(allowed)), float(wait))

    def _take_leased(self, key: str, limit: RateLimit) -> Verdict:
        now = self._clock()
        with self._lock:
            tokens, until = self._leases.get(key, (0, now))
            if until > now:
                if tokens == 0:
                    return Verdict(False, until - now)
                self._keep_lease(key, tokens - 1, until)
                return Verdict(True)

        try:
            taken, wait = self._lease_script(
                keys=["hpass:rl:" + key],
                args=[limit.burst, limit.per_minute / 60, lease_size(limit)],
            )
        except Exception as error:  # noqa: BLE001 - any Redis failure falls back
            return self._fall_back([(key, limit)], error)

        taken, wait = int(taken), float(wait)
        now = self._clock()
        with self._lock:
            if taken == 0:
                self._leases[key] = (0, now + wait)
                return Verdict(False, wait)
            # Threads that leased at the same moment add up their leftovers.
            left, until = self._leases.get(key, (0, now))
            left = left if until > now else 0
            self._keep_lease(key, left + taken - 1, now + LEASE_SECONDS)
            if len(self._leases) > MAX_BUCKETS:
                self._drop_expired(now)
        return Verdict(True)

    def _keep_lease(self, key: str, tokens: int, until: float) -> None:
        # An entry with no tokens means the bucket was found empty, so a spent
        # lease is dropped rather than kept at zero.
        if tokens > 0:
            self._leases[key] = (tokens, until)
        else:
            self._leases.pop(key, None)

    def _drop_expired(self, now: float) -> None:
        expired = [key for key, (_, until) in self._leases.items() if until <= now]
        for key in expired:
            del self._leases[key]
        if len(self._leases) > MAX_BUCKETS:
            self._leases.clear()

    def _fall_back(self, keys: list[tuple[str, RateLimit]], error: Exception):
        count = self._errors.due("redis")
        if count:
            log.error("rate_limit_store_failed", error=repr(error), failures=count)
        return self._fallback.take(keys)


class _RepeatCounter:
    """Counts events per key and reports when one is due to be logged again."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def due(self, key: str) -> int:
        """Count one event; return the count since the last log line, or 0 to skip."""
        now = time.monotonic()
        with self._lock:
            count, logged_at = self._seen.get(key, (0, -math.inf))
            count += 1
            if now - logged_at < self._interval:
                self._seen[key] = (count, logged_at)
                return 0
            if len(self._seen) >= MAX_BUCKETS:
                self._seen.clear()
            self._seen[key] = (0, now)

        return count


class RateLimitMiddleware:
    """WSGI middleware that applies the configured limits before the app runs."""

    def __init__(
        self,
        app,
        settings: Settings,
        buckets=None,
        session_locales: SessionLocales | None = None,
    ) -> None:
        self.app = app
        # Reads the session's language for the translated HTML 429 page.
        self.session_locales = session_locales
        self.limits = settings.rate_limits
        self.networks = [
            ipaddress.ip_network(item, strict=False)
            for item in settings.trusted_proxies
        ]
        refill = max(
            limit.burst / limit.per_minute * 60 for limit in self.limits.values()
        )
        memory = MemoryBuckets(refill_seconds=refill)
        if buckets is None and settings.rate_limit_redis_url:
            buckets = RedisBuckets(settings.rate_limit_redis_url, fallback=memory)
        self.buckets = buckets or memory
        self._rejections = _RepeatCounter()

    def __call__(self, environ, start_response):
        limit_class = classify(
            environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        )
        if limit_class is None:
            return self.app(environ, start_response)

        address = client_address(environ, self.networks)
        keys = [(f"{limit_class}:{address_key(address)}", self.limits[limit_class])]
        if limit_class == "sign_in":
            email = _form_email(environ)
            if email:
                # One bucket per form and account, so a guesser who empties the
                # sign-in bucket does not also keep the owner from a password reset.
                form = environ.get("PATH_INFO", "")
                account_key = f"sign_in_account:{form}:{email}"
                keys.append((account_key, self.limits["sign_in_account"]))
        verdict = self.buckets.take(keys)
        if verdict.allowed:
            return self.app(environ, start_response)

        return self._reject(environ, start_response, limit_class, address, verdict)

    def _reject(self, environ, start_response, limit_class, address, verdict):
        retry_after = max(1, math.ceil(verdict.retry_after))
        count = self._rejections.due(f"{limit_class}:{address_key(address)}")
        if count:
            log.warning(
                "rate_limited",
                limit_class=limit_class,
                client_address=address,
                path=environ.get("PATH_INFO", ""),
                retry_after=retry_after,
                rejected=count,
            )
        message = f"{_MESSAGES[limit_class]} Wait {retry_after} seconds and try again."
        if limit_class in ("webhook", "api"):
            body, headers = _json_body(limit_class, message, retry_after)
        else:
            page = render_page(environ, limit_class, retry_after, self.session_locales)
            body, headers = _html_body(limit_class, page)
        headers += [
            ("Retry-After", str(retry_after)),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response("429 Too Many Requests", headers)

        return [body]


def _json_body(limit_class: str, message: str, retry_after: int):
    document = {
        "error": "rate_limited",
        "message": message,
        "limit_class": limit_class,
        "retry_after": retry_after,
    }
    return json.dumps(document).encode(), [("Content-Type", "application/json")]


def _html_body(limit_class: str, page: bytes):
    # A launch's page shows inside the LMS frame, whose origin is not known here. The
    # page has no form or link, so letting any site frame it exposes nothing.
    ancestors = "" if limit_class == "lti_launch" else "; frame-ancestors 'none'"
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", "default-src 'none'" + ancestors),
    ]
    return page, headers


# Cached because parsing an address costs about 2.5 µs (timeit, CPython 3.11, the
# 2-core bench machine) and most requests come from a few addresses, such as an
# LMS or a proxy. A client that sends from many addresses only evicts entries,
# which costs about what parsing each address would.
@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """Return the bucket key part for a client address: IPv4 as is, IPv6 by /64.

    An IPv4-mapped IPv6 address counts as its IPv4 address. A value that is not an
    IP address (a proxy's odd X-Forwarded-For entry) is used as it is.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if parsed.version == 4:
        return str(parsed)

    host_bits = 128 - IPV6_KEY_PREFIX
    network_address = int(parsed) >> host_bits << host_bits
    return str(ipaddress.IPv6Network((network_address, IPV6_KEY_PREFIX)))


def _form_email(environ) -> str:
    """Return the normalised `email` field of a posted form, keeping the body readable.

    Urlencoded and multipart bodies are parsed by the Werkzeug form parser that
    Flask's `request.form` uses, so the email matches what the view reads. The body
    is read here and put back as a new stream, so the app reads it as sent. Returns
    "" when the form has no email field and `UNREAD_FORM_EMAIL` when the body is
    not read.
    """
    # Werkzeug's Request lower-cases the media type before choosing a parser, so
    # `Application/X-WWW-Form-Urlencoded` is a form to the view and must be here.
    mimetype, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    mimetype = mimetype.lower()
    if mimetype not in _FORM_TYPES:
        return ""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return UNREAD_FORM_EMAIL
    if length == 0:
        return ""
    if length < 0 or length > _MAX_FORM_BYTES:
        return UNREAD_FORM_EMAIL

    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    # Every field is parsed, because the view reads forms of up to 1000 fields
    # (Flask's MAX_FORM_PARTS default), so a form padded past a smaller cap would
    # skip the account bucket. The body size limit bounds the work.
    parser = FormDataParser(
        max_form_memory_size=_MAX_FORM_BYTES,
        max_content_length=_MAX_FORM_BYTES,
        silent=True,
    )
    try:
        _, form, _ = parser.parse(io.BytesIO(body), mimetype, len(body), options)
    except HTTPException:
        return UNREAD_FORM_EMAIL
    email = form.get("email") or ""

    return email.strip().lower()[:320]
