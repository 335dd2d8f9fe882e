"""One LMS connection per provider, kind and site: the unique index behind the check
in code, over the admin page, the API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from badge_engine.models import Provider
from connectors.models import LmsConnection, LmsKind
from lti_tool import intake
from lti_tool.accounts import AccountRole
from lti_tool.api.tokens import create_api_token
from lti_tool.app import create_app
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.operations import lms
from lti_tool.schema import alembic_config, upgrade
from lti_tool.views import admin
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

from .conftest import add_account, sign_in

MOODLE_TOKEN = "site-once-token"
ADMIN_EMAIL = "admin@alpha.org"


@pytest.fixture(scope="module")
def moodle():
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, settings):
    """The app on SQLite or on the PostgreSQL server, with provider "alpha", its
    admin account and an API token."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session, slug="alpha", name="Alpha")
        _, token = create_api_token(
            session, provider_id=provider.id, name="t", created_by="test"
        )
        session.commit()
        provider_id = provider.id
        add_account(session, ADMIN_EMAIL, AccountRole.PROVIDER_ADMIN, provider_id)
    yield app, provider_id, token
    intake.stop(app)
    bridge.engine.dispose()


def _count_connections(app, provider_id: int) -> int:
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(func.count(LmsConnection.id)).where(
                LmsConnection.provider_id == provider_id
            )
        )


def _check_passes_once_per_thread(monkeypatch, requests: int) -> None:
    """Make each thread's first duplicate check find nothing, after every thread
    has made it, as when all requests read before any of them inserted."""
    all_looked = threading.Barrier(requests, timeout=30)
    first_look = threading.local()
    real_find = lms.find_same_site

    def stale_first_look(session, provider_id, kind, url):
        if not getattr(first_look, "done", False):
            first_look.done = True
            all_looked.wait()
            return None
        return real_find(session, provider_id, kind, url)

    monkeypatch.setattr(lms, "find_same_site", stale_first_look)
    monkeypatch.setattr(admin, "find_same_site", stale_first_look)


def _run_at_once(targets) -> list:
    errors: list = []

    def run(target) -> None:
        try:
            target()
        except Exception as error:  # noqa: BLE001 - asserted by the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return errors


def test_concurrent_api_connects_store_one(backend, moodle, monkeypatch):
    """Two API requests that both pass the check store one connection, and the
    other gets the check's 409."""
    app, provider_id, token = backend
    _check_passes_once_per_thread(monkeypatch, 2)
    responses: list = []
    urls = [moodle.site_url, moodle.site_url + "/"]

    def connect(url: str):
        def post() -> None:
            response = app.test_client().post(
                "/api/v1/lms-connections/moodle",
                json={"url": url, "token": MOODLE_TOKEN},
                headers={"Authorization": f"Bearer {token}"},
            )
            responses.append(response)

        return post

    errors = _run_at_once([connect(url) for url in urls])

    assert errors == []
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409]
    rejected = next(r for r in responses if r.status_code == 409)
    assert rejected.json["error"] == "connection_exists"
    assert "disconnect it before connecting the site again" in rejected.json["message"]
    assert _count_connections(app, provider_id) == 1


def test_concurrent_form_connects_store_one(backend, moodle, monkeypatch):
    """Two admin page posts that both pass the check store one connection, and the
    other page shows the check's message beside the address field."""
    app, provider_id, _ = backend
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        sign_in(client, ADMIN_EMAIL)
    _check_passes_once_per_thread(monkeypatch, 2)
    responses: list = []

    def connect(client, name: str, url: str):
        def post() -> None:
            response = client.post(
                "/admin/connect/lms",
                data={
                    "csrf": "test-csrf",
                    "lms_name": name,
                    "lms_url": url,
                    "lms_token": MOODLE_TOKEN,
                },
            )
            responses.append(response)

        return post

    errors = _run_at_once(
        [
            connect(clients[0], "First", moodle.site_url),
            connect(
                clients[1],
                "Second",
                moodle.site_url.replace("http://", "HTTP://") + "/",
            ),
        ]
    )

    assert errors == []
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400]
    rejected = next(r for r in responses if r.status_code == 400)
    page = rejected.get_data(as_text=True)
    assert 'id="lms_url-error"' in page
    assert "is already connected to this Moodle site as" in page
    assert _count_connections(app, provider_id) == 1


