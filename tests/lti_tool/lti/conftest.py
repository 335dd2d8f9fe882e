"""LTI tests run on SQLite and again on PostgreSQL (the nonce table must work on both)."""

from __future__ import annotations

import pytest

from lti_tool.demo.peers.registration_platform import RegistrationPlatform
from lti_tool.demo.peers.serving import serve_in_thread
from tests.lti_tool.lti.harness import (
    ToolClient,
    register_token_platform,
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
def registration(app, db, platform):
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    registration = register_token_platform(db, vault, provider, platform, connection.id)
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
