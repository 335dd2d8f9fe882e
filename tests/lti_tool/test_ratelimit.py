"""Rate limits on sign-in, LTI launches, webhooks and the API, served by waitress.

Each test runs the bridge on a loopback port, as `hpass-bridge run` does, so the
limiter sees real sockets, real forwarded headers and real request bodies.
"""

from __future__ import annotations

import io
import logging
import re

import pytest
import requests

from lti_tool.accounts import AccountRole, create_account
from lti_tool.app import create_app
from lti_tool.config import DEFAULT_RATE_LIMITS, ConfigError, RateLimit, load_settings
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.proxy import WAITRESS_OPTIONS
from lti_tool.ratelimit import (
    UNREAD_FORM_EMAIL,
    MemoryBuckets,
    RateLimitMiddleware,
    _form_email,
    address_key,
    classify,
)
from lti_tool.rate_limit_page import session_locale_reader
from lti_tool.schema import upgrade
from lti_tool.views.account_session import account_interface
from tests.support.databases import reset_redis

PASSWORD = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"


class Served:
    def __init__(self, settings):
        upgrade(settings.database_url)
        self.app = create_app(settings)
        self.server = serve_in_thread(self.app, **WAITRESS_OPTIONS)
        self.url = self.server.url

    def close(self):
        self.server.stop()
        self.app.extensions["hpass"].engine.dispose()


@pytest.fixture
def serve(settings):
    started = []

    def start(**changes):
        for name, value in changes.items():
            setattr(settings, name, value)
        served = Served(settings)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


def _limits(**changes) -> dict[str, RateLimit]:
    return dict(DEFAULT_RATE_LIMITS, **changes)


def _sign_in(url: str, email: str, password: str = "wrong password!", **headers):
    return requests.post(
        f"{url}/account/sign-in",
        data={"email": email, "password": password},
        headers=headers,
        timeout=10,
        allow_redirects=False,
    )


def _is_rate_limited(response) -> bool:
    return response.status_code == 429 and "Retry-After" in response.headers


def test_sign_in_script_stopped(serve):
    """A script trying many emails from one address is stopped after the burst."""
    burst = 5
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=burst)))

    responses = [_sign_in(served.url, f"user{n}@example.org") for n in range(burst + 1)]

    assert not any(_is_rate_limited(response) for response in responses[:burst])
    last = responses[-1]
    assert _is_rate_limited(last)
    assert int(last.headers["Retry-After"]) >= 1
    assert last.headers["Content-Type"].startswith("text/html")
    assert "Too many sign-in attempts" in last.text
    assert "frame-ancestors 'none'" in last.headers["Content-Security-Policy"]
    assert last.headers["X-Content-Type-Options"] == "nosniff"


def _limited_sign_in(served, session=None, **headers):
    """Post sign-ins until one is rate-limited and return that response."""
    poster = session or requests
    for n in range(3):
        response = poster.post(
            f"{served.url}/account/sign-in",
            data={"email": f"lang{n}@example.org", "password": "wrong password!"},
            headers=headers,
            timeout=10,
            allow_redirects=False,
        )
        if response.status_code == 429:
            return response
    raise AssertionError("no sign-in was rate-limited")


def test_limit_page_in_arabic(serve):
    """The 429 page follows Accept-Language and is right-to-left in Arabic."""
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=1)))

    page = _limited_sign_in(served, **{"Accept-Language": "ar-EG,en;q=0.5"}).text

    assert '<html lang="ar" dir="rtl">' in page
    assert "<title>طلبات كثيرة جدًا</title>" in page
    assert "محاولات تسجيل دخول كثيرة جدًا" in page
    assert "ثم حاول مرة أخرى" in page
    assert "Too many" not in page


def test_limit_page_session_choice_wins(serve):
    """The language picked with the switcher beats the browser's Accept-Language."""
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=1)))
    session = requests.Session()
    session.get(f"{served.url}/account/sign-in?lang=es", timeout=10)

    page = _limited_sign_in(served, session, **{"Accept-Language": "fr"}).text

    assert '<html lang="es" dir="ltr">' in page
    assert "Demasiados intentos de inicio de sesión" in page
    assert "inténtelo de nuevo" in page