def test_index_rejects_same_site_insert(backend):
    """The database rejects a second connection of one kind to one site, however
    the address is spelled, and accepts it for another kind or provider."""
    app, provider_id, _ = backend
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = session.get(Provider, provider_id)
        add_moodle_connection(
            session, bridge.vault, provider, "https://m.example.org", "t"
        )
        session.commit()

        with pytest.raises(IntegrityError):
            add_moodle_connection(
                session, bridge.vault, provider, "HTTPS://M.example.org:443/", "t"
            )
        session.rollback()

        canvas = LmsConnection(
            provider_id=provider_id,
            kind=LmsKind.CANVAS.value,
            name="Canvas",
            base_url="https://m.example.org",
        )
        other = add_provider(session, slug="beta", name="Beta")
        add_moodle_connection(
            session, bridge.vault, other, "https://m.example.org", "t"
        )
        session.add(canvas)
        session.commit()

    assert canvas.site_key == "https://m.example.org"


def test_api_insert_rejected_by_index(backend, moodle, monkeypatch):
    """With the check in code skipped, the index alone still gives the API's 409."""
    app, provider_id, token = backend
    monkeypatch.setattr(lms, "check_site_not_connected", lambda *args: None)
    client = app.test_client()
    body = {"url": moodle.site_url, "token": MOODLE_TOKEN}
    headers = {"Authorization": f"Bearer {token}"}
    first = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    again = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json["error"] == "connection_exists"
    assert first.json["connection"]["id"] in again.json["message"]
    assert _count_connections(app, provider_id) == 1


def test_cli_insert_rejected_by_index(backend, tmp_path, monkeypatch):
    """With the check in code skipped, the CLI prints the check's error and exits 1."""
    # lti_tool.cli imports the command modules, so it is imported first.
    from lti_tool.cli import main
    from lti_tool import cli_connections  # isort: skip

    app, provider_id, _ = backend
    monkeypatch.setattr(lms, "check_site_not_connected", lambda *a: None)
    token_file = tmp_path / "token"
    token_file.write_text("ws-token")
    runner = app.test_cli_runner()
    # The site is never contacted: the token test is skipped.
    arguments = [
        "connection",
        "add-moodle",
        "--provider",
        "alpha",
        "--url",
        "https://cli.example.org",
        "--token-file",
        str(token_file),
        "--skip-lms-check",
        "--json",
    ]
    bridge = app.extensions["hpass"]
    monkeypatch.setattr(cli_connections, "_bridge", lambda as_json: bridge)

    first = runner.invoke(main, arguments)
    again = runner.invoke(main, arguments)

    assert first.exit_code == 0, first.output
    assert again.exit_code == 1, again.output
    assert '"error": "connection_exists"' in again.output
    assert _count_connections(app, provider_id) == 1


def test_migration_fills_site_key(tmp_path):
    """Upgrading fills site_key, and of two rows for one site the older keeps it."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'site_key.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0118_active_backfill")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO providers (slug, name, url, slug_frozen, created_at) "
                "VALUES ('p', 'P', 'https://p.example.org', false, CURRENT_TIMESTAMP)"
            )
        )
        for base_url in (
            "https://Moodle.example.org/",
            "https://moodle.example.org:443",
            "https://moodle.example.org/school",
        ):
            connection.execute(
                text(
                    "INSERT INTO lms_connections (provider_id, public_id, kind, name, "
                    "base_url, state, created_at) VALUES (1, :public_id, 'moodle', "
                    "'M', :base_url, 'ok', CURRENT_TIMESTAMP)"
                ),
                {"public_id": base_url, "base_url": base_url},
            )

    command.upgrade(config, "heads")

    with engine.connect() as connection:
        keys = (
            connection.execute(text("SELECT site_key FROM lms_connections ORDER BY id"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert keys == [
        "https://moodle.example.org",
        None,
        "https://moodle.example.org/school",
    ]
