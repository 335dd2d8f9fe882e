"""Security headers on every HTML page: framing policy, nosniff and HSTS.

The crawl visits each GET route of the app: public, course, admin, sign-in, LTI and
demo pages, and the error pages of unknown ids. It visits them as a visitor, as an LTI
learner, as an instructor and as a signed-in admin, and checks every HTML response.
"""

from __future__ import annotations

import re

import pytest
import requests

from lti_tool.accounts import AccountRole
from lti_tool.app import create_app
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.proxy import WAITRESS_OPTIONS
from lti_tool.schema import upgrade

from .conftest import PLATFORM, add_account, add_credential, launch_as, sign_in

ALPHA_ORIGIN = PLATFORM.format(slug="alpha")
# Pages that hold a password form or admin actions; never framed by anyone.
NEVER_FRAMED = ("/account/", "/admin/")


@pytest.fixture
def demo_app(settings):
    settings.demo = True
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["hpass"].engine.dispose()


def _fill(rule, values: dict[str, str]) -> str:
    """Return the rule's URL with each argument taken from `values`, or 'unknown'."""
    path = rule.rule
    for argument in rule.arguments:
        value = values.get(argument, "unknown")
        path = re.sub(r"<(?:[^:<>]+:)?" + argument + ">", str(value), path)
    return path


def _html_urls(app, values: dict[str, str]) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        urls.append(_fill(rule, values))
    # Error pages: an unknown path, an unknown id, a wrong method.
    urls += ["/no-such-page", "/credentials/no-such-credential", "/account/sign-out"]
    return sorted(set(urls))


def _frame_ancestors(policy: str) -> str:
    match = re.search(r"frame-ancestors ([^;]+)", policy)
    assert match, f"no frame-ancestors in {policy!r}"
    return match.group(1)


def _check_html(path: str, response, *, course_origin: str | None) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", path
    policy = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in policy, path
    assert "object-src 'none'" in policy, path
    assert "script-src 'self'" in policy, path
    ancestors = _frame_ancestors(policy)
    if path.startswith(NEVER_FRAMED) and not path.startswith("/lti/"):
        assert ancestors == "'none'", path
        assert headers.get("X-Frame-Options") == "DENY", path
    elif course_origin and path.startswith(("/course/", "/portfolio/")):
        assert course_origin in ancestors.split(), path
    assert "Strict-Transport-Security" not in headers, path


def _crawl(client, urls, *, course_origin=None) -> list[str]:
    checked = []
    for path in urls:
        response = client.get(path)
        # Status codes vary (the seeded credential is not signed, so its OB 2.0
        # views fail); the headers must not.
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
        if response.mimetype == "text/html":
            _check_html(path, response, course_origin=course_origin)
            checked.append(path)
    return checked


def _values(db, tenant) -> dict[str, str]:
    credential = add_credential(db, tenant)
    return {
        "course_id": tenant.course_id,
        "public_id": credential.public_id,
        "slug": "alpha",
    }


def test_crawl_as_visitor(app, client, db, tenants):
    """Every page a visitor reaches is HTML with a policy that forbids framing."""
    urls = _html_urls(app, _values(db, tenants[0]))

    checked = _crawl(client, urls)

    assert len(checked) > 20
    for path in checked:
        ancestors = _frame_ancestors(
            client.get(path).headers["Content-Security-Policy"]
        )
        if path.startswith(("/lti/", "/course/")):
            # Without a launch the platform is unknown, so only the bridge may frame.
            assert ancestors in ("'self'", "'none'"), path
        else:
            assert ancestors == "'none'", path


def test_crawl_as_learner(app, client, db, tenants):
    """Inside an LTI launch, course pages may be framed by the platform only."""
    urls = _html_urls(app, _values(db, tenants[0]))
    launch_as(client, tenants[0], "learner")

    checked = _crawl(client, urls, course_origin=ALPHA_ORIGIN)

    course_page = client.get(f"/course/{tenants[0].course_id}")
    ancestors = _frame_ancestors(course_page.headers["Content-Security-Policy"]).split()
    assert ancestors == ["'self'", ALPHA_ORIGIN]
    assert "X-Frame-Options" not in course_page.headers
    assert any(path.startswith("/course/") for path in checked)


def _form_action(policy: str) -> list[str]:
    match = re.search(r"form-action ([^;]+)", policy)
    assert match, f"no form-action in {policy!r}"
    return match.group(1).split()


def test_learner_page_forms_may_lead_to_portfolio(app, client, db, tenants):
    """The learner's course page contains the portfolio link form, whose POST gets
    a redirect to the portfolio's sign-in page on another site. So its forms may
    lead to HTTPS addresses, and the instructor's page keeps them on the bridge."""
    launch_as(client, tenants[0], "learner")
    learner_page = client.get(f"/course/{tenants[0].course_id}")
    assert 'action="/portfolio/link"' in learner_page.text
    # Plain HTTP portfolios only in loopback development, as in the test app.
    loopback = ["http:"] if app.extensions["hpass"].settings.loopback_dev else []
    assert _form_action(learner_page.headers["Content-Security-Policy"]) == [
        "'self'",
        "https:",
        *loopback,
    ]

    launch_as(client, tenants[0], "instructor")
    instructor_page = client.get(f"/course/{tenants[0].course_id}")
    assert _form_action(instructor_page.headers["Content-Security-Policy"]) == [
        "'self'"
    ]