def test_limit_page_forged_session_ignored(serve):
    """An account cookie without a valid signature gives no language choice."""
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=1)))
    session = requests.Session()
    session.cookies.set("hpass_account", "eyJsb2NhbGVfY2hvaWNlIjoiYXIifQ.forged.sig")

    page = _limited_sign_in(served, session, **{"Accept-Language": "fr-CA"}).text

    assert '<html lang="fr" dir="ltr">' in page
    assert "Trop de tentatives de connexion" in page
    assert "réessayez" in page


def test_limit_page_reads_cookie_of_area(app):
    """Sign-in and admin paths read the account cookie's choice, and other paths
    the course session's choice and launch locale."""
    read = session_locale_reader(app)
    account = account_interface.get_signing_serializer(app).dumps(
        {"locale_choice": "ar"}
    )
    course = app.session_interface.get_signing_serializer(app).dumps(
        {"locale_choice": "es", "launch_locale": "fr"}
    )
    cookies = f"hpass_account={account}; hpass_session={course}"

    for path in ("/account/sign-in", "/admin/", "/lti/admin/deployments"):
        assert read({"PATH_INFO": path, "HTTP_COOKIE": cookies}) == ["ar"], path
    launch = {"PATH_INFO": "/lti/alpha/launch", "HTTP_COOKIE": cookies}
    assert read(launch) == ["es", "fr"]


def test_limit_page_english_default(serve):
    """Without any language signal the page is in English."""
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=1)))

    page = _limited_sign_in(served, **{"Accept-Language": "de"}).text

    assert '<html lang="en" dir="ltr">' in page
    assert "<h1>Too many requests</h1>" in page
    assert re.search(r"Wait \d+ seconds? and try again\.", page)


def test_sign_in_account_limit_across_addresses(serve):
    """Guesses at one account from many proxied addresses hit the account limit."""
    burst = 4
    served = serve(
        trusted_proxies=["127.0.0.1/32"],
        rate_limits=_limits(sign_in_account=RateLimit(per_minute=0.01, burst=burst)),
    )

    responses = [
        _sign_in(served.url, "Op@Example.org", **{"X-Forwarded-For": f"203.0.113.{n}"})
        for n in range(burst + 1)
    ]

    assert not any(_is_rate_limited(response) for response in responses[:burst])
    assert _is_rate_limited(responses[-1])
    other = _sign_in(
        served.url, "other@example.org", **{"X-Forwarded-For": "203.0.113.99"}
    )
    assert not _is_rate_limited(other)


def test_reset_not_blocked_by_guesses(serve):
    """Guesses that empty an account's sign-in bucket leave its reset form usable."""
    served = serve(
        rate_limits=_limits(sign_in_account=RateLimit(per_minute=0.01, burst=1))
    )

    first = _sign_in(served.url, "op@example.org")
    second = _sign_in(served.url, "op@example.org")
    reset = requests.post(
        f"{served.url}/account/reset", data={"email": "op@example.org"}, timeout=10
    )

    assert not _is_rate_limited(first)
    assert _is_rate_limited(second)
    assert not _is_rate_limited(reset)


def test_forged_forwarded_for_ignored(serve):
    """Without a trusted proxy, a client cannot pick a fresh key per request."""
    served = serve(rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=2)))

    responses = [
        _sign_in(
            served.url, f"u{n}@example.org", **{"X-Forwarded-For": f"198.51.100.{n}"}
        )
        for n in range(3)
    ]

    assert [_is_rate_limited(response) for response in responses] == [
        False,
        False,
        True,
    ]


def test_sign_in_body_reaches_app(serve, settings):
    """The limiter reads the form's email yet the view still gets the whole form."""
    served = serve()
    with served.app.extensions["hpass"].session() as db:
        create_account(
            db,
            email="op@example.org",
            password=PASSWORD,
            role=AccountRole.OPERATOR,
            provider_id=None,
        )
        db.commit()
    browser = requests.Session()
    form = browser.get(f"{served.url}/account/sign-in", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)

    response = browser.post(
        f"{served.url}/account/sign-in",
        data={"csrf": csrf, "email": "op@example.org", "password": PASSWORD},
        timeout=10,
        allow_redirects=False,
    )

    assert response.status_code == 303


