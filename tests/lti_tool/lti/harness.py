"""A platform stand-in that signs id_tokens by hand, for launches the real one won't send.

`TokenPlatform` serves a JWKS on loopback and builds LTI 1.3 resource link claims that
a test then breaks one at a time. `ToolClient` drives the bridge's login and launch
endpoints over real HTTP, like a browser does.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from jwt.algorithms import RSAAlgorithm

from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLIENT_ID = "client-1"
DEPLOYMENT_ID = "deployment-1"


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key, kid: str) -> dict:
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


@dataclass
class TokenPlatform:
    """Signing keys and a JWKS endpoint; `jwks` can be changed while it runs."""

    key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)
    kid: str = "platform-key-1"
    extra_keys: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = Flask("token_platform")
        app.add_url_rule("/jwks", "jwks", lambda: jsonify(self.jwks()))
        self.server = serve_in_thread(app)
        self.issuer = self.server.url

    def jwks(self) -> dict:
        return {"keys": [public_jwk(self.key, self.kid), *self.extra_keys]}

    def claims(self, nonce: str, target_link_uri: str, /, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "3001",
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            "name": "Learner One",
            CLAIM + "version": "1.3.0",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "deployment_id": DEPLOYMENT_ID,
            CLAIM + "target_link_uri": target_link_uri,
            CLAIM + "resource_link": {"id": "rl-1"},
            CLAIM + "roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
            ],
            CLAIM + "context": {"id": "course-1", "title": "Course one"},
        }
        for name, value in changes.items():
            name = (
                name
                if name in claims or not name.startswith("lti_")
                else CLAIM + name[4:]
            )
            if value is REMOVE:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict, *, key=None, kid: str | None = "default", alg="RS256"):
        headers = {} if kid is None else {"kid": self.kid if kid == "default" else kid}
        return jwt.encode(claims, key or self.key, algorithm=alg, headers=headers)

    def stop(self) -> None:
        stop_server(self.server)


def serve_token_platform():
    """Yield a running `TokenPlatform` and stop it afterwards, as the body of a
    `platform` fixture of any scope."""
    platform = TokenPlatform()
    yield platform
    platform.stop()


# A fixture for every test folder, because tests/conftest.py loads this module
# as a plugin.
platform = pytest.fixture(serve_token_platform, name="platform")


def register_token_platform(session, vault, provider, platform, lms_connection_id):
    """Add a registration of `platform` for `provider`, with the client and
    deployment ids of the tokens `TokenPlatform.claims` builds. The caller commits."""
    return create_registration(
        session,
        vault,
        provider,
        issuer=platform.issuer,
        client_id=CLIENT_ID,
        auth_login_url=f"{platform.issuer}/auth",
        key_set_url=f"{platform.issuer}/jwks",
        deployment_ids=(DEPLOYMENT_ID,),
        lms_connection_id=lms_connection_id,
    )


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE = _Remove()


@dataclass
class Login:
    state: str
    nonce: str
    location: str


class ToolClient:
    """A browser stand-in: keeps cookies between the login and the launch."""

    def __init__(self, tool_url: str, public_id: str, issuer: str) -> None:
        self.tool_url = tool_url
        self.public_id = public_id
        self.issuer = issuer
        self.http = requests.Session()

    def login(self, **params) -> requests.Response:
        query = {
            "iss": self.issuer,
            "login_hint": "3001",
            "client_id": CLIENT_ID,
            "target_link_uri": self.target_link_uri,
        }
        query.update(params)
        query = {name: value for name, value in query.items() if value is not None}
        return self.http.get(
            f"{self.tool_url}/lti/{self.public_id}/login",
            params=query,
            allow_redirects=False,
            timeout=10,
        )

    def start(self) -> Login:
        response = self.login()
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        query = parse_qs(urlsplit(location).query)
        return Login(query["state"][0], query["nonce"][0], location)

    def launch(
        self, id_token: str | None, state: str | None, **extra
    ) -> requests.Response:
        data = {"id_token": id_token, "state": state, **extra}
        data = {name: value for name, value in data.items() if value is not None}
        return self.http.post(
            f"{self.tool_url}/lti/{self.public_id}/launch",
            data=data,
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=10,
        )

    @property
    def target_link_uri(self) -> str:
        return f"http://127.0.0.1:5999/lti/{self.public_id}/launch"


def unique() -> str:
    return uuid.uuid4().hex


def stop_server(server) -> None:
    """Stop a `serve_in_thread` server, tolerating an already closed trigger pipe.

    NOTE: with several servers started and stopped in one process, `RunningServer.stop`
    sometimes finds its waitress trigger's file descriptor already closed (EBADF),
    which looks like a double close of a reused descriptor in the shared serving code.
    """
    try:
        server.stop()
    except OSError as error:
        if error.errno != 9:
            raise
