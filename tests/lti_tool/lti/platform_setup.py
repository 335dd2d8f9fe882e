"""The bridge on a known loopback port and the real platform peer registered with it."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from cryptography.fernet import Fernet

from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.platform import PlatformPeer, ToolRegistration
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration
from lti_tool.schema import upgrade
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url
from tests.lti_tool.lti.harness import stop_server
from tests.support.seed import add_moodle_connection, add_provider


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Setup:
    app: object
    base: str
    peer: PlatformPeer
    public_id: str

    @property
    def bridge(self):
        return self.app.extensions["hpass"]


def start_bridge(tmp_path, database_url: str | None = None, **overrides):
    """Serve the bridge on a port chosen first, so its public base URL is the served one."""
    port = free_port()
    values = {
        "instance_path": tmp_path / "instance",
        "public_base_url": f"http://127.0.0.1:{port}",
        **overrides,
    }
    if database_url:
        values["database_url"] = database_url
    settings = load_settings(environ={}, overrides=values)
    settings.loopback_dev = True
    settings.secret_key = b"lti-platform-test-secret"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    app = create_app(settings)
    server = serve_in_thread(app, port=port)
    return app, server


def register_peer(app, base: str, peer: PlatformPeer, slug: str = "academy") -> str:
    """Register the running peer for a new provider `slug` on the bridge, and the
    bridge on the peer, in place of any tool the peer launched before."""
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session, slug=slug, name=slug.title())
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:9", "t"
        )
        registration = create_registration(
            session,
            bridge.vault,
            provider,
            issuer=peer.token_issuer,
            client_id=peer.client_id,
            auth_login_url=f"{peer.issuer}/auth",
            key_set_url=f"{peer.issuer}/jwks",
            deployment_ids=(peer.deployment_id,),
            lms_connection_id=connection.id,
        )
        session.commit()
        public_id = registration.public_id
    peer.register_tool(
        ToolRegistration(
            login_url=lti_login_url(base, public_id),
            launch_url=lti_launch_url(base, public_id),
            jwks_url=lti_jwks_url(base, public_id),
        )
    )
    return public_id


def stop(app, *servers) -> None:
    for server in servers:
        stop_server(server)
    app.extensions["hpass"].engine.dispose()