def _padded_form(field_count: int, **fields: str) -> dict[str, str]:
    padding = {f"extra{n}": "x" for n in range(field_count - len(fields))}
    return {**padding, **fields}


def test_reset_many_fields_without_email(serve):
    """A reset form of 25 fields and no email gets the form's 400, not a 500."""
    served = serve()

    response = requests.post(
        f"{served.url}/account/reset", data=_padded_form(25), timeout=10
    )

    assert response.status_code == 400
    assert "Traceback" not in response.text


def test_reset_many_fields_keeps_account_limit(serve):
    """Padding a form past 20 fields does not skip the account's bucket."""
    served = serve(
        rate_limits=_limits(sign_in_account=RateLimit(per_minute=0.01, burst=1))
    )
    form = _padded_form(25, email="op@example.org")

    first = requests.post(f"{served.url}/account/reset", data=form, timeout=10)
    second = requests.post(f"{served.url}/account/reset", data=form, timeout=10)

    assert not _is_rate_limited(first)
    assert _is_rate_limited(second)


MULTIPART_BOUNDARY = "formBoundary7MA4YWxk"


def _multipart(**fields: str) -> bytes:
    parts = [
        f"--{MULTIPART_BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{MULTIPART_BOUNDARY}--\r\n").encode()


def _form_environ(content_type: str, body: bytes) -> dict:
    return {
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"email=Op%40Example.org&password=x"),
        ("Application/X-WWW-Form-Urlencoded", b"email=Op%40Example.org&password=x"),
        (
            "APPLICATION/X-WWW-FORM-URLENCODED; Charset=UTF-8",
            b"password=x&email=+Op@Example.org+",
        ),
        (
            f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
            _multipart(password="x", email="Op@Example.org"),
        ),
        (
            f"Multipart/Form-Data; Boundary={MULTIPART_BOUNDARY}",
            _multipart(email=" Op@Example.org "),
        ),
    ],
    ids=[
        "urlencoded",
        "mixed-case",
        "upper-case-charset",
        "multipart",
        "multipart-case",
    ],
)
def test_form_email_read(content_type, body):
    """The email is read from every form body the app reads, and the body is kept."""
    environ = _form_environ(content_type, body)

    assert _form_email(environ) == "op@example.org"
    assert environ["wsgi.input"].read() == body
    assert environ["CONTENT_LENGTH"] == str(len(body))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"email=op@example.org"),
        ("application/json", b'{"email": "op@example.org"}'),
        ("multipart/form-data", _multipart(email="op@example.org")),
        (f"multipart/form-data; boundary={MULTIPART_BOUNDARY}", b"not multipart"),
        ("application/x-www-form-urlencoded", b"password=x"),
    ],
    ids=["text", "json", "multipart-no-boundary", "multipart-broken", "no-email"],
)
def test_form_email_missing(content_type, body):
    """A body the app does not read as a form, or a form without email, gives ""."""
    environ = _form_environ(content_type, body)

    assert _form_email(environ) == ""
    assert environ["wsgi.input"].read() == body


def test_form_email_many_fields():
    """The email is found after more than 20 other fields."""
    body = "&".join(f"extra{n}=x" for n in range(25)) + "&email=op@example.org"

    assert _form_email(_form_environ(FORM, body.encode())) == "op@example.org"


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        (
            "Application/X-WWW-Form-Urlencoded",
            b"email=op%40example.org&password=wrong+password%21",
        ),
        (
            f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
            _multipart(email="op@example.org", password="wrong password!"),
        ),
    ],
    ids=["mixed-case-urlencoded", "multipart"],
)
def test_sign_in_account_limit_any_form_type(serve, content_type, data):
    """The account bucket applies to mixed-case urlencoded and multipart sign-ins."""
    served = serve(
        rate_limits=_limits(sign_in_account=RateLimit(per_minute=0.01, burst=1))
    )

    responses = [
        requests.post(
            f"{served.url}/account/sign-in",
            data=data,
            headers={"Content-Type": content_type},
            timeout=10,
            allow_redirects=False,
        )
        for _ in range(2)
    ]

    assert not _is_rate_limited(responses[0])
    assert _is_rate_limited(responses[1])


