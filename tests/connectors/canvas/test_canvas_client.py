"""The REST client against the Canvas stand-in over HTTP: paging, throttling, tokens."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
from flask import Flask
from flask import request as flask_request

from badge_engine.outbound import OutboundBlocked
from connectors.canvas.client import CanvasClient, next_link
from connectors.canvas.errors import (
    CanvasAccessDenied,
    CanvasError,
    CanvasNotFound,
    CanvasResponseInvalid,
    CanvasScopeMissing,
    CanvasTokenInvalid,
    CanvasUnavailable,
)
from connectors.canvas.tokens import OAuth2Token, OAuth2Tokens, StaticToken
from lti_tool.demo.peers.serving import serve_in_thread
from tests.connectors.canvas.conftest import COURSE_ID
from tests.support.outbound import LOOPBACK_POLICY

BULK = f"/api/v1/courses/{COURSE_ID}/bulk_user_progress"


def _oauth_token(fake, canvas_url, *, expires_in=3600, **options):
    refresh_token = fake.add_developer_key("10000000000042", "key-secret")
    access_token = fake.issue_token(expires_in=expires_in)
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    return OAuth2Token(
        canvas_url,
        "10000000000042",
        "key-secret",
        OAuth2Tokens(access_token, refresh_token, expires_at),
        **options,
        policy=LOOPBACK_POLICY,
    ), refresh_token


def test_pages_follow_link_next(fake, make_client):
    """Every page is read by following rel=next, asking for 100 items a page."""
    fake.add_students(COURSE_ID, range(1000, 1250))
    client = make_client()

    pages = list(client.iter_bulk_user_progress(str(COURSE_ID)))

    assert len(pages) == 3
    assert sum(len(page.items) for page in pages) == 252
    assert "per_page=100" in pages[0].url
    assert pages[-1].next_url is None


def test_next_link_matches_rel_case_insensitively():
    """A Link header's rel is matched whatever its case, and among several types."""
    header = (
        '<https://c.test/a?page=1>; rel="Current",<https://c.test/a?page=2>; rel="NEXT"'
    )

    assert next_link(header) == "https://c.test/a?page=2"
    assert next_link('<https://c.test/b>; rel="next last"') == "https://c.test/b"
    assert next_link('<https://c.test/a>; rel="last"') is None
    assert next_link(None) is None


def test_pages_with_upper_case_rel(fake, make_client):
    """The stand-in sending rel="NEXT" still pages to the end."""
    fake.rel_case = str.upper
    fake.add_students(COURSE_ID, range(1000, 1150))

    items = list(make_client().iter_items(BULK))

    assert len(items) == 152


def test_next_link_to_other_host_rejected(waits):
    """A next link to another host raises instead of sending the token there."""
    app = Flask(__name__)

    @app.get("/api/v1/courses/1/modules")
    def modules():
        return [], 200, {"Link": '<http://127.0.0.2:9/steal>; rel="next"'}

    with serve_in_thread(app) as server:
        client = CanvasClient(
            server.url, StaticToken("t"), sleep=waits.append, policy=LOOPBACK_POLICY
        )
        with pytest.raises(CanvasResponseInvalid, match="another host"):
            client.list_modules("1")


def test_throttle_403_retried_and_logged(fake, make_client, waits, caplog):
    """403 Rate Limit Exceeded is retried with backoff and logged, not denied."""
    fake.throttle_next("403", "403")
    client = make_client(backoff=0.5)

    with caplog.at_level(logging.WARNING, logger="connectors.canvas.client"):
        progress = client.get_user_progress(str(COURSE_ID), "123")

    assert progress["requirement_count"] == 6
    assert waits == [0.5, 1.0]
    assert client.stats.throttled == 2
    assert sum("throttled" in record.getMessage() for record in caplog.records) == 2


def test_throttle_429_waits_retry_after(fake, make_client, waits):
    """429 is retried after the Retry-After seconds Canvas sent."""
    fake.throttle_next("429")

    make_client(backoff=5).get_user_progress(str(COURSE_ID), "123")

    assert waits == [1.0]


def test_throttle_beyond_retries_is_unavailable(fake, make_client):
    """Throttling that outlasts the retries is CanvasUnavailable, never access denied."""
    fake.throttle_next(*["403"] * 5)
    client = make_client(max_retries=3)

    with pytest.raises(CanvasUnavailable, match="not a permission problem") as caught:
        client.get_user_progress(str(COURSE_ID), "123")

    assert not isinstance(caught.value, CanvasAccessDenied)
    assert caught.value.status_code == 403


