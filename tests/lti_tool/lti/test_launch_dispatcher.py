"""Logins and launches handled ahead of Flask, and the registration rows they cache."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, event, update
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from lti_tool.lti import nonces
from lti_tool.lti.launch import CLAIM, DL_CLAIM, STATE_COOKIE_PREFIX
from lti_tool.lti.row_cache import LaunchRowCache
from lti_tool.models import Deployment, DeploymentStatus, LtiUsedNonce, Registration
from lti_tool.views.lti_launch import LaunchDispatcher, PlainRedirect

ROUTING_CASES = [
    ("GET", "/lti/{id}/login"),
    ("POST", "/lti/{id}/login"),
    ("HEAD", "/lti/{id}/login"),
    ("OPTIONS", "/lti/{id}/login"),
    ("PUT", "/lti/{id}/login"),
    ("POST", "/lti/{id}/launch"),
    ("GET", "/lti/{id}/launch"),
    ("GET", "/lti/register/login"),
    ("POST", "/lti/register/launch"),
    ("POST", "/lti/register/login"),
    ("HEAD", "/lti/register/login"),
    ("GET", "/lti/admin/login"),
    ("POST", "/lti/admin/launch"),
    ("GET", "/lti/{id}/login/"),
    ("GET", "/lti/a/{id}/login"),
    ("GET", "/lti//login"),
    ("GET", "/lti/{id}/jwks"),
]


def _flask_route(app, method: str, path: str) -> tuple[str | None, dict]:
    environ = EnvironBuilder(path=path, method=method).get_environ()
    try:
        return app.url_map.bind_to_environ(environ).match()
    except (HTTPException, RequestRedirect):
        return None, {}


@pytest.mark.parametrize(("method", "path"), ROUTING_CASES)
def test_dispatcher_routes_like_flask(app, method, path):
    """The dispatcher takes a request exactly when Flask routes it to login or launch."""
    dispatcher = LaunchDispatcher(app, app.wsgi_app)
    path = path.format(id="3f0c2a9e-registration")
    environ = EnvironBuilder(path=path, method=method).get_environ()

    endpoint, public_id = dispatcher._match(environ)

    expected, args = _flask_route(app, method, path)
    if method in ("GET", "POST", "HEAD") and expected in ("lti.login", "lti.launch"):
        assert endpoint == expected
        assert public_id == args["public_id"]
    else:
        assert endpoint is None


def test_launch_opens_course_page(tool, platform):
    """The session cookie set by a launch opens the course page it redirects to."""
    login = tool.start()
    response = tool.launch(
        platform.sign(platform.claims(login.nonce, tool.target_link_uri)), login.state
    )
    assert response.status_code == 302, response.text

    page = tool.http.get(
        tool.tool_url + response.headers["Location"], allow_redirects=False, timeout=10
    )

    assert page.status_code == 200
    assert "Course one" in page.text
    assert response.headers["Vary"] == "Cookie"


def test_request_id_echoed(tool, platform):
    """Logins, launches and their error pages return the caller's X-Request-ID."""
    tool.http.headers["X-Request-ID"] = "trace-123"
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri)

    launched = tool.launch(platform.sign(claims), login.state)
    replayed = tool.launch(platform.sign(claims), login.state)

    assert launched.status_code == 302
    assert replayed.status_code == 400
    assert "already used" in replayed.text
    for response in (tool.login(), launched, replayed):
        assert response.headers["X-Request-ID"] == "trace-123"


def test_rejected_launch_logged_with_ids(tool, platform, caplog):
    """A launch rejected ahead of Flask is logged with its issuer and client_id."""
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, lti_version="1.1")

    response = tool.launch(platform.sign(claims), login.state)

    assert response.status_code == 400
    rejected = [r for r in caplog.records if "request_rejected" in r.getMessage()]
    assert rejected
    message = rejected[-1].getMessage()
    assert platform.issuer in message
    assert "client-1" in message


def test_deep_linking_replay_rejected(tool, platform):
    """A Deep Linking launch uses its nonce, so a replay with its cookie gets 400."""
    login = tool.start()
    claims = platform.claims(
        login.nonce,
        tool.target_link_uri,
        lti_message_type="LtiDeepLinkingRequest",
        lti_roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    )
    claims[DL_CLAIM + "deep_linking_settings"] = {
        "deep_link_return_url": f"{platform.issuer}/deep-link-return",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"],
    }
    claims.pop(CLAIM + "resource_link")
    token = platform.sign(claims)

    first = tool.launch(token, login.state)
    # A replay of the captured request carries the state cookie the launch deleted.
    tool.http.cookies.set(STATE_COOKIE_PREFIX + login.state, login.state, path="/lti/")
    again = tool.launch(token, login.state)

    assert first.status_code == 302, first.text
    assert first.headers["Location"].endswith("/deep-link")
    assert again.status_code == 400
    assert "already used" in again.text