def test_multipart_sign_in_reaches_app(serve):
    """A multipart sign-in still reaches the view whole after the limiter reads it."""
    served = serve()
    with served.app.extensions["hpass"].session() as db:
        create_account(
            db,
            email="op@example.org",
            password=PASSWORD,
            role=AccountRole.OPERATOR,
            provider_id=None,
        )
        db.commit()
    browser = requests.Session()
    form = browser.get(f"{served.url}/account/sign-in", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)

    response = browser.post(
        f"{served.url}/account/sign-in",
        data=_multipart(csrf=csrf, email="op@example.org", password=PASSWORD),
        headers={"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"},
        timeout=10,
        allow_redirects=False,
    )

    assert response.status_code == 303


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::9", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("fe80::1%eth0", "fe80::/64"),
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_address_key(address, key):
    """IPv6 clients are keyed by their /64 network and IPv4 ones by their address."""
    assert address_key(address) == key


def test_sign_in_limit_per_ipv6_network(serve):
    """Addresses of one IPv6 /64 share a bucket, and another /64 has its own."""
    served = serve(
        trusted_proxies=["127.0.0.1/32"],
        rate_limits=_limits(sign_in=RateLimit(per_minute=0.01, burst=2)),
    )

    same_network = [
        _sign_in(
            served.url, f"u{n}@example.org", **{"X-Forwarded-For": f"2001:db8:1:2::{n}"}
        )
        for n in range(1, 4)
    ]
    other_network = _sign_in(
        served.url, "u9@example.org", **{"X-Forwarded-For": "2001:db8:1:3::1"}
    )

    assert [_is_rate_limited(response) for response in same_network] == [
        False,
        False,
        True,
    ]
    assert not _is_rate_limited(other_network)


@pytest.mark.parametrize(
    "environ",
    [
        {"CONTENT_TYPE": FORM, "wsgi.input": io.BytesIO(b"email=op@example.org")},
        {"CONTENT_TYPE": FORM, "CONTENT_LENGTH": "x", "wsgi.input": io.BytesIO()},
        {
            "CONTENT_TYPE": FORM,
            "CONTENT_LENGTH": str(20 * 1024),
            "wsgi.input": io.BytesIO(b"x" * 20 * 1024),
        },
    ],
    ids=["no-length", "invalid-length", "over-limit"],
)
def test_form_email_unread(environ):
    """A form body that is not read gets the shared unread key, and stays unread."""
    position = environ["wsgi.input"].tell()

    assert _form_email(environ) == UNREAD_FORM_EMAIL
    assert environ["wsgi.input"].tell() == position


