"""Fuzz the LTI launch: raw launch forms and signed id_tokens with broken claims.

Every launch must end in a 4xx page (or, for the rare valid draw, a 2xx/3xx), never
a 500. The platform stand-in serves its key set on loopback.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.lti_tool.lti.harness import CLIENT_ID, serve_token_platform
from tests.security.fuzzing import fuzz_settings, json_values

TARGET = "http://127.0.0.1:5999/lti/{public_id}/launch"


# One platform server, started once, serves every test of this module.
platform = pytest.fixture(serve_token_platform, scope="module", name="platform")


def _login(client, registration, platform) -> tuple[str, str]:
    response = client.get(
        f"/lti/{registration.public_id}/login",
        query_string={
            "iss": platform.issuer,
            "login_hint": "3001",
            "client_id": CLIENT_ID,
            "target_link_uri": TARGET.format(public_id=registration.public_id),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["state"][0], query["nonce"][0]


def _assert_no_crash(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]


claim_names = st.sampled_from(
    [
        "iss",
        "aud",
        "sub",
        "iat",
        "exp",
        "nonce",
        "name",
        "lti_version",
        "lti_message_type",
        "lti_deployment_id",
        "lti_target_link_uri",
        "lti_resource_link",
        "lti_roles",
        "lti_context",
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
        "https://purl.imsglobal.org/spec/lti/claim/custom",
        "https://purl.imsglobal.org/spec/lti/claim/launch_presentation",
    ]
)
REMOVE = object()


@fuzz_settings
@given(
    id_token=st.none()
    | st.text(max_size=300)
    | st.lists(
        st.text(alphabet="abcXYZ019-_=", max_size=60), min_size=3, max_size=3
    ).map(".".join),
    state=st.none() | st.text(max_size=60),
    use_real_state=st.booleans(),
)
def test_launch_form_fuzz(app, registration, platform, id_token, state, use_real_state):
    """Any launch form gives a 4xx page, never a server error."""
    client = app.test_client()
    real_state, _ = _login(client, registration, platform)
    data = {"id_token": id_token, "state": real_state if use_real_state else state}

    response = client.post(
        f"/lti/{registration.public_id}/launch",
        data={name: value for name, value in data.items() if value is not None},
    )

    _assert_no_crash(response)
    assert response.status_code >= 400


@fuzz_settings
@given(
    changes=st.dictionaries(
        claim_names, json_values | st.just(REMOVE), min_size=1, max_size=3
    ),
    kid=st.sampled_from(["default", None, "unknown-kid"]),
)
def test_signed_claims_fuzz(app, registration, platform, changes, kid):
    """A validly signed id_token with arbitrary claim values never causes a 500."""
    client = app.test_client()
    state, nonce = _login(client, registration, platform)
    claims = platform.claims(nonce, TARGET.format(public_id=registration.public_id))
    for name, value in changes.items():
        full = (
            name
            if not name.startswith("lti_")
            else ("https://purl.imsglobal.org/spec/lti/claim/" + name[4:])
        )
        if value is REMOVE:
            claims.pop(full, None)
        else:
            claims[full] = value
    try:
        token = platform.sign(claims, kid=kid)
    except (TypeError, ValueError, OverflowError):
        return  # PyJWT cannot encode this value, so no platform could send it.

    response = client.post(
        f"/lti/{registration.public_id}/launch",
        data={"id_token": token, "state": state},
    )

    _assert_no_crash(response)


@pytest.mark.parametrize(
    "name, value",
    [
        ("nonce", ["a"]),
        ("nonce", "nonce-é"),
        ("https://purl.imsglobal.org/spec/lti/claim/deployment_id", ["1"]),
        ("https://purl.imsglobal.org/spec/lti/claim/context", {"id": ["x"]}),
        ("name", {"first": "A"}),
        ("https://purl.imsglobal.org/spec/lti/claim/launch_presentation", ["en"]),
    ],
)
def test_claim_wrong_type_rejected(app, registration, platform, name, value):
    """A signed claim of the wrong JSON type, once a 500, is a 400 launch error."""
    client = app.test_client()
    state, nonce = _login(client, registration, platform)
    claims = platform.claims(nonce, TARGET.format(public_id=registration.public_id))
    claims[name] = value

    response = client.post(
        f"/lti/{registration.public_id}/launch",
        data={"id_token": platform.sign(claims), "state": state},
    )

    assert response.status_code == 400
