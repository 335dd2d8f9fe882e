"""NRPS client against a loopback membership service with paging and tokens."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify, request

from badge_engine.outbound import OutboundBlocked, OutboundPolicy
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.nrps import NrpsClient, NrpsError
from lti_tool.lti.registrations import create_registration
from tests.lti_tool.lti.harness import stop_server
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.seed import add_provider


@pytest.fixture
def service():
    """Two pages of members; the token endpoint counts its grants."""
    state = {"tokens": 0}
    app = Flask("nrps")

    @app.post("/token")
    def token():
        if request.form.get("grant_type") != "client_credentials":
            return jsonify({"error": "unsupported_grant_type"}), 400
        state["tokens"] += 1
        return jsonify({"access_token": f"t{state['tokens']}", "expires_in": 3600})

    @app.get("/members")
    def members():
        if not request.headers.get("Authorization", "").startswith("Bearer t"):
            return jsonify({"error": "invalid_token"}), 401
        if request.args.get("page") == "2":
            return jsonify({"members": [{"user_id": "3"}]})
        response = jsonify({"members": [{"user_id": "1"}, {"user_id": "2"}]})
        next_link = state.get("next_link", f"{request.base_url}?page=2")
        response.headers["Link"] = f'<{next_link}>; REL="Next"'
        return response

    server = serve_in_thread(app)
    yield server.url, state
    stop_server(server)


@pytest.fixture
def client(app, db, service):
    url, _ = service
    vault = app.extensions["hpass"].vault
    registration = create_registration(
        db,
        vault,
        add_provider(db),
        issuer=url,
        client_id="c",
        auth_login_url=f"{url}/auth",
        key_set_url=f"{url}/jwks",
        auth_token_url=f"{url}/token",
    )
    db.commit()
    return NrpsClient(registration, vault, policy=LOOPBACK_POLICY)


def test_members_all_pages(client, service):
    """Members from every page are returned, following an upper-case Link rel."""
    url, _ = service

    members = client.members(f"{url}/members")

    assert [member["user_id"] for member in members] == ["1", "2", "3"]


def test_token_cached(client, service):
    """One token serves every page and later calls until it nears expiry."""
    url, state = service

    client.members(f"{url}/members")
    client.members(f"{url}/members")

    assert state["tokens"] == 1


def test_membership_error(client, service):
    """A failing membership URL raises NrpsError naming the status."""
    url, _ = service

    with pytest.raises(NrpsError, match="HTTP 404"):
        client.members(f"{url}/nothing-here")


def test_blocked_membership_url(client):
    """A membership URL on a private address is blocked by the outbound guard."""
    strict = NrpsClient(client.registration, client.vault, policy=OutboundPolicy())
    strict.tokens._token = ("cached-token", float("inf"))

    with pytest.raises(NrpsError) as raised:
        strict.members("https://10.0.0.7/memberships")

    assert isinstance(raised.value.__cause__, OutboundBlocked)
    assert "cached-token" not in str(raised.value)


@pytest.fixture
def other_host():
    """A second loopback server that records every request it receives."""
    seen: list[str] = []
    app = Flask("other")

    @app.get("/<path:path>")
    def anything(path):
        seen.append(request.headers.get("Authorization", ""))
        return jsonify({"members": []})

    server = serve_in_thread(app)
    yield server.url, seen
    stop_server(server)


def test_next_page_other_host_rejected(client, service, other_host):
    """A next link to another host raises NrpsError and that host gets no token."""
    url, state = service
    other_url, seen = other_host
    state["next_link"] = f"{other_url}/steal"

    with pytest.raises(NrpsError) as raised:
        client.members(f"{url}/members")

    assert "leaves the host of" in str(raised.value)
    assert isinstance(raised.value.__cause__, OutboundBlocked)
    assert seen == []


def test_next_page_private_address_rejected(client, service):
    """A next link to a private address raises NrpsError naming the address."""
    url, state = service
    state["next_link"] = "https://10.0.0.7/members?page=2"

    with pytest.raises(NrpsError) as raised:
        client.members(f"{url}/members")

    assert "non-public address 10.0.0.7" in str(raised.value)
    assert raised.value.__cause__.code == "blocked_address"


def test_next_page_relative_link(client, service):
    """A relative next link is resolved against the page it came from."""
    url, state = service
    state["next_link"] = "/members?page=2"

    members = client.members(f"{url}/members")

    assert [member["user_id"] for member in members] == ["1", "2", "3"]


def test_repeated_next_page_rejected(client, service):
    """A next link back to a page already read raises instead of looping."""
    url, state = service
    state["next_link"] = f"{url}/members"

    with pytest.raises(NrpsError, match="repeats the next page link"):
        client.members(f"{url}/members")


def test_private_token_url_rejected(app, db, service):
    """A token URL on a private address is rejected before any token request."""
    url, state = service
    vault = app.extensions["hpass"].vault
    registration = create_registration(
        db,
        vault,
        add_provider(db),
        issuer=f"{url}/other",
        client_id="c",
        auth_login_url=f"{url}/auth",
        key_set_url=f"{url}/jwks",
        auth_token_url="https://169.254.169.254/token",
    )
    db.commit()
    nrps = NrpsClient(registration, vault, policy=LOOPBACK_POLICY)

    with pytest.raises(NrpsError) as raised:
        nrps.members(f"{url}/members")

    assert "non-public address 169.254.169.254" in str(raised.value)
    assert state["tokens"] == 0