def test_form_email_empty_body():
    """A form with Content-Length 0 has no email, and is not counted as unread."""
    environ = {"CONTENT_TYPE": FORM, "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()}

    assert _form_email(environ) == ""


def test_oversized_sign_ins_share_bucket(serve):
    """Sign-ins padded past the read limit share one account bucket."""
    served = serve(
        rate_limits=_limits(sign_in_account=RateLimit(per_minute=0.01, burst=1))
    )
    padding = "x" * (20 * 1024)

    responses = [
        requests.post(
            f"{served.url}/account/sign-in",
            data={"email": f"u{n}@example.org", "password": "wrong", "pad": padding},
            timeout=10,
            allow_redirects=False,
        )
        for n in range(2)
    ]
    small = _sign_in(served.url, "u9@example.org")

    assert not _is_rate_limited(responses[0])
    assert _is_rate_limited(responses[1])
    assert not _is_rate_limited(small)


def test_webhook_limit_answers_json(serve, caplog):
    """Webhooks over the limit get a JSON 429 with Retry-After, and it is logged."""
    served = serve(rate_limits=_limits(webhook=RateLimit(per_minute=1, burst=3)))
    url = f"{served.url}/webhooks/moodle/unknown"

    with caplog.at_level(logging.WARNING, logger="lti_tool.ratelimit"):
        statuses = [
            requests.post(url, json={}, timeout=10).status_code for _ in range(3)
        ]
        rejected = requests.post(url, json={}, timeout=10)

    assert 429 not in statuses
    assert rejected.status_code == 429
    retry_after = int(rejected.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    body = rejected.json()
    assert body["error"] == "rate_limited"
    assert body["limit_class"] == "webhook"
    assert body["retry_after"] == retry_after
    assert f"Wait {retry_after} seconds" in body["message"]
    logged = [
        record for record in caplog.records if "rate_limited" in record.getMessage()
    ]
    assert logged
    assert "127.0.0.1" in logged[0].getMessage()


def test_launch_limit_html(serve):
    """LTI logins over the limit get an HTML page the LMS frame may show."""
    served = serve(rate_limits=_limits(lti_launch=RateLimit(per_minute=6, burst=1)))
    url = f"{served.url}/lti/unknown/login"

    first = requests.get(url, timeout=10)
    second = requests.post(f"{served.url}/lti/unknown/launch", timeout=10)

    assert first.status_code != 429
    assert _is_rate_limited(second)
    assert 1 <= int(second.headers["Retry-After"]) <= 10
    assert "frame-ancestors" not in second.headers["Content-Security-Policy"]
    assert "Too many course launches" in second.text


def test_launch_limit_page_lang_query(serve):
    """A `?lang=` on the rejected launch picks the page's language."""
    served = serve(rate_limits=_limits(lti_launch=RateLimit(per_minute=6, burst=1)))
    url = f"{served.url}/lti/unknown/launch?lang=fr"

    requests.post(url, timeout=10)
    limited = requests.post(url, headers={"Accept-Language": "es"}, timeout=10)

    assert _is_rate_limited(limited)
    assert '<html lang="fr" dir="ltr">' in limited.text
    assert "Trop de lancements de cours" in limited.text


def test_other_paths_not_limited(serve):
    """Pages outside the limited classes are never counted."""
    served = serve(
        rate_limits={
            name: RateLimit(per_minute=1, burst=1) for name in DEFAULT_RATE_LIMITS
        }
    )

    statuses = [
        requests.get(f"{served.url}/health", timeout=10).status_code for _ in range(5)
    ]
    forms = [
        requests.get(f"{served.url}/account/sign-in", timeout=10).status_code
        for _ in range(3)
    ]

    assert 429 not in statuses
    assert 429 not in forms


def test_limiter_outside_fast_path(serve):
    """A WSGI fast path installed around `wsgi_app` later is still limited."""
    served = serve(rate_limits=_limits(webhook=RateLimit(per_minute=1, burst=1)))
    inner = served.app.wsgi_app

    def fast_path(environ, start_response):
        if environ["PATH_INFO"].startswith("/webhooks/"):
            start_response("202 Accepted", [("Content-Length", "0")])
            return [b""]
        return inner(environ, start_response)

    served.app.wsgi_app = fast_path
    url = f"{served.url}/webhooks/canvas/any"

    statuses = [requests.post(url, timeout=10).status_code for _ in range(2)]

    assert statuses == [202, 429]


def test_rate_limits_switch_off(serve):
    """With rate limits off nothing is rejected."""
    served = serve(
        rate_limits_enabled=False,
        rate_limits=_limits(webhook=RateLimit(per_minute=1, burst=1)),
    )
    url = f"{served.url}/webhooks/moodle/unknown"

    statuses = [requests.post(url, json={}, timeout=10).status_code for _ in range(3)]

    assert 429 not in statuses


def test_redis_buckets_shared(serve):
    """Two web processes on one Redis share one budget per address."""
    url = reset_redis()
    limits = _limits(webhook=RateLimit(per_minute=1, burst=2))
    first = serve(rate_limits=limits, rate_limit_redis_url=url)
    second = serve(rate_limits=limits, rate_limit_redis_url=url)

    statuses = [
        requests.post(f"{served.url}/webhooks/moodle/x", timeout=10).status_code
        for served in (first, second, first)
    ]

    assert 429 not in statuses[:2]
    assert statuses[2] == 429


def test_redis_down_falls_back(serve, caplog):
    """With Redis unreachable, requests are limited in the process and logged."""
    served = serve(
        rate_limits=_limits(webhook=RateLimit(per_minute=1, burst=1)),
        rate_limit_redis_url="redis://127.0.0.1:1/0",
    )
    url = f"{served.url}/webhooks/moodle/x"

    with caplog.at_level(logging.ERROR, logger="lti_tool.ratelimit"):
        statuses = [requests.post(url, timeout=10).status_code for _ in range(2)]

    assert statuses[1] == 429
    assert any("rate_limit_store_failed" in r.getMessage() for r in caplog.records)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_defaults_admit_class_behind_nat():
    """500 learners behind one NAT launching within a minute are all admitted."""
    clock = _Clock()
    buckets = MemoryBuckets(clock=clock)
    limit = DEFAULT_RATE_LIMITS["lti_launch"]
    verdicts = []

    for learner in range(500):
        clock.now = learner * 60 / 500
        for _ in ("login", "launch"):
            verdicts.append(buckets.take([("lti_launch:192.0.2.1", limit)]).allowed)

    assert all(verdicts)


def test_defaults_admit_event_burst():
    """An LMS sending 10,000 completion events at once is not rejected."""
    buckets = MemoryBuckets(clock=_Clock())
    limit = DEFAULT_RATE_LIMITS["webhook"]

    verdicts = [
        buckets.take([("webhook:192.0.2.2", limit)]).allowed for _ in range(10_000)
    ]

    assert all(verdicts)


def test_defaults_slow_password_script():
    """A guessing script running for an hour gets at most about 620 tries."""
    clock = _Clock()
    buckets = MemoryBuckets(clock=clock)
    limit = DEFAULT_RATE_LIMITS["sign_in"]
    admitted = 0

    for tick in range(3600 * 10):
        clock.now = tick / 10
        admitted += buckets.take([("sign_in:192.0.2.3", limit)]).allowed

    assert admitted <= limit.burst + 60 * limit.per_minute


def test_failed_request_takes_no_token():
    """A request rejected by one bucket takes nothing from the others."""
    buckets = MemoryBuckets(clock=_Clock())
    empty = RateLimit(per_minute=1, burst=1)
    roomy = RateLimit(per_minute=1, burst=2)
    buckets.take([("a", empty)])

    assert not buckets.take([("a", empty), ("b", roomy)]).allowed
    assert buckets.take([("b", roomy)]).allowed
    assert buckets.take([("b", roomy)]).allowed


def test_one_bucket_same_as_several():
    """A request with one bucket gets the verdicts and waits of the general path."""
    clock = _Clock()
    single = MemoryBuckets(clock=clock)
    several = MemoryBuckets(clock=clock)
    limit = RateLimit(per_minute=6, burst=2)
    roomy = RateLimit(per_minute=600, burst=100)
    for tick in range(40):
        clock.now = tick * 1.5
        alone = single.take([("a", limit)])
        paired = several.take([("a", limit), ("b", roomy)])

        assert alone.allowed == paired.allowed, tick
        assert alone.retry_after == pytest.approx(paired.retry_after), tick
        assert single._buckets["a"] == several._buckets["a"], tick


def test_one_bucket_rejects_when_empty():
    """An empty single bucket rejects with the time until its next token."""
    clock = _Clock()
    buckets = MemoryBuckets(clock=clock)
    limit = RateLimit(per_minute=6, burst=1)
    assert buckets.take([("a", limit)]).allowed

    clock.now = 4
    verdict = buckets.take([("a", limit)])

    assert not verdict.allowed
    assert verdict.retry_after == pytest.approx(6)


def test_slow_bucket_kept_when_full():
    """A full table keeps a bucket that a slower limit is still refilling."""
    clock = _Clock()
    buckets = MemoryBuckets(clock=clock, max_buckets=2, refill_seconds=600)
    slow = RateLimit(per_minute=0.1, burst=1)
    fast = RateLimit(per_minute=60, burst=1)
    buckets.take([("stale", fast)])
    clock.now = 700
    buckets.take([("slow", slow)])

    clock.now = 730
    assert buckets.take([("other", fast)]).allowed

    assert "stale" not in buckets._buckets
    assert not buckets.take([("slow", slow)]).allowed


def test_idle_buckets_dropped():
    """When the table is full, buckets idle long enough to be full are dropped."""
    clock = _Clock()
    buckets = MemoryBuckets(clock=clock, max_buckets=3)
    limit = RateLimit(per_minute=60, burst=1)
    for key in ("a", "b", "c"):
        buckets.take([(key, limit)])

    clock.now = 5
    assert buckets.take([("d", limit)]).allowed
    assert len(buckets._buckets) == 1


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/account/sign-in", "sign_in"),
        ("POST", "/account/reset", "sign_in"),
        ("POST", "/account/invitation/abc", "sign_in"),
        ("POST", "/account/password", "sign_in"),
        ("GET", "/account/password", None),
        ("GET", "/account/sign-in", None),
        ("POST", "/account/sign-out", None),
        ("GET", "/lti/reg1/login", "lti_launch"),
        ("POST", "/lti/reg1/launch", "lti_launch"),
        ("GET", "/lti/reg1/jwks", None),
        ("POST", "/webhooks/moodle/abc", "webhook"),
        ("POST", "/webhooks/canvas/abc", "webhook"),
        ("GET", "/api/v1/awards", "api"),
        ("GET", "/credentials/abc", None),
    ],
)
def test_classify_paths(method, path, expected):
    """Requests are sorted into limit classes by method and path."""
    assert classify(method, path) == expected


