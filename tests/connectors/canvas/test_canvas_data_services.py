"""Live Events subscription through the Data Services API, with the LTI token."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.canvas.data_services import (
    DATA_SERVICES_CREATE_SCOPE,
    client_credentials_form,
    create_subscription,
    request_client_credentials_token,
    subscription_request,
)
from connectors.canvas.errors import CanvasError
from tests.connectors.canvas.conftest import load_fixture
from tests.support.outbound import LOOPBACK_POLICY

ACCOUNT = "4dde05e8ca1973bcca9bffc13e1548820eee93a3"


@pytest.fixture(scope="module")
def tool_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_token_form_matches_fixture(tool_key):
    """The client-credentials form has the fixture's fields and a signed assertion."""
    fixture = load_fixture("oauth_client_credentials_request_lti.json")

    form = client_credentials_form(
        "http://127.0.0.1:1",
        "10000000000042",
        tool_key,
        "tool-1",
        [DATA_SERVICES_CREATE_SCOPE],
    )

    assert set(form) == set(fixture["form"])
    assert form["client_assertion_type"] == fixture["form"]["client_assertion_type"]
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert set(claims) == set(fixture["client_assertion_claims_example"])
    assert claims["aud"] == "http://127.0.0.1:1/login/oauth2/token"
    assert jwt.get_unverified_header(form["client_assertion"])["kid"] == "tool-1"


def test_subscription_body_matches_fixture():
    """The subscription body has exactly the fixture's shape."""
    fixture = load_fixture("data_services_subscription_create_request.json")

    request = subscription_request(
        "http://127.0.0.1:1",
        ACCOUNT,
        context_id=ACCOUNT,
        webhook_url="http://127.0.0.1:2/webhooks/canvas/abc?token=s",
    )

    body = request["body"]["subscription"]
    expected = fixture["body"]["subscription"]
    assert set(body) == set(expected)
    assert set(body["TransportMetadata"]) == set(expected["TransportMetadata"])
    assert body["Format"] == expected["Format"]
    assert body["TransportType"] == expected["TransportType"]
    assert body["EventTypes"] == ["course_completed", "course_progress"]
    assert request["url"].endswith(f"/api/lti/accounts/{ACCOUNT}/data_services")


def test_subscribe_with_lti_token(fake, canvas_url, tool_key):
    """The LTI client-credentials token creates the subscription at the stand-in."""
    token = request_client_credentials_token(
        canvas_url,
        "10000000000042",
        tool_key,
        "tool-1",
        policy=LOOPBACK_POLICY,
    )
    request = subscription_request(
        canvas_url, ACCOUNT, context_id=ACCOUNT, webhook_url="http://127.0.0.1:2/x"
    )

    created = create_subscription(token, request, policy=LOOPBACK_POLICY)

    assert created["Id"] == "1"
    assert fake.subscriptions[0]["TransportMetadata"]["Url"] == "http://127.0.0.1:2/x"


def test_subscribe_with_rest_token_refused(fake, canvas_url):
    """A REST API token cannot create a subscription, and the error names the fix."""
    request = subscription_request(
        canvas_url, ACCOUNT, context_id=ACCOUNT, webhook_url="http://127.0.0.1:2/x"
    )

    with pytest.raises(CanvasError, match="Data Services scope"):
        create_subscription(fake.issue_token(), request, policy=LOOPBACK_POLICY)