def _count_reads(engine, table: str):
    reads: list[str] = []

    def record(connection, cursor, statement, *args):
        text = " ".join(statement.split()).upper()
        if text.startswith("SELECT") and f"FROM {table.upper()}" in text:
            reads.append(text)

    event.listen(engine, "before_cursor_execute", record)
    return reads, lambda: event.remove(engine, "before_cursor_execute", record)


def test_second_launch_reads_no_rows(app, tool, platform, monkeypatch):
    """A second launch reads its registration and deployment from the cache."""
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    login = tool.start()
    tool.launch(
        platform.sign(platform.claims(login.nonce, tool.target_link_uri)), login.state
    )
    engine = app.extensions["hpass"].engine
    registrations, stop_registrations = _count_reads(engine, "lti_registrations")
    deployments, stop_deployments = _count_reads(engine, "lti_deployments")
    try:
        login = tool.start()
        claims = platform.claims(login.nonce, tool.target_link_uri)
        response = tool.launch(platform.sign(claims), login.state)
    finally:
        stop_registrations()
        stop_deployments()

    assert response.status_code == 302
    assert registrations == []
    assert deployments == []


def test_registration_change_clears_cache(tool, db, registration):
    """A registration changed through a session of this process applies at once."""
    assert tool.login().status_code == 302

    registration.issuer = "http://127.0.0.1:9/moved"
    db.commit()
    response = tool.login()

    assert response.status_code == 400
    assert "http://127.0.0.1:9/moved" in response.text


def test_bulk_delete_clears_cache(app, tool, db, registration):
    """A bulk DELETE of deployments run through a session clears the cache."""
    assert tool.login().status_code == 302
    rows = app.extensions["hpass_lti_launch"].rows
    assert registration.public_id in rows._registrations

    db.execute(
        delete(Deployment).where(
            Deployment.provider_id == registration.provider_id,
            Deployment.registration_id == registration.id,
        )
    )
    db.commit()

    assert registration.public_id not in rows._registrations


def test_removed_registration_launch_404(app, tool, platform, registration):
    """A registration removed by another process gets a 404 at launch, not a 500.

    Its logins still succeed while the registration row is cached, because a login
    reads and writes nothing in the database.
    """
    assert tool.login().status_code == 302
    engine = app.extensions["hpass"].engine
    with engine.begin() as connection:
        for model in (LtiUsedNonce, Deployment):
            connection.execute(
                delete(model).where(model.registration_id == registration.id)
            )
        connection.execute(
            delete(Registration).where(Registration.id == registration.id)
        )

    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri)
    response = tool.launch(platform.sign(claims), login.state)

    assert response.status_code == 404
    assert registration.public_id in response.text


def test_row_cache_expires(app, registration, monkeypatch):
    """A change made outside this process's sessions is read once the entry expires."""
    engine = app.extensions["hpass"].engine
    cache = LaunchRowCache(max_age_seconds=10)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    with engine.connect() as connection:
        assert (
            cache.registration(connection, registration.public_id).client_id
            == "client-1"
        )
    with engine.begin() as connection:
        connection.execute(
            update(Registration)
            .where(Registration.id == registration.id)
            .values(client_id="client-2")
        )

    with engine.connect() as connection:
        cached = cache.registration(connection, registration.public_id)
        clock[0] += 10
        expired = cache.registration(connection, registration.public_id)

    assert cached.client_id == "client-1"
    assert expired.client_id == "client-2"


def test_held_deployment_not_cached(app, db, registration):
    """A held deployment is read again on every launch, so an approval applies at once."""
    engine = app.extensions["hpass"].engine
    db.add(
        Deployment(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            deployment_id="held-1",
            status=DeploymentStatus.HELD.value,
        )
    )
    db.commit()
    cache = LaunchRowCache()
    with engine.connect() as connection:
        row = cache.registration(connection, registration.public_id)
        held = cache.deployment(connection, row, "held-1")
    with engine.begin() as connection:
        connection.execute(
            update(Deployment)
            .where(Deployment.deployment_id == "held-1")
            .values(status=DeploymentStatus.ACTIVE.value)
        )

    with engine.connect() as connection:
        approved = cache.deployment(connection, row, "held-1")

    assert held.status == DeploymentStatus.HELD.value
    assert approved.status == DeploymentStatus.ACTIVE.value


def test_responses_have_security_headers(tool, platform):
    """Login and launch redirects get the page policy Flask gives /lti/ responses."""
    login = tool.login()
    state = login.headers["Location"].split("state=")[1].split("&")[0]
    nonce = login.headers["Location"].split("nonce=")[1].split("&")[0]
    launched = tool.launch(
        platform.sign(platform.claims(nonce, tool.target_link_uri)), state
    )

    assert launched.status_code == 302
    for response in (login, launched):
        policy = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors 'self' {platform.issuer}" in policy
        assert "form-action 'self' https: http:" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "X-Frame-Options" not in response.headers


