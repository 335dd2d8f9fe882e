"""The demo peers' HTML pages carry a strict Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
import requests

from lti_tool.demo.stack import DemoStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DemoStack(tmp_path_factory.mktemp("page-policy"))
    stack.start_web()
    yield stack
    stack.stop()


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    pairs = [part.strip().split(" ", 1) for part in policy.split(";")]
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def script_nonces(page: str) -> list[str]:
    return re.findall(r'<script nonce="([^"]+)">', page)


@pytest.mark.parametrize(
    "path", ["/demo/moodle/", "/demo/portfolio/", "/demo/platform/"]
)
def test_peer_index_pages_strict(stack, path):
    """Each peer's page allows no outside resource and no script at all."""
    response = requests.get(stack.base_url + path, timeout=10)
    policy = directives(response)

    assert response.status_code == 200
    assert policy["default-src"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'self'"
    assert policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "<script" not in response.text


def test_launch_form_policy(stack):
    """The auto-posting launch form may post to the tool, and only its script runs."""
    session = requests.Session()
    response = session.get(
        f"{stack.base_url}/demo/platform/launch/learner",
        timeout=10,
        allow_redirects=True,
    )
    policy = directives(response)
    nonces = script_nonces(response.text)

    assert "/demo/platform/auth" in response.url
    assert policy["form-action"] == f"'self' {stack.base_url}"
    assert len(nonces) == 1
    assert policy["script-src"] == f"'nonce-{nonces[0]}'"


def test_frame_page_policy(stack):
    """The platform's frame page may frame the tool and run its own script."""
    response = requests.get(f"{stack.base_url}/demo/platform/frame/learner", timeout=10)
    policy = directives(response)
    nonces = script_nonces(response.text)

    assert policy["frame-src"] == f"'self' {stack.base_url}"
    assert len(nonces) == 1
    assert policy["script-src"] == f"'nonce-{nonces[0]}'"


def test_nonce_fresh_per_response(stack):
    """Two responses never share a nonce."""
    url = f"{stack.base_url}/demo/platform/frame/learner"

    first = directives(requests.get(url, timeout=10))["script-src"]
    second = directives(requests.get(url, timeout=10))["script-src"]

    assert first != second


def test_consent_page_allows_redirect_uri(stack):
    """The consent form may lead to the client's redirect URI after posting."""
    client = requests.post(
        f"{stack.base_url}/demo/portfolio/oauth/register",
        json={
            "client_name": "Policy test",
            "redirect_uris": ["http://localhost:9/portfolio/callback"],
        },
        timeout=10,
    ).json()

    response = requests.get(
        f"{stack.base_url}/demo/portfolio/oauth/authorize",
        params={
            "client_id": client["client_id"],
            "redirect_uri": "http://localhost:9/portfolio/callback",
            "response_type": "code",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "state": "s",
        },
        timeout=10,
    )
    policy = directives(response)

    assert response.status_code == 200
    assert "wants to add badges" in response.text
    assert policy["form-action"] == "'self' http://localhost:9"
    assert policy["default-src"] == "'none'"


def test_json_responses_without_policy(stack):
    """Only HTML pages get the policy, not JSON responses."""
    response = requests.get(f"{stack.base_url}/demo/platform/jwks", timeout=10)

    assert response.headers["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in response.headers
