"""The admin page that approves LTI deployments held by a registration's policy."""

from __future__ import annotations

import html

import pytest

from lti_tool.accounts import AccountRole, create_account
from lti_tool.models import Deployment, DeploymentStatus
from tests.support.account_cookie import account_session_transaction
from tests.support.seed import add_provider

PASSWORD = "a long test admin password"
PAGE = "/lti/admin/deployments"


def _sign_in(client, email: str) -> None:
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    response = client.post(
        "/account/sign-in",
        data={"email": email, "password": PASSWORD, "csrf": "test-csrf"},
    )
    assert response.status_code in (302, 303), response.data[:300]
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"


@pytest.fixture
def held(db, registration):
    """A held deployment of the registration, and a signed-up admin of its provider."""
    registration.new_deployment_policy = "hold"
    deployment = Deployment(
        provider_id=registration.provider_id,
        registration_id=registration.id,
        deployment_id="new-deployment",
        status=DeploymentStatus.HELD.value,
    )
    db.add(deployment)
    create_account(
        db,
        email="admin@academy.example",
        password=PASSWORD,
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=registration.provider_id,
    )
    db.commit()
    return deployment


def _status(db, deployment) -> str:
    db.expire_all()
    return db.get(Deployment, deployment.id).status


def test_list_and_approve(client, db, held):
    """An admin sees the held deployment and approves it."""
    _sign_in(client, "admin@academy.example")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "new-deployment" in page.get_data(as_text=True)

    response = client.post(f"{PAGE}/{held.id}/approve", data={"csrf": "test-csrf"})
    assert response.status_code == 303
    assert _status(db, held) == DeploymentStatus.ACTIVE.value
    assert "new-deployment" not in client.get(PAGE).get_data(as_text=True)


def test_other_provider_404(client, db, held):
    """An admin of another provider cannot see or approve the deployment."""
    other = add_provider(db, slug="other", name="Other")
    create_account(
        db,
        email="admin@other.example",
        password=PASSWORD,
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=other.id,
    )
    db.commit()
    _sign_in(client, "admin@other.example")

    assert "new-deployment" not in client.get(PAGE).get_data(as_text=True)
    response = client.post(f"{PAGE}/{held.id}/approve", data={"csrf": "test-csrf"})
    assert response.status_code == 404
    assert _status(db, held) == DeploymentStatus.HELD.value


def test_approve_without_csrf(client, db, held):
    """A post without the form token gets a 400 and changes nothing."""
    _sign_in(client, "admin@academy.example")
    response = client.post(f"{PAGE}/{held.id}/approve", data={})
    assert response.status_code == 400
    assert _status(db, held) == DeploymentStatus.HELD.value


def test_signed_out_redirected(client, held):
    """Without an account the page sends the browser to the sign-in form."""
    response = client.get(PAGE)
    assert response.status_code == 303
    assert "/account/sign-in" in response.headers["Location"]


def test_held_then_approved_launch(client, db, held, tool, platform):
    """A launch from the held deployment fails, and works once an admin approves it."""
    login = tool.start()
    claims = platform.claims(
        login.nonce, tool.target_link_uri, lti_deployment_id="new-deployment"
    )
    refused = tool.launch(platform.sign(claims), login.state)
    assert refused.status_code == 403
    assert "waiting for a provider admin" in html.unescape(refused.text)

    _sign_in(client, "admin@academy.example")
    client.post(f"{PAGE}/{held.id}/approve", data={"csrf": "test-csrf"})

    login = tool.start()
    claims = platform.claims(
        login.nonce, tool.target_link_uri, lti_deployment_id="new-deployment"
    )
    accepted = tool.launch(platform.sign(claims), login.state)
    assert accepted.status_code == 302, accepted.text
    assert _status(db, held) == DeploymentStatus.ACTIVE.value