def test_login_over_https_gets_hsts(client, registration, platform):
    """A login that came over HTTPS gets HSTS, as every other page does."""
    response = client.get(
        f"/lti/{registration.public_id}/login",
        query_string={"iss": platform.issuer, "login_hint": "3001"},
        base_url="https://127.0.0.1",
    )

    assert response.status_code == 302
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


class _FrozenDatetime(datetime):
    """`datetime` whose now() is one fixed moment, for cookie expiry dates."""

    moment = 0.0

    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(cls.moment, tz)


def _sent(response, environ) -> tuple[str, list, bytes]:
    """Return what the dispatcher sends for `response`: status, headers and body."""
    if isinstance(response, PlainRedirect):
        started = {}

        def start_response(status, headers):
            started.update(status=status, headers=headers)

        body = b"".join(response.send(environ, start_response, "request-1"))
        return started["status"], started["headers"], body
    response.headers["X-Request-ID"] = "request-1"
    body_iterator, status, headers = response.get_wsgi_response(environ)
    return status, list(headers), b"".join(body_iterator)


@pytest.fixture
def frozen_clock(monkeypatch):
    """Stop the clocks that state expiry, cookie dates and session stamps read."""
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    _FrozenDatetime.moment = now
    monkeypatch.setattr("werkzeug.http.datetime", _FrozenDatetime)
    return now


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("base_url", ["http://127.0.0.1", "https://127.0.0.1"])
def test_plain_login_equals_werkzeug(
    app, registration, platform, frozen_clock, monkeypatch, method, base_url
):
    """The login's plain redirect sends the bytes werkzeug's response would send."""
    monkeypatch.setattr(nonces.secrets, "token_urlsafe", lambda size: "fixed-random-id")
    endpoints = app.extensions["hpass_lti_launch"]
    builder = EnvironBuilder(
        path=f"/lti/{registration.public_id}/login",
        method=method,
        base_url=base_url,
        query_string={"iss": platform.issuer, "login_hint": "3001"},
        headers={"Origin": "https://school.example.org"},
    )
    sent, kinds = [], []
    for plain in (True, False):
        environ = builder.get_environ()
        response = endpoints.login(
            Request(environ), registration.public_id, plain=plain
        )
        kinds.append(type(response))
        sent.append(_sent(response, environ))

    assert kinds == [PlainRedirect, Response]
    plain_sent, werkzeug_sent = sent
    assert plain_sent[0] == werkzeug_sent[0] == "302 FOUND"
    assert plain_sent[1] == werkzeug_sent[1]
    assert plain_sent[2] == werkzeug_sent[2]
    assert (method == "HEAD") == (plain_sent[2] == b"")


@pytest.mark.parametrize("base_url", ["http://127.0.0.1", "https://127.0.0.1"])
def test_plain_launch_equals_werkzeug(
    app, registration, platform, frozen_clock, monkeypatch, base_url
):
    """The course launch's plain redirect sends what werkzeug's response would send.

    Each launch needs a login of its own, so the two states differ and are
    replaced by one placeholder before the headers are compared.
    """
    random_ids = iter(["first-random-id", "second-random-id"])
    monkeypatch.setattr(nonces.secrets, "token_urlsafe", lambda size: next(random_ids))
    endpoints = app.extensions["hpass_lti_launch"]
    public_id = registration.public_id
    target = f"{endpoints.settings.public_base_url}/lti/{public_id}/launch"
    sent, kinds = [], []
    for plain in (True, False):
        login = EnvironBuilder(
            path=f"/lti/{public_id}/login",
            query_string={"iss": platform.issuer, "login_hint": "3001"},
        ).get_environ()
        location = endpoints.login(Request(login), public_id).headers["Location"]
        query = parse_qs(urlsplit(location).query)
        state, nonce = query["state"][0], query["nonce"][0]
        environ = EnvironBuilder(
            path=f"/lti/{public_id}/launch",
            method="POST",
            base_url=base_url,
            data={
                "id_token": platform.sign(platform.claims(nonce, target)),
                "state": state,
            },
            headers={
                "Cookie": f"{STATE_COOKIE_PREFIX}{state}={state}",
                "Origin": "https://school.example.org",
            },
        ).get_environ()
        response = endpoints.launch(Request(environ), public_id, plain=plain)
        kinds.append(type(response))
        status, headers, body = _sent(response, environ)
        headers = [(name, value.replace(state, "STATE")) for name, value in headers]
        sent.append((status, headers, body))

    plain_sent, werkzeug_sent = sent
    assert plain_sent[0] == werkzeug_sent[0] == "302 FOUND"
    assert plain_sent[1] == werkzeug_sent[1]
    assert plain_sent[2] == werkzeug_sent[2]
    assert kinds == [PlainRedirect, Response]
