"""Disconnecting an LMS connection from the admin page and the API, on SQLite and
PostgreSQL: tenant walls, bad input, the freed site, and the migration."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from badge_engine.models import Provider
from connectors.models import LmsConnection
from lti_tool import intake
from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.api.tokens import create_api_token
from lti_tool.app import create_app
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.schema import alembic_config, upgrade
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

from .conftest import add_account, sign_in

MOODLE_TOKEN = "disconnect-token"
ADMIN_EMAIL = "admin@alpha.org"
CSRF = {"csrf": "test-csrf"}


@pytest.fixture(scope="module")
def moodle():
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, settings, moodle):
    """The app on SQLite or PostgreSQL with providers "alpha" (admin account, API
    token, one Moodle connection) and "beta" (one Moodle connection)."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        alpha = add_provider(session, slug="alpha", name="Alpha")
        beta = add_provider(session, slug="beta", name="Beta")
        own = add_moodle_connection(
            session, bridge.vault, alpha, moodle.site_url, MOODLE_TOKEN
        )
        foreign = add_moodle_connection(
            session, bridge.vault, beta, moodle.site_url, MOODLE_TOKEN
        )
        _, token = create_api_token(
            session, provider_id=alpha.id, name="t", created_by="test"
        )
        session.commit()
        ids = {"alpha": alpha.id, "own": own.public_id, "foreign": foreign.public_id}
        add_account(session, ADMIN_EMAIL, AccountRole.PROVIDER_ADMIN, alpha.id)
    yield app, ids, token
    intake.stop(app)
    bridge.engine.dispose()


def _connection(app, public_id: str) -> LmsConnection:
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(LmsConnection).where(LmsConnection.public_id == public_id)
        )


def _audit_count(app) -> int:
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "lms_connection.disconnected"
            )
        )


def _api(app, token: str, public_id: str):
    return app.test_client().post(
        f"/api/v1/lms-connections/{public_id}/disconnect",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_api_disconnect_frees_site(backend, moodle):
    """After a disconnect the API connects the same site again, and the unique
    index still rejects a second live connection to it."""
    app, ids, token = backend
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    body = {"url": moodle.site_url, "token": MOODLE_TOKEN}
    before = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    response = _api(app, token, ids["own"])
    again = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)
    third = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    assert before.status_code == 409
    assert f"connection disconnect {ids['own']} --provider alpha" in before.json["message"]
    assert response.status_code == 200
    assert response.json["state"] == "disconnected"
    assert response.json["disconnected_by"].startswith("api-token:")
    assert again.status_code == 201, again.json
    assert third.status_code == 409
    assert third.json["error"] == "connection_exists"
    assert _audit_count(app) == 1


def test_api_listing_marks_disconnected(backend):
    """The provider's connection list shows the state and when it changed."""
    app, ids, token = backend
    _api(app, token, ids["own"])

    listing = app.test_client().get(
        "/api/v1/lms-connections", headers={"Authorization": f"Bearer {token}"}
    )

    rows = {row["id"]: row for row in listing.json["connections"]}
    assert rows[ids["own"]]["state"] == "disconnected"
    assert rows[ids["own"]]["disconnected_at"] is not None
    assert ids["foreign"] not in rows


@pytest.mark.parametrize(
    ("target", "status", "error"),
    [
        ("foreign", 404, "connection_not_found"),
        ("no-such-id", 404, "connection_not_found"),
    ],
    ids=["other-provider", "unknown-id"],
)
def test_api_disconnect_bad_id(backend, target, status, error):
    """Another provider's id or an unknown id is a 404, and nothing changes."""
    app, ids, token = backend

    response = _api(app, token, ids.get(target, target))

    assert response.status_code == status
    assert response.json["error"] == error
    assert _connection(app, ids["foreign"]).state == "ok"
    assert _audit_count(app) == 0


def test_api_disconnect_twice_conflict(backend):
    """A second disconnect is a 409 that says the connection was disconnected."""
    app, ids, token = backend
    _api(app, token, ids["own"])

    again = _api(app, token, ids["own"])

    assert again.status_code == 409
    assert again.json["error"] == "connection_disconnected"
    assert "was disconnected at" in again.json["message"]
    assert _audit_count(app) == 1


