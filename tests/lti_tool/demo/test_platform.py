"""The demo LTI platform against a minimal pylti1p3 tool on real loopback HTTP."""

from __future__ import annotations

import secrets
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, url_for
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.tool_config import ToolConfDict

from lti_tool.demo.peers.lti1p3platform_flask import FlaskPlatformRequest
from lti_tool.demo.peers.platform import (
    DEMO_COURSE,
    DEMO_INSTRUCTOR,
    DEMO_LEARNER,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    LaunchFlowError,
    PlatformPeer,
    ToolRegistration,
)
from lti_tool.demo.peers.serving import serve_in_thread

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


class MemoryCache:
    """Dict-backed cache with the get/set calls pylti1p3's cache storage makes."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.data.get(key)

    def set(self, key: str, value: object, exp: int | None = None) -> bool:
        self.data[key] = value
        return True


def build_tool_app(tool_conf: ToolConfDict) -> Flask:
    """Build a minimal LTI 1.3 tool: login initiation, launch and its JWKS."""
    app = Flask("test_tool")
    app.secret_key = secrets.token_hex(16)
    cache = MemoryCache()

    @app.route("/login", methods=["GET", "POST"])
    def login():
        storage = FlaskCacheDataStorage(cache)
        oidc_login = FlaskOIDCLogin(
            FlaskRequest(), tool_conf, launch_data_storage=storage
        )
        return oidc_login.redirect(url_for("launch", _external=True))

    @app.post("/launch")
    def launch():
        storage = FlaskCacheDataStorage(cache)
        message_launch = FlaskMessageLaunch(
            FlaskRequest(), tool_conf, launch_data_storage=storage
        )
        return jsonify(message_launch.get_launch_data())

    @app.get("/jwks")
    def jwks():
        return jsonify(tool_conf.get_jwks())

    return app


def build_tool_conf(platform: PlatformPeer) -> ToolConfDict:
    issuer = platform.issuer
    tool_conf = ToolConfDict(
        {
            issuer: [
                {
                    "default": True,
                    "client_id": platform.client_id,
                    "auth_login_url": f"{issuer}/auth",
                    "auth_token_url": f"{issuer}/token",
                    "key_set_url": f"{issuer}/jwks",
                    "deployment_ids": [platform.deployment_id],
                }
            ]
        }
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    tool_conf.set_private_key(issuer, private_pem, client_id=platform.client_id)
    tool_conf.set_public_key(issuer, public_pem, client_id=platform.client_id)

    return tool_conf


@pytest.fixture(scope="module")
def launch_setup():
    platform = PlatformPeer()
    platform_server = platform.start()
    tool_server = serve_in_thread(build_tool_app(build_tool_conf(platform)))
    platform.register_tool(
        ToolRegistration(
            login_url=f"{tool_server.url}/login",
            launch_url=f"{tool_server.url}/launch",
            jwks_url=f"{tool_server.url}/jwks",
        )
    )
    yield platform, tool_server

    tool_server.stop()
    platform_server.stop()


def start_hint(client, user_key: str = "learner") -> dict[str, str]:
    """Start a launch on the platform and return the login initiation parameters."""
    response = client.get(f"/launch/{user_key}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)

    return {name: values[0] for name, values in query.items()}


def auth_params(platform: PlatformPeer, login: dict[str, str], **overrides) -> dict:
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": platform.tool.launch_url,
        "state": "state-1",
        "nonce": "nonce-1",
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
    }
    params.update(overrides)

    return {name: value for name, value in params.items() if value is not None}


def test_launch_learner_reaches_tool(launch_setup):
    """A learner launch ends at the tool with the learner's identity and course."""
    platform, _ = launch_setup

    with requests.Session() as session:
        response = platform.launch_with_session(session, "learner")

    assert response.status_code == 200, response.text
    claims = response.json()
    assert claims["sub"] == DEMO_LEARNER.user_id
    assert claims["name"] == DEMO_LEARNER.name
    assert claims["given_name"] == DEMO_LEARNER.given_name
    assert claims["family_name"] == DEMO_LEARNER.family_name
    assert claims["email"] == DEMO_LEARNER.email
    assert ROLE_LEARNER in claims[CLAIM + "roles"]
    assert ROLE_INSTRUCTOR not in claims[CLAIM + "roles"]
    assert claims[CLAIM + "context"]["id"] == DEMO_COURSE.context_id
    assert claims[CLAIM + "context"]["title"] == DEMO_COURSE.title
    assert claims[CLAIM + "custom"] == {"moodle_course_id": "101"}


def test_launch_carries_core_claims(launch_setup):
    """The id_token has the message type, version, deployment and link claims."""
    platform, tool_server = launch_setup

    with requests.Session() as session:
        claims = platform.launch_with_session(session, DEMO_LEARNER).json()

    assert claims["iss"] == platform.issuer
    assert claims["aud"] == platform.client_id
    assert claims[CLAIM + "message_type"] == "LtiResourceLinkRequest"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == platform.deployment_id
    assert claims[CLAIM + "target_link_uri"] == f"{tool_server.url}/launch"
    assert claims[CLAIM + "resource_link"]["id"] == "rl-101-badges"
    assert claims["nonce"]


def test_launch_instructor_roles(launch_setup):
    """An instructor launch by LMS user id carries the Instructor role."""
    platform, _ = launch_setup

    with requests.Session() as session:
        claims = platform.launch_with_session(session, "2").json()

    assert claims["sub"] == DEMO_INSTRUCTOR.user_id
    assert ROLE_INSTRUCTOR in claims[CLAIM + "roles"]
    assert ROLE_LEARNER not in claims[CLAIM + "roles"]