def test_crawl_as_instructor(app, client, db, tenants):
    """An instructor's course, history and portfolio pages are framed by the platform."""
    values = _values(db, tenants[0])
    values["public_id"] = tenants[0].achievement_public_id
    urls = _html_urls(app, values)
    launch_as(client, tenants[0], "instructor")

    checked = _crawl(client, urls, course_origin=ALPHA_ORIGIN)

    assert any(path.endswith("/archive") for path in checked)
    assert "/portfolio/callback" in checked


def test_crawl_as_admin(app, client, db, tenants):
    """Signed-in admin pages are never framed."""
    add_account(
        db,
        "admin@alpha.example.org",
        AccountRole.PROVIDER_ADMIN,
        tenants[0].provider_id,
    )
    assert sign_in(client, "admin@alpha.example.org").status_code == 303
    urls = _html_urls(app, _values(db, tenants[0]))

    checked = _crawl(client, urls)

    admin_pages = [path for path in checked if path.startswith("/admin/")]
    assert admin_pages


def test_demo_pages_have_headers(demo_app):
    """The demo page gets the same default policy as every other page."""
    client = demo_app.test_client()

    response = client.get("/demo/")

    assert response.mimetype == "text/html"
    assert _frame_ancestors(response.headers["Content-Security-Policy"]) == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_error_pages_have_headers(app, client):
    """404, 405 and 500 pages carry the default policy and nosniff."""

    @app.get("/_fail")
    def fail():
        raise RuntimeError("boom")

    for path, method, status in [
        ("/no-such-page", "get", 404),
        ("/account/sign-out", "get", 405),
        ("/_fail", "get", 500),
    ]:
        response = getattr(client, method)(path, headers={"Accept": "text/html"})
        assert response.status_code == status
        assert response.mimetype == "text/html"
        assert _frame_ancestors(response.headers["Content-Security-Policy"]) == "'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_launch_error_framed_by_platform(client, tenants, db):
    """A rejected launch's error page shows inside the platform's frame."""
    from lti_tool.models import Registration

    public_id = db.get(Registration, tenants[0].registration_id).public_id

    response = client.post(f"/lti/{public_id}/launch", data={"id_token": "x"})

    assert response.status_code == 400
    policy = response.headers["Content-Security-Policy"]
    assert ALPHA_ORIGIN in _frame_ancestors(policy).split()
    assert "form-action 'self' https: http:" in policy


def test_json_gets_nosniff(client):
    """JSON responses get nosniff but no page policy."""
    response = client.get("/health")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_hsts_over_https(client):
    """A request that came over HTTPS gets HSTS; plain HTTP gets none."""
    secure = client.get("/account/sign-in", base_url="https://127.0.0.1")
    plain = client.get("/account/sign-in")

    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.headers


@pytest.mark.parametrize(
    ("trusted", "expected"), [(["127.0.0.1/32"], True), ([], False)]
)
def test_hsts_behind_proxy(settings, trusted, expected):
    """Behind a trusted TLS proxy pages get HSTS; a forged header from others does not."""
    settings.trusted_proxies = trusted
    upgrade(settings.database_url)
    app = create_app(settings)
    server = serve_in_thread(app, **WAITRESS_OPTIONS)
    try:
        response = requests.get(
            f"{server.url}/account/sign-in",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
    finally:
        server.stop()
        app.extensions["hpass"].engine.dispose()

    assert ("Strict-Transport-Security" in response.headers) is expected
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_csrf_empty_token_rejected(client):
    """A form post without a session token is rejected, even with an empty field."""
    response = client.post(
        "/account/sign-in",
        data={"email": "op@example.org", "password": "x", "csrf": ""},
    )

    assert response.status_code == 400
    assert b"The form expired" in response.data


@pytest.mark.parametrize(
    ("origin", "return_url", "expected"),
    [
        ("https://school.instructure.com", None, ["https://school.instructure.com"]),
        (
            "null",
            "https://school.instructure.com/courses/1/external_content/success",
            ["https://school.instructure.com"],
        ),
        (None, ["not", "a", "url"], []),
        ("javascript:alert(1)", "ftp://files.example.org/", []),
    ],
    ids=["origin", "return-url", "not-a-string", "other-schemes"],
)
def test_launch_frame_origins(origin, return_url, expected):
    """Only http(s) origins of the launch's Origin and return URL are kept."""
    from lti_tool.views.headers import launch_frame_origins

    assert launch_frame_origins(origin, return_url) == expected
