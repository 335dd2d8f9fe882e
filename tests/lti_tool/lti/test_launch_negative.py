"""Forged and broken launches over real HTTP: each gets a 4xx naming the problem.

Every case runs the bridge under waitress on loopback, logs in like a browser, and
posts an id_token signed by a stand-in platform with one thing wrong. Each must end
in a 4xx page that names the problem and what to check, logged with the LTI ids, and
must leave no course, learner or session behind.
"""

from __future__ import annotations

import html
import logging
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update

from badge_engine.models import Learner
from lti_tool.lti import nonces
from lti_tool.models import Deployment, DeploymentStatus, LtiCourse, LtiUsedNonce
from tests.lti_tool.lti.harness import (
    CLIENT_ID,
    DEPLOYMENT_ID,
    REMOVE,
    ToolClient,
    new_rsa_key,
    public_jwk,
)


def _signed(platform, tool, login, **changes):
    return platform.sign(platform.claims(login.nonce, tool.target_link_uri, **changes))


def _hs256_with_public_key(platform, tool, login):
    public_pem = platform.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = platform.claims(login.nonce, tool.target_link_uri)
    # PyJWT refuses a PEM as an HMAC secret, so the token is assembled by hand.
    signer = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    header = jwt.utils.base64url_encode(
        b'{"alg":"HS256","typ":"JWT","kid":"platform-key-1"}'
    )
    payload = jwt.utils.base64url_encode(
        jwt.api_jwt._jwt_global_obj._encode_payload(claims)
    )
    signing_input = header + b"." + payload
    signature = jwt.utils.base64url_encode(signer.sign(signing_input, public_pem))
    return (signing_input + b"." + signature).decode()


def _alg_none(platform, tool, login):
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return jwt.encode(claims, None, algorithm="none")


def _es256_with_rsa_kid(platform, tool, login):
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return platform.sign(
        claims, key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"
    )


def _other_key(platform, tool, login):
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return platform.sign(claims, key=new_rsa_key())


def _kid_absent_two_keys(platform, tool, login):
    platform.extra_keys.append(public_jwk(new_rsa_key(), "platform-key-2"))
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return platform.sign(claims, kid=None)


def _unknown_critical_header(platform, tool, login):
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return jwt.encode(
        claims,
        platform.key,
        algorithm="RS256",
        headers={"kid": platform.kid, "crit": ["exp-extension"], "exp-extension": 1},
    )


def _kid_unknown(platform, tool, login):
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return platform.sign(claims, kid="no-such-key")


def _kid_unknown_jwks_unreachable(platform, tool, login):
    platform.stop()
    claims = platform.claims(login.nonce, tool.target_link_uri)
    return platform.sign(claims, kid="rotated-key")