def test_launch_redirects_to_login(launch_setup):
    """/launch/<user> redirects to the tool's login URL with all initiation fields."""
    platform, tool_server = launch_setup
    client = platform.create_app().test_client()

    response = client.get("/launch/learner")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{tool_server.url}/login"
    )
    query = parse_qs(location.query)
    assert query["iss"] == [platform.issuer]
    assert query["login_hint"] == [DEMO_LEARNER.user_id]
    assert query["target_link_uri"] == [f"{tool_server.url}/launch"]
    assert query["client_id"] == [platform.client_id]
    assert query["lti_deployment_id"] == [platform.deployment_id]
    assert query["lti_message_hint"][0]


def test_launch_unknown_user_404(launch_setup):
    """/launch/<user> returns 404 for a user the platform does not have."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()

    response = client.get("/launch/nobody")

    assert response.status_code == 404
    assert "nobody" in response.json["error_description"]


def test_auth_rejects_unregistered_redirect(launch_setup):
    """/auth returns 400 for a redirect_uri the tool did not register."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    evil = "http://127.0.0.1:9/steal"
    params = auth_params(platform, login, redirect_uri=evil)

    response = client.get("/auth", query_string=params)

    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert evil in response.json["error_description"]
    assert "not registered" in response.json["error_description"]
    assert b"id_token" not in response.data


def test_auth_keeps_hint_after_rejection(launch_setup):
    """A rejected request does not use up the hint, so a correct retry works."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    bad = auth_params(platform, login, redirect_uri="http://127.0.0.1:9/x")
    client.get("/auth", query_string=bad)

    response = client.post("/auth", data=auth_params(platform, login))

    assert response.status_code == 200
    assert b'name="id_token"' in response.data
    assert platform.tool.launch_url.encode() in response.data


def test_auth_rejects_reused_hint(launch_setup):
    """A second authentication request with the same lti_message_hint is rejected."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    first = client.get("/auth", query_string=auth_params(platform, login))

    second = client.get("/auth", query_string=auth_params(platform, login))

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json["error"] == "login_required"


@pytest.mark.parametrize(
    ("overrides", "error", "named"),
    [
        ({"response_type": "code"}, "unsupported_response_type", "response_type"),
        ({"response_mode": "query"}, "invalid_request", "response_mode"),
        ({"scope": "profile"}, "invalid_scope", "scope"),
        ({"nonce": None}, "invalid_request", "nonce"),
        ({"client_id": "someone-else"}, "unauthorized_client", "client_id"),
        ({"login_hint": "2"}, "login_required", "login_hint"),
        ({"lti_message_hint": "made-up"}, "login_required", "lti_message_hint"),
    ],
)
def test_auth_rejects_bad_parameter(launch_setup, overrides, error, named):
    """/auth returns 400 naming the parameter that is missing or wrong."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    params = auth_params(platform, login, **overrides)

    response = client.get("/auth", query_string=params)

    assert response.status_code == 400
    assert response.json["error"] == error
    assert named in response.json["error_description"]


def test_id_token_verifies_with_jwks(launch_setup):
    """The id_token verifies against /jwks by kid and carries the nonce sent."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    page = client.get("/auth", query_string=auth_params(platform, login)).get_data(
        as_text=True
    )
    id_token = page.split('name="id_token" value="')[1].split('"')[0]
    key_set = jwt.PyJWKSet.from_dict(client.get("/jwks").json)

    header = jwt.get_unverified_header(id_token)
    claims = jwt.decode(
        id_token,
        key_set[header["kid"]].key,
        algorithms=["RS256"],
        audience=platform.client_id,
    )

    assert header["alg"] == "RS256"
    assert claims["nonce"] == "nonce-1"
    assert claims["iss"] == platform.issuer


def test_signing_skips_pem_parsing(launch_setup):
    """Issuing an id_token parses no PEM key, because the key object is kept."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()
    login = start_hint(client)
    parse_error = AssertionError("PEM key parsed while signing")

    with (
        mock.patch("jwt.algorithms.load_pem_private_key", side_effect=parse_error),
        mock.patch("jwcrypto.jwk.JWK.from_pem", side_effect=parse_error),
    ):
        response = client.get("/auth", query_string=auth_params(platform, login))

    assert response.status_code == 200


def test_launch_requires_started_platform():
    """launch_with_session raises a clear error before the platform is started."""
    platform = PlatformPeer()

    with requests.Session() as session, pytest.raises(LaunchFlowError, match="start"):
        platform.launch_with_session(session, "learner")


def test_issuer_rejects_remote_url():
    """The platform refuses an issuer that is not on this machine."""
    with pytest.raises(ValueError, match="127.0.0.1"):
        PlatformPeer(issuer="https://lms.example.org")


def test_request_reads_form_fields(launch_setup):
    """The adapter reads POSTed form fields as the authentication request."""
    platform, _ = launch_setup
    fields = {"redirect_uri": platform.tool.launch_url, "nonce": "n"}

    app = platform.create_app()

    with app.test_request_context("/auth", method="POST", data=fields):
        wrapped = FlaskPlatformRequest()

    assert wrapped.method == "POST"
    assert wrapped.form_data == fields
    assert wrapped.get_data == {}


def test_index_lists_launch_links(launch_setup):
    """The platform's home page links a launch for each demo user."""
    platform, _ = launch_setup
    client = platform.create_app().test_client()

    page = client.get("/").get_data(as_text=True)

    assert 'href="/launch/learner"' in page
    assert 'href="/launch/instructor"' in page
    assert platform.issuer in page
    assert platform.client_id in page
