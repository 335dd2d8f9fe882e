"""Cost of the rate limiter per request, against the same WSGI app without it.

    python bench/ratelimit.py [--requests 200000] [--redis redis://127.0.0.1:6379/14]

Calls a trivial WSGI app directly (no server, no sockets), so the figures are the
limiter's own work: classifying the path, resolving the client address and taking a
token. The rows are the bare app (baseline), a path in no class, and a webhook with
in-process buckets. Then come a sign-in post, which also parses the form's email, a
webhook whose peer is a trusted proxy, and with --redis a webhook with buckets in
Redis. Limits are set
high enough that nothing is rejected.
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import replace

from lti_tool.config import DEFAULT_RATE_LIMITS, RateLimit, load_settings
from lti_tool.ratelimit import RateLimitMiddleware

UNLIMITED = RateLimit(per_minute=1e12, burst=1e12)
BODY = b"email=admin%40example.org&password=not-the-password&csrf=token"


def bare_app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def _environ(path: str, method: str = "POST", body: bytes = b"") -> dict:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": "192.0.2.10",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_FORWARDED_FOR": "198.51.100.7",
    }


def _time_per_request(app, path: str, count: int, body: bytes = b"") -> float:
    """Return microseconds per call of `app` for `count` requests to `path`."""
    environs = [_environ(path, body=body) for _ in range(count)]

    def start_response(status, headers):
        return None

    started = time.perf_counter()
    for environ in environs:
        app(environ, start_response)
    return (time.perf_counter() - started) / count * 1e6


def _limiter(redis_url: str = "", proxies: list[str] | None = None):
    settings = load_settings(environ={})
    limits = {name: UNLIMITED for name in DEFAULT_RATE_LIMITS}
    settings = replace(
        settings,
        rate_limits=limits,
        rate_limit_redis_url=redis_url,
        trusted_proxies=proxies or [],
    )
    return RateLimitMiddleware(bare_app, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument(
        "--redis", default="", help="Redis URL for shared buckets; unset skips that row"
    )
    arguments = parser.parse_args()
    count = arguments.requests

    baseline = _time_per_request(bare_app, "/webhooks/moodle/x", count)
    memory = _limiter()
    rows = [
        ("bare app (baseline)", baseline),
        ("unlimited path", _time_per_request(memory, "/credentials/x", count)),
        ("webhook, in-process", _time_per_request(memory, "/webhooks/moodle/x", count)),
        (
            "sign-in with email",
            _time_per_request(memory, "/account/sign-in", count, BODY),
        ),
        (
            "webhook, via proxy",
            _time_per_request(
                _limiter(proxies=["192.0.2.0/24"]), "/webhooks/moodle/x", count
            ),
        ),
    ]
    if arguments.redis:
        redis_count = min(count, 20_000)
        shared = _limiter(arguments.redis)
        rows.append(
            (
                "webhook, Redis",
                _time_per_request(shared, "/webhooks/moodle/x", redis_count),
            )
        )

    print(f"{'case':<22} {'us/request':>11} {'added us':>9} {'x baseline':>11}")
    for name, micros in rows:
        print(
            f"{name:<22} {micros:>11.2f} {micros - baseline:>9.2f} "
            f"{micros / baseline:>11.1f}"
        )


if __name__ == "__main__":
    main()