def test_settings_from_environment(tmp_path):
    """Each class's limit and the bucket store are read from the environment."""
    settings = load_settings(
        environ={
            "HPASS_INSTANCE_PATH": str(tmp_path),
            "HPASS_RATE_LIMIT_WEBHOOK_PER_MINUTE": "120",
            "HPASS_RATE_LIMIT_WEBHOOK_BURST": "40",
            "HPASS_BROKER_URL": "redis://127.0.0.1:6379/3",
        }
    )

    assert settings.rate_limits["webhook"] == RateLimit(per_minute=120, burst=40)
    assert settings.rate_limits["sign_in"] == DEFAULT_RATE_LIMITS["sign_in"]
    assert settings.rate_limit_redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("HPASS_RATE_LIMIT_SIGN_IN_BURST", "0.5", "at least 1"),
        ("HPASS_RATE_LIMIT_API_PER_MINUTE", "0", "greater than 0"),
        ("HPASS_RATE_LIMIT_API_PER_MINUTE", "lots", "must be a number"),
        ("HPASS_RATE_LIMIT_STORE", "memcached://x", "memory or a redis"),
    ],
)
def test_bad_rate_limit_settings(tmp_path, variable, value, fragment):
    """Invalid limit settings are rejected with the variable named."""
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"HPASS_INSTANCE_PATH": str(tmp_path), variable: value})

    assert variable in str(raised.value)
    assert fragment in str(raised.value)


def test_memory_store_forced(tmp_path):
    """`HPASS_RATE_LIMIT_STORE=memory` keeps buckets in-process beside a Redis broker."""
    settings = load_settings(
        environ={
            "HPASS_INSTANCE_PATH": str(tmp_path),
            "HPASS_BROKER_URL": "redis://127.0.0.1:6379/3",
            "HPASS_RATE_LIMIT_STORE": "memory",
        }
    )

    assert settings.rate_limit_redis_url == ""
    middleware = RateLimitMiddleware(lambda *args: [], settings)
    assert isinstance(middleware.buckets, MemoryBuckets)
