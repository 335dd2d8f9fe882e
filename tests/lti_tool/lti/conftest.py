"""LTI tests run on SQLite and again on PostgreSQL (the nonce table must work on both)."""

from __future__ import annotations

import pytest

from lti_tool.demo.peers.registration_platform import RegistrationPlatform
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration
from tests.lti_tool.lti.harness import (
    CLIENT_ID,
    DEPLOYMENT_ID,
    TokenPlatform,
    ToolClient,
    stop_server,
)
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:
    """None for the default SQLite file, else a fresh PostgreSQL database's URL."""
    if request.param == "postgresql":
        return reset_postgres()
    return None


@pytest.fixture
def settings(settings, database_url):
    """The shared settings, on PostgreSQL in the postgresql runs."""
    if database_url:
        settings.database_url = database_url
    return settings


@pytest.fixture
def platform():
    platform = TokenPlatform()
    yield platform
    platform.stop()


@pytest.fixture
def registration(app, db, platform):
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    registration = create_registration(
        db,
        vault,
        provider,
        issuer=platform.issuer,
        client_id=CLIENT_ID,
        auth_login_url=f"{platform.issuer}/auth",
        key_set_url=f"{platform.issuer}/jwks",
        deployment_ids=(DEPLOYMENT_ID,),
        lms_connection_id=connection.id,
    )
    db.commit()
    return registration


@pytest.fixture
def tool(app, registration, platform):
    server = serve_in_thread(app)
    yield ToolClient(server.url, registration.public_id, platform.issuer)
    stop_server(server)


@pytest.fixture
def tool_url(app):
    """The tool served over real HTTP on loopback, for Dynamic Registration."""
    server = serve_in_thread(app)
    yield server.url
    stop_server(server)


@pytest.fixture
def platforms():
    """Start Moodle- or Canvas-shaped registration platforms, stopped after the test."""
    servers = []

    def start(family, **options):
        platform = RegistrationPlatform(family, **options)
        servers.append(platform.start())
        return platform

    yield start
    for server in servers:
        stop_server(server)
