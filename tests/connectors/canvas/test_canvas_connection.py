"""Connecting Canvas once: encrypted credentials, token refresh stored, scope test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.canvas.connection import (
    IDENTITY_SCOPES,
    REQUIRED_SCOPES,
    client_for_connection,
    connect_canvas,
    credential_for,
    test_canvas_connection,
)
from connectors.canvas.connection import (
    test_connection as run_connection_test,
)
from connectors.canvas.tokens import StaticToken
from lti_tool.demo.peers.canvas import ALL_SCOPES
from tests.connectors.canvas.conftest import COURSE_ID
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.seed import add_provider

MODULES_SCOPE = "url:GET|/api/v1/courses/:course_id/modules"
BULK_SCOPE = "url:GET|/api/v1/courses/:course_id/bulk_user_progress"


def _connect_oauth(app, db, fake, canvas_url, *, expires_in=3600):
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    refresh_token = fake.add_developer_key("10000000000042", "key-secret")
    connection = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url=canvas_url,
        access_token=fake.issue_token(expires_in=expires_in),
        client_id="10000000000042",
        client_secret="key-secret",
        refresh_token=refresh_token,
        expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in),
    )
    db.commit()
    return connection, refresh_token


def test_credentials_stored_encrypted(app, db, fake, canvas_url):
    """No token or secret is stored in plain text."""
    connection, refresh_token = _connect_oauth(app, db, fake, canvas_url)
    credential = credential_for(db, connection)

    stored = b"".join(
        [
            credential.access_token_encrypted,
            credential.refresh_token_encrypted,
            credential.client_secret_encrypted,
        ]
    )
    assert refresh_token.encode() not in stored
    assert b"key-secret" not in stored
    vault = app.extensions["hpass"].vault
    assert vault.decrypt(credential.refresh_token_encrypted).decode() == refresh_token


def test_refreshed_token_stored(app, db, fake, canvas_url):
    """A refresh before expiry writes the new access token, encrypted, to the row."""
    connection, _ = _connect_oauth(app, db, fake, canvas_url, expires_in=60)
    vault = app.extensions["hpass"].vault
    client = client_for_connection(
        db, vault, connection, sleep=lambda s: None, policy=LOOPBACK_POLICY
    )

    client.get_user_progress(str(COURSE_ID), "123")
    db.commit()

    credential = credential_for(db, connection)
    new_token = vault.decrypt(credential.access_token_encrypted).decode()
    assert new_token in fake.tokens
    assert fake.tokens[new_token].expires_at > datetime.now(timezone.utc)
    assert credential.access_token_expires_at > datetime.now(timezone.utc) + timedelta(
        minutes=50
    )


def test_connection_ok_with_every_scope(fake, make_client):
    """A token with every scope passes, even when Canvas throttles during the test."""
    fake.throttle_next("403", "429")
    token = StaticToken(fake.issue_token(user_id=123, scopes=ALL_SCOPES))

    result = run_connection_test(make_client(token), str(COURSE_ID))

    assert result.ok is True
    assert result.missing == ()
    assert "every scope" in result.message


def test_connection_names_missing_scopes(fake, make_client):
    """Missing scopes are listed by their Canvas names, in the message too."""
    granted = ALL_SCOPES - {MODULES_SCOPE, BULK_SCOPE}
    token = StaticToken(fake.issue_token(scopes=frozenset(granted)))

    result = run_connection_test(make_client(token), str(COURSE_ID))

    assert result.ok is False
    assert set(result.missing) == {MODULES_SCOPE, BULK_SCOPE}
    assert MODULES_SCOPE in result.message
    assert BULK_SCOPE in result.message


def test_connection_reports_bad_token(fake, make_client):
    """An invalid token fails the test with the reconnect instruction."""
    token = StaticToken("not-a-token")

    result = run_connection_test(make_client(token), str(COURSE_ID))

    assert result.ok is False
    assert "cannot be refreshed" in result.message


def test_connection_reports_permission(fake, make_client):
    """A 403 permission error fails the test without calling it a scope."""
    fake.forbidden_courses.add(COURSE_ID)

    result = run_connection_test(make_client(), str(COURSE_ID))

    assert result.ok is False
    assert result.missing == ()
    assert "role" in result.message


def test_required_scopes_served_by_stand_in():
    """The stand-in serves every scope the bridge requests."""
    assert set(REQUIRED_SCOPES) == ALL_SCOPES


def test_stored_connection_test_records_state(app, db, fake, canvas_url):
    """A stored connection whose refresh fails is marked broken; a good one is OK."""
    connection, refresh_token = _connect_oauth(app, db, fake, canvas_url)
    vault = app.extensions["hpass"].vault

    passing = test_canvas_connection(
        db,
        vault,
        connection,
        course_id=str(COURSE_ID),
        sleep=lambda s: None,
        policy=LOOPBACK_POLICY,
    )
    fake.revoke_refresh_token(refresh_token)
    fake.expire_all_tokens()
    failing = test_canvas_connection(
        db,
        vault,
        connection,
        course_id=str(COURSE_ID),
        sleep=lambda s: None,
        policy=LOOPBACK_POLICY,
    )

    assert passing.ok is True
    assert failing.ok is False
    assert failing.token_invalid is True
    assert connection.state == "broken"
    assert failing.as_dict()["token_invalid"] is True


def test_stored_connection_test_needs_course(app, db, fake, canvas_url):
    """Without a course id or an achievement, the message requests --course."""
    connection, _ = _connect_oauth(app, db, fake, canvas_url)
    vault = app.extensions["hpass"].vault

    result = test_canvas_connection(db, vault, connection, policy=LOOPBACK_POLICY)

    assert result.ok is False
    assert "--course" in result.message


def _connect_token(app, db, fake, canvas_url, scopes):
    provider = add_provider(db)
    connection = connect_canvas(
        db,
        app.extensions["hpass"].vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url=canvas_url,
        access_token=fake.issue_token(user_id=123, scopes=frozenset(scopes)),
    )
    db.commit()
    return connection


def _test_stored(app, db, connection):
    return test_canvas_connection(
        db,
        app.extensions["hpass"].vault,
        connection,
        course_id=str(COURSE_ID),
        sleep=lambda s: None,
        policy=LOOPBACK_POLICY,
    )


def test_missing_identity_scopes_keep_polls(app, db, fake, canvas_url):
    """Lacking only the launch identity scopes fails the test but leaves the
    connection OK, because polls and re-reads do not use them."""
    connection = _connect_token(app, db, fake, canvas_url, ALL_SCOPES - IDENTITY_SCOPES)

    result = _test_stored(app, db, connection)

    assert result.ok is False
    assert set(result.missing) == IDENTITY_SCOPES
    assert "keeps reading completions" in result.message
    assert "lms_course_id" in result.message
    assert connection.state == "ok"
    assert connection.state_detail is None


def test_missing_identity_scopes_mend_broken(app, db, fake, canvas_url):
    """A broken connection whose new token lacks only identity scopes is OK again."""
    connection = _connect_token(app, db, fake, canvas_url, ALL_SCOPES - IDENTITY_SCOPES)
    connection.state = "broken"
    connection.state_detail = "an earlier failure"

    _test_stored(app, db, connection)

    assert connection.state == "ok"
    assert connection.state_detail is None


def test_missing_poll_scope_breaks_connection(app, db, fake, canvas_url):
    """A missing scope that polls need marks the connection broken, naming it."""
    connection = _connect_token(
        app, db, fake, canvas_url, ALL_SCOPES - {MODULES_SCOPE} - IDENTITY_SCOPES
    )

    result = _test_stored(app, db, connection)

    assert result.ok is False
    assert connection.state == "broken"
    assert MODULES_SCOPE in connection.state_detail
    assert "keeps reading completions" not in result.message