def test_page_disconnect_with_confirmation(backend):
    """The page links to a confirmation page whose form disconnects the site."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    link = f"/admin/connections/{ids['own']}/disconnect"

    page = client.get("/admin/connect").get_data(as_text=True)
    confirm = client.get(link)
    confirm_page = confirm.get_data(as_text=True)
    posted = client.post(link, data=CSRF)
    after = client.get(posted.headers["Location"]).get_data(as_text=True)

    assert f'href="{link}"' in page
    assert f"/admin/connections/{ids['foreign']}/disconnect" not in page
    assert confirm.status_code == 200
    assert f'<form method="post" action="{link}">' in confirm_page
    assert 'name="csrf"' in confirm_page
    assert "cannot be restored" in confirm_page
    assert posted.status_code == 303
    assert 'role="status"' in after
    assert "is disconnected" in after
    assert "<strong>Disconnected</strong>" in after
    assert f'href="{link}"' not in after
    stored = _connection(app, ids["own"])
    assert stored.state == "disconnected"
    assert stored.disconnected_by.startswith("account:")
    assert stored.api_token_encrypted is None
    assert _audit_count(app) == 1


def test_page_disconnect_rejections(backend):
    """Another provider's connection is a 404, a post without the form token is
    rejected, and a second disconnect is a 409. None of them writes anything."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    own = f"/admin/connections/{ids['own']}/disconnect"

    foreign_form = client.get(f"/admin/connections/{ids['foreign']}/disconnect")
    foreign_post = client.post(
        f"/admin/connections/{ids['foreign']}/disconnect", data=CSRF
    )
    unknown_post = client.post("/admin/connections/no-such-id/disconnect", data=CSRF)
    no_token = client.post(own)
    audit_after_rejections = _audit_count(app)
    client.post(own, data=CSRF)
    twice = client.post(own, data=CSRF)

    assert foreign_form.status_code == 404
    assert foreign_post.status_code == 404
    assert unknown_post.status_code == 404
    for answer in (foreign_form, foreign_post, unknown_post):
        assert "has no LMS site at this address" in answer.get_data(as_text=True)
    assert no_token.status_code in (400, 403)
    assert audit_after_rejections == 0
    assert twice.status_code == 409
    assert "was already disconnected" in twice.get_data(as_text=True)
    assert _connection(app, ids["foreign"]).state == "ok"
    assert _audit_count(app) == 1


def test_page_connects_site_again(backend, moodle):
    """After a disconnect the page connects the same site as a new connection,
    and the registration form no longer offers the old one."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    client.post(f"/admin/connections/{ids['own']}/disconnect", data=CSRF)

    response = client.post(
        "/admin/connect/lms",
        data={**CSRF, "lms_name": "Again", "lms_url": moodle.site_url,
              "lms_token": MOODLE_TOKEN},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    old = _connection(app, ids["own"])
    assert f'<option value="{old.id}">' not in page
    assert '>Again</option>' in page
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "LMS sites connected: 1" in dashboard


def test_migration_widens_state(tmp_path):
    """On SQLite and PostgreSQL the upgrade stores the disconnected state, and the
    downgrade turns it into broken."""
    for url in (f"sqlite:///{tmp_path / 'disconnect.db'}", reset_postgres()):
        config = alembic_config(url)
        command.upgrade(config, "0120_facts_learner_index")
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO providers (slug, name, url, slug_frozen, created_at) "
                    "VALUES ('p', 'P', 'https://p.example.org', false, "
                    "CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO lms_connections (provider_id, public_id, kind, name, "
                    "base_url, state, created_at, site_key) VALUES ((SELECT id FROM "
                    "providers), 'c1', 'moodle', 'M', 'https://m.example.org', 'ok', "
                    "CURRENT_TIMESTAMP, 'https://m.example.org')"
                )
            )

        command.upgrade(config, "0121_lms_disconnect")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lms_connections SET state = 'disconnected', "
                    "disconnected_by = 'os:test', site_key = NULL"
                )
            )
        command.downgrade(config, "0120_facts_learner_index")
        with engine.connect() as connection:
            state = connection.execute(
                text("SELECT state FROM lms_connections")
            ).scalar_one()
        engine.dispose()

        assert state == "broken", url


def test_provider_scoped_listing(backend):
    """The page lists only the signed-in provider's connections."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    with app.extensions["hpass"].session() as session:
        beta = session.scalar(select(Provider).where(Provider.slug == "beta"))
        foreign_name = f"{beta.name} Moodle"

    page = client.get("/admin/connect").get_data(as_text=True)

    assert "Alpha Moodle" in page
    assert foreign_name not in page


def test_course_page_refuses_badge_after_disconnect(client, tenants, db):
    """An instructor cannot add a badge on a disconnected connection, and the page
    tells what to ask the provider admin."""
    from badge_engine.models import Achievement
    from lti_tool.operations.lms import disconnect_connection

    from .conftest import launch_as
    from .test_course_pages import badge_form

    alpha, beta = tenants
    disconnect_connection(db, "os:test", db.get(LmsConnection, alpha.connection_id))
    db.commit()
    before = db.scalar(select(func.count()).select_from(Achievement))
    launch_as(client, alpha, "instructor")

    refused = client.post(f"/course/{alpha.course_id}/achievements", data=badge_form())
    launch_as(client, beta, "instructor")
    accepted = client.post(f"/course/{beta.course_id}/achievements", data=badge_form())

    assert refused.status_code == 400
    assert "Ask the provider admin to connect the LMS again" in refused.get_data(
        as_text=True
    )
    assert accepted.status_code in (200, 303)
    assert db.scalar(select(func.count()).select_from(Achievement)) == before + 1