def test_forbidden_is_access_denied(fake, make_client):
    """A 403 without the rate limit text is a permission error."""
    fake.forbidden_courses.add(COURSE_ID)

    with pytest.raises(CanvasAccessDenied, match="role"):
        make_client().list_modules(str(COURSE_ID))


def test_low_bucket_slows_down(fake, make_client, waits):
    """A low X-Rate-Limit-Remaining makes the client wait before the next request."""
    fake.bucket_capacity = 60.0

    make_client().get_user_progress(str(COURSE_ID), "123")

    assert len(waits) == 1
    assert waits[0] > 0


def test_expired_token_refreshed_once(fake, canvas_url, make_client):
    """A 401 on an OAuth2 token refreshes it once, stores it, and the call succeeds."""
    stored = []
    token, _ = _oauth_token(fake, canvas_url, on_refresh=stored.append)
    token_before = token.tokens.access_token
    fake.expire_all_tokens()
    client = make_client(token)

    progress = client.get_user_progress(str(COURSE_ID), "123")

    assert progress["requirement_count"] == 6
    assert client.stats.refreshed == 1
    assert len(stored) == 1
    assert stored[0].access_token != token_before
    assert [status for _, _, status in fake.requests] == [401, 200]


def test_refresh_before_expiry(fake, canvas_url, make_client):
    """A token within five minutes of expiry is refreshed before the request."""
    token, _ = _oauth_token(fake, canvas_url, expires_in=60)

    make_client(token).get_user_progress(str(COURSE_ID), "123")

    assert [status for _, _, status in fake.requests] == [200]
    assert token.tokens.expires_at > datetime.now(timezone.utc) + timedelta(minutes=50)


def test_revoked_refresh_token_is_invalid(fake, canvas_url, make_client):
    """A 401 whose refresh Canvas also rejects raises CanvasTokenInvalid."""
    token, refresh_token = _oauth_token(fake, canvas_url)
    fake.revoke_refresh_token(refresh_token)
    fake.expire_all_tokens()

    with pytest.raises(CanvasTokenInvalid, match="connect Canvas again"):
        make_client(token).get_user_progress(str(COURSE_ID), "123")


def test_401_after_refresh_is_invalid(fake, canvas_url, make_client, monkeypatch):
    """A second 401 after one refresh raises instead of refreshing again."""
    token, _ = _oauth_token(fake, canvas_url)
    original = fake.issue_token
    monkeypatch.setattr(
        fake, "issue_token", lambda *a, **k: original(*a, **{**k, "expires_in": -1})
    )
    fake.expire_all_tokens()
    client = make_client(token)

    with pytest.raises(CanvasTokenInvalid, match="even after a token refresh"):
        client.get_user_progress(str(COURSE_ID), "123")

    assert client.stats.refreshed == 1


def test_admin_token_401_is_invalid(fake, make_client):
    """An admin access token cannot be refreshed, so its 401 raises at once."""
    token = StaticToken(fake.issue_token())
    fake.expire_all_tokens()

    with pytest.raises(CanvasTokenInvalid, match="cannot be refreshed"):
        make_client(token).get_user_progress(str(COURSE_ID), "123")


def test_missing_scope_not_refreshed(fake, make_client):
    """Insufficient scopes raises CanvasScopeMissing without a token refresh."""
    token = StaticToken(fake.issue_token(scopes=frozenset()))

    with pytest.raises(
        CanvasScopeMissing, match="access token lacks its scope"
    ) as raised:
        make_client(token).list_modules(str(COURSE_ID))

    # An access token gets its scopes when it is created, so the fix is a new token.
    assert "connection set-token" in str(raised.value)
    assert "developer key" not in str(raised.value)