# (case id, token builder, expected status, phrase the page must contain)
TOKEN_CASES = [
    ("bad_signature", _other_key, 400, "signature does not verify"),
    ("alg_none", _alg_none, 400, "algorithm 'none'"),
    ("hs256_public_key", _hs256_with_public_key, 400, "algorithm 'HS256'"),
    ("es256_rsa_key", _es256_with_rsa_kid, 400, "does not fit the platform key"),
    (
        "expired",
        lambda platform, tool, login: _signed(
            platform,
            tool,
            login,
            iat=int(time.time()) - 600,
            exp=int(time.time()) - 300,
        ),
        400,
        "has expired",
    ),
    (
        "issued_in_future",
        lambda platform, tool, login: _signed(
            platform,
            tool,
            login,
            iat=int(time.time()) + 600,
            exp=int(time.time()) + 900,
        ),
        400,
        "issued in the future",
    ),
    (
        "unknown_issuer",
        lambda platform, tool, login: _signed(
            platform, tool, login, iss="https://lms.invalid"
        ),
        400,
        "issuer 'https://lms.invalid'",
    ),
    (
        "unknown_client_id",
        lambda platform, tool, login: _signed(platform, tool, login, aud="client-2"),
        400,
        "does not include this registration's client_id",
    ),
    (
        "missing_issuer",
        lambda platform, tool, login: _signed(platform, tool, login, iss=REMOVE),
        400,
        "issuer (missing) is not the issuer",
    ),
    (
        "missing_audience",
        lambda platform, tool, login: _signed(platform, tool, login, aud=REMOVE),
        400,
        "audience (missing) does not include",
    ),
    (
        "missing_version",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_version=REMOVE
        ),
        400,
        "LTI version (missing)",
    ),
    (
        "several_aud_no_azp",
        lambda platform, tool, login: _signed(
            platform, tool, login, aud=[CLIENT_ID, "other"]
        ),
        400,
        "lists several audiences but has no azp claim",
    ),
    (
        "azp_other_client",
        lambda platform, tool, login: _signed(
            platform, tool, login, aud=[CLIENT_ID, "other"], azp="other"
        ),
        400,
        "names 'other' as its azp",
    ),
    (
        "missing_deployment_id",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_deployment_id=REMOVE
        ),
        400,
        "no deployment_id claim",
    ),
    (
        "missing_roles",
        lambda platform, tool, login: _signed(platform, tool, login, lti_roles=REMOVE),
        400,
        "no roles claim",
    ),
    (
        "missing_resource_link",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_resource_link=REMOVE
        ),
        400,
        "no resource_link id",
    ),
    (
        "missing_sub",
        lambda platform, tool, login: _signed(platform, tool, login, sub=REMOVE),
        400,
        "'sub'",
    ),
    (
        "missing_nonce",
        lambda platform, tool, login: _signed(platform, tool, login, nonce=REMOVE),
        400,
        "'nonce'",
    ),
    (
        "wrong_nonce",
        lambda platform, tool, login: _signed(
            platform, tool, login, nonce="not-the-login-nonce"
        ),
        400,
        "nonce does not match",
    ),
    (
        "wrong_lti_version",
        lambda platform, tool, login: _signed(platform, tool, login, lti_version="1.1"),
        400,
        "LTI version '1.1'",
    ),
    (
        "unsupported_message",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_message_type="LtiSubmissionReviewRequest"
        ),
        400,
        "'LtiSubmissionReviewRequest' is not supported",
    ),
    (
        "missing_context",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_context=REMOVE
        ),
        400,
        "no course (context claim)",
    ),
    ("kid_absent", _kid_absent_two_keys, 400, "has no key id"),
    (
        "unknown_critical_header",
        _unknown_critical_header,
        400,
        "Unsupported critical extension",
    ),
    (
        "sub_not_string",
        lambda platform, tool, login: _signed(platform, tool, login, sub=3001),
        400,
        "Subject must be a string",
    ),
    (
        "iat_not_number",
        lambda platform, tool, login: _signed(platform, tool, login, iat="today"),
        400,
        "(iat) must be an integer",
    ),
    (
        "signature_not_base64url",
        lambda platform, tool, login: _signed(platform, tool, login)[:-4] + "!!!!",
        400,
        "not base64url-encoded JSON",
    ),
    ("kid_unknown", _kid_unknown, 400, "'no-such-key'"),
    (
        "kid_unknown_jwks_unreachable",
        _kid_unknown_jwks_unreachable,
        424,
        "could not be read",
    ),
    (
        "target_other_host",
        lambda platform, tool, login: _signed(
            platform, tool, login, lti_target_link_uri="https://evil.invalid/lti"
        ),
        400,
        "target_link_uri 'https://evil.invalid/lti'",
    ),
    ("not_a_jwt", lambda platform, tool, login: "this-is-not-a-jwt", 400, "not a JWT"),
    (
        "garbage_segments",
        lambda platform, tool, login: "a.b.c",
        400,
        "not base64url-encoded JSON",
    ),
    (
        "oversized",
        lambda platform, tool, login: "a." + "b" * 20000 + ".c",
        413,
        "bytes long",
    ),
    ("missing_id_token", lambda platform, tool, login: None, 400, "no id_token"),
]


def _page(response) -> str:
    return html.unescape(response.text)


def _nothing_created(db) -> None:
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LtiCourse)) == 0
    assert db.scalar(select(func.count()).select_from(Learner)) == 0


def _rejections(caplog) -> list[dict]:
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "request_rejected"
    ]


@pytest.mark.parametrize(
    ("build", "status", "phrase"),
    [case[1:] for case in TOKEN_CASES],
    ids=[case[0] for case in TOKEN_CASES],
)
def test_launch_rejected(tool, platform, db, caplog, build, status, phrase):
    """A launch with one fault gets its 4xx page, a log line with ids, and no rows."""
    caplog.set_level(logging.INFO)
    login = tool.start()

    response = tool.launch(build(platform, tool, login), login.state)

    assert response.status_code == status, response.text
    assert phrase in _page(response)
    assert "What to check:" in _page(response)
    logged = _rejections(caplog)
    assert logged, "the rejection was not logged"
    assert logged[-1]["registration"] == tool.public_id
    _nothing_created(db)


def test_rejection_logs_lti_ids(tool, platform, caplog):
    """A rejected launch logs its issuer, client_id and deployment_id."""
    caplog.set_level(logging.INFO)
    login = tool.start()

    tool.launch(_signed(platform, tool, login, lti_version="1.1"), login.state)

    logged = _rejections(caplog)[-1]
    assert logged["issuer"] == platform.issuer
    assert logged["client_id"] == CLIENT_ID
    assert logged["deployment_id"] == DEPLOYMENT_ID


