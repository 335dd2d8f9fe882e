"""Shared fixtures: settings on a temporary instance folder, the app and its clients."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from lti_tool import intake
from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.serving import stop_all_servers
from lti_tool.schema import upgrade

# Fixtures shared by test modules in several folders.
pytest_plugins = ["tests.support.smtp"]


@pytest.fixture(scope="session", autouse=True)
def _loopback_servers_finished():
    """Wait, at the end of the run, for the request threads of every loopback server.

    A slow handler can outlive its server's `stop()`. The "Client disconnected" line
    it logs when it returns must come before pytest closes its capture streams.
    """
    yield
    stop_all_servers()


@pytest.fixture
def settings(tmp_path):
    """Loopback settings on a fresh SQLite database and embedded broker."""
    settings = load_settings(
        environ={},
        overrides={
            "instance_path": tmp_path / "instance",
            "public_base_url": "http://127.0.0.1:5999",
        },
    )
    settings.loopback_dev = True
    settings.secret_key = b"test-secret-key-generated-per-test"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True)
    return settings


@pytest.fixture
def app(settings):
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    # The fact writer and dispatcher threads would otherwise stay, idle, for the
    # rest of the test run.
    intake.stop(app)
    app.extensions["hpass"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A database session outside any request, closed after the test."""
    with app.extensions["hpass"].session() as session:
        yield session