def test_stand_in_401_bodies_and_headers(fake, canvas_url):
    """The stand-in returns each kind of 401 with Canvas's body and headers."""
    forbidden_course = 566
    fake.add_course(forbidden_course)
    fake.forbidden_courses.add(forbidden_course)
    scoped = fake.issue_token(scopes=frozenset())
    valid = fake.issue_token()

    def get(path, token):
        return requests.get(
            canvas_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    invalid = get(f"/api/v1/courses/{COURSE_ID}/modules", "unknown-token")
    no_scope = get(f"/api/v1/courses/{COURSE_ID}/modules", scoped)
    denied = get(f"/api/v1/courses/{forbidden_course}/modules", valid)

    assert invalid.status_code == 401
    assert invalid.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert invalid.json() == {"errors": [{"message": "Invalid access token."}]}
    assert no_scope.status_code == 401
    assert "WWW-Authenticate" not in no_scope.headers
    assert no_scope.json() == {
        "errors": [{"message": "Insufficient scopes on access token."}]
    }
    assert denied.status_code == 401
    assert "WWW-Authenticate" not in denied.headers
    assert denied.json() == {
        "status": "unauthorized",
        "errors": [{"message": "user not authorized to perform that action"}],
    }


def test_permission_401_not_refreshed(fake, canvas_url, make_client):
    """A 401 "user not authorized" raises CanvasAccessDenied without a refresh."""
    token, _ = _oauth_token(fake, canvas_url)
    fake.forbidden_courses.add(COURSE_ID)
    client = make_client(token)

    with pytest.raises(CanvasAccessDenied) as raised:
        client.list_modules(str(COURSE_ID))

    assert raised.value.status_code == 401
    assert "lacks a permission" in str(raised.value)
    assert "role that can read the course's modules" in str(raised.value)
    assert client.stats.refreshed == 0
    assert [status for _, _, status in fake.requests] == [401]


def test_permission_403_is_access_denied(fake, canvas_url, make_client):
    """The same denial with 403 (api_auth_error_updates on) is CanvasAccessDenied."""
    token, _ = _oauth_token(fake, canvas_url)
    fake.permission_denied_status = 403
    fake.forbidden_courses.add(COURSE_ID)
    client = make_client(token)

    with pytest.raises(CanvasAccessDenied) as raised:
        client.list_modules(str(COURSE_ID))

    assert raised.value.status_code == 403
    assert client.stats.refreshed == 0


def test_www_authenticate_401_refreshed(fake, canvas_url, make_client):
    """A 401 with WWW-Authenticate is a token problem even with a permission body."""
    token, _ = _oauth_token(fake, canvas_url)
    token_before = token.tokens.access_token
    app = Flask(__name__)

    @app.get("/api/v1/courses/1/modules")
    def modules():
        authorization = flask_request.headers.get("Authorization", "")
        if authorization == f"Bearer {token_before}":
            message = "user not authorized to perform that action"
            body = {"status": "unauthorized", "errors": [{"message": message}]}
            return body, 401, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
        return [], 200, {"Content-Type": "application/json"}

    with serve_in_thread(app) as server:
        client = CanvasClient(server.url, token, policy=LOOPBACK_POLICY)
        assert client.list_modules("1") == []

    assert client.stats.refreshed == 1


def test_users_api_denial_names_admin_role(fake, canvas_url, make_client):
    """A Users API 401 "user not authorized" names the admin role and the fix."""
    token, _ = _oauth_token(fake, canvas_url)
    fake.add_account_user(7001)
    fake.unreadable_users.add(7001)
    fake.show_user_denial = "unauthorized"
    client = make_client(token)

    with pytest.raises(CanvasAccessDenied) as raised:
        client.get_user_by_lti_1_3_id(fake.lti_1_3_id(7001))

    message = str(raised.value)
    assert raised.value.status_code == 401
    assert "account admin whose role has the permission Users - view list" in message
    assert "authorise the bridge again" in message
    assert "rejected the token" not in message
    assert client.stats.refreshed == 0


def test_users_api_denial_static_token(fake, make_client):
    """With an admin access token, the fix is a new token of such an admin."""
    fake.add_account_user(7001)
    fake.unreadable_users.add(7001)
    fake.show_user_denial = "unauthorized"
    fake.permission_denied_status = 403

    with pytest.raises(CanvasAccessDenied) as raised:
        make_client().get_user_by_lti_1_3_id(fake.lti_1_3_id(7001))

    assert raised.value.status_code == 403
    assert "connection set-token" in str(raised.value)


def test_users_api_unreadable_is_not_found(fake, canvas_url, make_client):
    """Current Canvas returns 404 for an unreadable user, naming both causes."""
    token, _ = _oauth_token(fake, canvas_url)
    fake.add_account_user(7001)
    fake.unreadable_users.add(7001)
    client = make_client(token)

    with pytest.raises(CanvasNotFound) as raised:
        client.get_user_by_lti_1_3_id(fake.lti_1_3_id(7001))

    message = str(raised.value)
    assert raised.value.status_code == 404
    assert "does not exist in the account" in message
    assert "Users - view list" in message
    assert client.stats.refreshed == 0


def test_users_api_unknown_user_not_found(fake, make_client):
    """An unknown sub gets 404 and CanvasNotFound."""
    with pytest.raises(CanvasNotFound, match="HTTP 404"):
        make_client().get_user_by_lti_1_3_id("no-such-sub")

    assert [status for _, _, status in fake.requests] == [404]


def test_users_api_scope_missing(fake, canvas_url, make_client):
    """Without the Users API scope the client raises CanvasScopeMissing, unrefreshed."""
    token, _ = _oauth_token(fake, canvas_url)
    fake.tokens[token.tokens.access_token].scopes = frozenset()
    fake.add_account_user(7001)
    client = make_client(token)

    with pytest.raises(CanvasScopeMissing, match="lacks its scope") as raised:
        client.get_user_by_lti_1_3_id(fake.lti_1_3_id(7001))

    assert "developer key" in str(raised.value)
    assert client.stats.refreshed == 0


def test_html_instead_of_json(waits):
    """An HTML page where JSON belongs raises CanvasResponseInvalid."""
    app = Flask(__name__)

    @app.get("/api/v1/courses/1/users/2/progress")
    def login_page():
        return "<html><body>Log in to Canvas</body></html>"

    with serve_in_thread(app) as server:
        client = CanvasClient(
            server.url, StaticToken("t"), sleep=waits.append, policy=LOOPBACK_POLICY
        )
        with pytest.raises(CanvasResponseInvalid, match="instead of JSON"):
            client.get_user_progress("1", "2")


def test_redirect_not_followed(waits):
    """A redirect (Canvas's login page) raises instead of being followed."""
    app = Flask(__name__)

    @app.get("/api/v1/courses/1/modules")
    def redirect_to_login():
        return "", 302, {"Location": "/login"}

    with serve_in_thread(app) as server:
        client = CanvasClient(
            server.url, StaticToken("t"), sleep=waits.append, policy=LOOPBACK_POLICY
        )
        with pytest.raises(CanvasResponseInvalid, match="redirected"):
            client.list_modules("1")


def test_server_error_retried(waits):
    """A 503 is retried with backoff, and the next response is returned."""
    app = Flask(__name__)
    answers = iter([("busy", 503), ({"requirement_count": 1}, 200)])

    @app.get("/api/v1/courses/1/users/2/progress")
    def progress():
        return next(answers)

    with serve_in_thread(app) as server:
        client = CanvasClient(
            server.url,
            StaticToken("t"),
            sleep=waits.append,
            backoff=0.25,
            policy=LOOPBACK_POLICY,
        )
        assert client.get_user_progress("1", "2") == {"requirement_count": 1}

    assert waits == [0.25]
    assert client.stats.server_errors == 1


@pytest.mark.parametrize(
    "base_url",
    ["https://169.254.169.254", "https://192.168.0.10", "https://[::1]:1"],
)
def test_blocked_address_each_request(base_url):
    """Every Canvas call goes through the outbound guard, which blocks these hosts."""
    client = CanvasClient(base_url, StaticToken("secret-token"), max_retries=0)

    with pytest.raises(CanvasError) as raised:
        client.list_modules(COURSE_ID)

    assert isinstance(raised.value.__cause__, OutboundBlocked)
    assert raised.value.__cause__.code == "blocked_address"
    assert "secret-token" not in str(raised.value)


def test_token_refresh_blocked_address():
    """The OAuth2 refresh goes through the guard too, so a private host is blocked."""
    token = OAuth2Token(
        "https://10.1.2.3",
        "client",
        "secret",
        OAuth2Tokens("old", "refresh-me", None),
    )

    with pytest.raises(CanvasError) as raised:
        token.refresh()

    assert isinstance(raised.value.__cause__, OutboundBlocked)
    assert "refresh-me" not in str(raised.value)


def test_plain_session_rejected():
    """A session that bypasses the outbound guard is a TypeError."""
    with pytest.raises(TypeError, match="GuardedSession"):
        CanvasClient(
            "https://canvas.example.org", StaticToken("t"), session=requests.Session()
        )