def test_replayed_launch_rejected(tool, platform, db):
    """The same id_token and state posted twice: the second gets 400."""
    login = tool.start()
    token = _signed(platform, tool, login)

    first = tool.launch(token, login.state)
    second = tool.launch(token, login.state)

    assert first.status_code == 302
    assert second.status_code == 400
    assert "already used" in _page(second)


def test_used_nonce_recorded(tool, platform, db):
    """A successful launch records its state as used, and only that launch does."""
    login = tool.start()
    assert db.scalar(select(func.count()).select_from(LtiUsedNonce)) == 0

    response = tool.launch(_signed(platform, tool, login), login.state)

    assert response.status_code == 302
    assert db.scalar(select(func.count()).select_from(LtiUsedNonce)) == 1


def test_state_mismatch_rejected(tool, platform, db):
    """A state from another login, whose cookie this browser lacks, gets 400."""
    login = tool.start()
    other = ToolClient(tool.tool_url, tool.public_id, tool.issuer).start()

    response = tool.launch(_signed(platform, tool, login), other.state)

    assert response.status_code == 400
    assert "nonce does not match" in _page(response) or "state cookie" in _page(
        response
    )
    _nothing_created(db)


def test_state_cookie_missing_rejected(tool, platform, db):
    """A launch from a browser that dropped the state cookie gets 400 naming it."""
    login = tool.start()
    tool.http.cookies.clear()

    response = tool.launch(_signed(platform, tool, login), login.state)

    assert response.status_code == 400
    assert "state cookie" in _page(response)
    _nothing_created(db)


def test_unknown_state_rejected(tool, platform, db):
    """A state the tool never issued gets 400."""
    login = tool.start()

    response = tool.launch(_signed(platform, tool, login), "made-up-state")

    assert response.status_code == 400
    assert "state is unknown" in _page(response)


def test_expired_state_rejected(tool, platform, db, monkeypatch):
    """A launch posted after the login's state expired gets 400."""
    # The state is signed with an expiry one second before its login.
    monkeypatch.setattr(nonces, "LIFETIME", timedelta(seconds=-1))
    login = tool.start()

    response = tool.launch(_signed(platform, tool, login), login.state)

    assert response.status_code == 400
    assert "expired" in _page(response)


def test_unknown_deployment_held(tool, platform, db, registration):
    """Under the hold policy a new deployment gets 403 and waits for approval."""
    db.execute(update(type(registration)).values(new_deployment_policy="hold"))
    db.commit()
    login = tool.start()

    response = tool.launch(
        _signed(platform, tool, login, lti_deployment_id="new-deployment"), login.state
    )

    assert response.status_code == 403
    assert "waiting for a provider admin" in _page(response)
    held_deployment = db.scalar(
        select(Deployment).where(Deployment.deployment_id == "new-deployment")
    )
    assert held_deployment.status == DeploymentStatus.HELD.value
    _nothing_created(db)


def test_held_deployment_rejected_again(tool, platform, db, registration):
    """A deployment already held stays rejected until approved."""
    db.execute(update(Deployment).values(status=DeploymentStatus.HELD.value))
    db.commit()
    login = tool.start()

    response = tool.launch(_signed(platform, tool, login), login.state)

    assert response.status_code == 403
    _nothing_created(db)


def test_unknown_deployment_accepted(tool, platform, db):
    """Under the accept policy a new deployment is added and the launch works."""
    login = tool.start()

    response = tool.launch(
        _signed(platform, tool, login, lti_deployment_id="new-deployment"), login.state
    )

    assert response.status_code == 302
    added = db.scalar(
        select(Deployment).where(Deployment.deployment_id == "new-deployment")
    )
    assert added.status == DeploymentStatus.ACTIVE.value


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"iss": "https://other.invalid"}, "belongs to issuer"),
        ({"client_id": "client-2"}, "belongs to issuer"),
        ({"login_hint": None}, "no login_hint"),
        ({"target_link_uri": "https://evil.invalid/x"}, "not a URL of this tool"),
        ({"lti_message_hint": "x" * 3000}, "more than 2048"),
    ],
    ids=["issuer", "client_id", "login_hint", "target_link_uri", "oversized_hint"],
)
def test_login_rejected(tool, db, params, phrase):
    """A login initiation with one fault gets 400 naming it and sets no state cookie."""
    response = tool.login(**params)

    assert response.status_code == 400
    assert phrase in _page(response)
    assert "hpass_lti_state_" not in response.headers.get("Set-Cookie", "")


def test_state_cookie_flags(tool):
    """In loopback development mode the state cookie is HttpOnly and SameSite=Lax."""
    response = tool.login()

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
