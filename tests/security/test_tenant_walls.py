"""Tenant walls: every role of provider alpha tries every route with provider beta's ids.

Each attempt must be rejected with a 4xx (or sent to the sign-in page), show none of
beta's data, and leave a `request_rejected` (or, in the JSON API, `api_action_rejected`)
log line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from badge_engine.models import Credential, Provider
from badge_engine.outbox import OutboxMessage, OutboxStatus, enqueue
from connectors.hpass.models import Delivery, PortfolioAccount
from connectors.models import LmsConnection
from lti_tool.accounts import AccountRole, AccountToken, TokenPurpose, issue_token
from lti_tool.api.tokens import create_api_token
from lti_tool.backfill import BackfillJob
from lti_tool.lti.registration_links import issue_registration_link
from lti_tool.lti.registrations import Registration, create_registration
from lti_tool.models import Deployment
from tests.support.account_cookie import account_session_transaction
from tests.lti_tool.pages.conftest import (
    MOODLE_COURSE_ID,
    add_account,
    add_credential,
    launch_as,
    sign_in,
)

# Routes anyone may read or call without a session, by design: public verification
# documents, sign-in, LTI entry points (checked by the LTI launch tests) and tokens
# that are capabilities on their own. A test checks that each listed endpoint exists.
PUBLIC_ENDPOINTS = {
    "static",
    "health.health",
    "metrics.metrics",
    "api.openapi",
    "auth.sign_in_form",
    "auth.sign_in",
    "auth.sign_out",
    "auth.reset_request_form",
    "auth.request_reset",
    "auth.reset_form",
    "auth.reset_password",
    "auth.invitation_form",
    "auth.accept_invitation",
    "lti.login",
    "lti.launch",
    "lti.jwks",
    "lti.deep_link",
    "lti.dynamic_registration",
    "public.achievement",
    "public.credential",
    "public.credential_baked_png",
    "public.credential_baked_svg",
    "public.endorsement",
    "public.ob2_assertion",
    "public.ob2_signed_assertion",
    "public.ob2_badge_class",
    "public.ob2_issuer",
    "public.ob2_key",
    "public.ob2_revocation_list",
    "public.provider_profile",
    "public.provider_did",
    "public.revocation_list",
    "public.status_list",
    "pages.achievement_image",
    "explain.versions",
    "portfolio.callback",
    # Webhooks authenticate with the connection's secret, which the webhook tests below check.
    "webhooks.moodle_event",
    "webhooks.moodle_xapi_statements",
    "canvas_webhooks.live_event",
}

ROLES = ("learner", "instructor", "provider_admin", "api_token")


@dataclass
class Target:
    """Beta's resource ids, by URL parameter name, and text that only beta's data has."""

    ids: dict[str, object]
    markers: tuple[str, ...]


@pytest.fixture
def walls(app, db, tenants):
    """Seed beta's credential, delivery, dead letter and portfolio account, and alpha's sign-ins."""
    alpha, beta = tenants
    credential = add_credential(db, beta)
    account = PortfolioAccount(
        provider_id=beta.provider_id,
        learner_id=beta.learner_id,
        api_base_url="https://portfolio-beta.example.org",
    )
    db.add(account)
    db.flush()
    delivery = Delivery(
        provider_id=beta.provider_id,
        credential_id=credential.id,
        portfolio_account_id=account.id,
    )
    db.add(delivery)
    message = enqueue(
        db,
        provider_id=beta.provider_id,
        kind="credential.deliver",
        payload={"delivery_id": 0},
        idempotency_key="beta-dead-letter",
    )
    message.status = OutboxStatus.DEAD.value
    connection = db.get(LmsConnection, beta.connection_id)
    job = BackfillJob(
        provider_id=beta.provider_id,
        lms_connection_id=beta.connection_id,
        lms_course_id=MOODLE_COURSE_ID,
        achievement_ids=[beta.achievement_id],
        trigger="manual",
        requested_by="test",
    )
    db.add(job)
    db.flush()
    _, token = create_api_token(
        db, provider_id=alpha.provider_id, name="alpha", created_by="test"
    )
    add_account(
        db, "admin@alpha.example.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    beta_admin = add_account(
        db, "admin@beta.example.org", AccountRole.PROVIDER_ADMIN, beta.provider_id
    )
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email="invited@beta.example.org",
        provider_id=beta.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=beta_admin.id,
    )
    invitation_id = db.scalar(
        select(AccountToken.id).where(AccountToken.email == "invited@beta.example.org")
    )
    registration_link, _ = issue_registration_link(
        db, provider_id=beta.provider_id, actor=f"account:{beta_admin.id}"
    )
    db.commit()
    target = Target(
        ids={
            "course_id": beta.course_id,
            "achievement_public_id": beta.achievement_public_id,
            "credential_public_id": credential.public_id,
            "achievement_id": beta.achievement_public_id,
            "award_id": credential.public_id,
            "backfill_id": job.public_id,
            "job_public_id": job.public_id,
            "connection_id": connection.public_id,
            "delivery_id": delivery.id,
            "message_id": message.id,
            "account_id": account.id,
            "admin_account_id": beta_admin.id,
            "invitation_id": invitation_id,
            "registration_link_id": registration_link.id,
            "registration_public_id": db.get(
                Registration, beta.registration_id
            ).public_id,
            "lms_user_id": "beta-only-user",
            "deployment_key": db.scalar(
                select(Deployment.id).where(Deployment.provider_id == beta.provider_id)
            ),
        },
        markers=(
            "Badge of beta",
            "Learner of beta",
            "Course of beta",
            "signed document",
            "admin@beta.example.org",
            "invited@beta.example.org",
        ),
    )
    return alpha, beta, target, token


def _sign_in_as(client, role: str, alpha, token: str) -> dict:
    """Sign the client in as one role of alpha and return the headers for API calls."""
    if role in ("learner", "instructor"):
        launch_as(client, alpha, role)
        return {}
    if role == "provider_admin":
        response = sign_in(client, "admin@alpha.example.org")
        assert response.status_code == 303
        return {}
    with client.session_transaction() as session:
        session["csrf"] = "test-csrf"
    return {"Authorization": f"Bearer {token}"}


def _url_for_rule(rule, target: Target) -> str:
    """Fill a rule's parameters with beta's ids, where `public_id` depends on the route."""
    values = {}
    for name in rule.arguments:
        if name == "public_id":
            if "/registrations/" in rule.rule:
                key = "registration_public_id"
            elif "/credentials/" in rule.rule or "/awards/" in rule.rule:
                key = "credential_public_id"
            else:
                key = "achievement_public_id"
            values[name] = target.ids[key]
        else:
            values[name] = target.ids[name]
    return re.sub(
        r"<(?:[a-z]+:)?([a-z_]+)>", lambda match: str(values[match[1]]), rule.rule
    )


def _walled_rules(app):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in PUBLIC_ENDPOINTS
    ]


def test_public_list_matches_routes(app):
    """Every endpoint named as public exists, so the list cannot hide a renamed route."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert PUBLIC_ENDPOINTS - endpoints == set()


def test_walled_routes_take_ids(app):
    """The matrix has a value of beta for every parameter name of a walled route."""
    names = {"public_id"} | set(
        [
            "course_id",
            "achievement_id",
            "award_id",
            "backfill_id",
            "connection_id",
            "delivery_id",
            "message_id",
            "account_id",
            "lms_user_id",
            "deployment_key",
            "job_public_id",
            "admin_account_id",
            "invitation_id",
            "registration_link_id",
        ]
    )
    for rule in _walled_rules(app):
        assert set(rule.arguments) <= names, rule.rule


@pytest.mark.parametrize("role", ROLES)
def test_role_cannot_reach_beta(app, walls, role, caplog):
    """Each role of alpha gets a 4xx or the sign-in page on every route with beta's ids."""
    alpha, _, target, token = walls
    client = app.test_client()
    headers = _sign_in_as(client, role, alpha, token)
    tried = 0
    for rule in _walled_rules(app):
        if not rule.arguments:
            continue
        url = _url_for_rule(rule, target)
        is_api = url.startswith("/api/")
        # A valid form token, so that the wall and not the CSRF check rejects the post.
        form = {"csrf": "test-csrf", "reason": "probe"}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            caplog.clear()
            with caplog.at_level(logging.INFO):
                response = client.open(
                    url,
                    method=method,
                    headers=headers,
                    data=form if method == "POST" and not is_api else None,
                    json={} if is_api and method in ("POST", "PATCH") else None,
                )
            tried += 1
            body = response.get_data(as_text=True)
            where = f"{role} {method} {url} -> {response.status_code}"
            if response.status_code == 303:
                assert "/account/sign-in" in response.headers["Location"], where
                continue
            assert 400 <= response.status_code < 500, where
            for marker in target.markers:
                assert marker not in body, where
            logged = " ".join(str(record.msg) for record in caplog.records)
            # The JSON API logs its own rejections as `api_action_rejected`.
            assert re.search(r"request_rejected|api_action_rejected", logged), where
    assert tried >= 25, "the matrix tried fewer routes than exist with ids"


@pytest.mark.parametrize("role", ("provider_admin",))
def test_admin_cannot_pick_beta(app, walls, role):
    """A provider admin cannot switch the acting provider to beta."""
    alpha, beta, _, token = walls
    client = app.test_client()
    _sign_in_as(client, role, alpha, token)

    response = client.post(
        "/admin/provider", data={"provider_id": beta.provider_id, "csrf": "test-csrf"}
    )

    assert response.status_code == 404
    with account_session_transaction(client) as session:
        assert "acting_provider_id" not in session


def test_moodle_webhook_rejects_alpha_secret(app, walls, caplog):
    """Beta's Moodle webhook rejects alpha's secret, in every place a secret can go."""
    _, beta, target, _ = walls
    client = app.test_client()
    url = f"/webhooks/moodle/{target.ids['connection_id']}"
    for path in (url, url + "/xapi/statements"):
        with caplog.at_level(logging.INFO):
            response = client.post(
                path,
                json={"eventname": "\\core\\event\\course_completed"},
                headers={
                    "Authorization": "Bearer webhook-secret-alpha",
                    "X-HPass-Webhook-Secret": "webhook-secret-alpha",
                },
            )
        assert response.status_code in (401, 403), path
        assert "Learner of beta" not in response.get_data(as_text=True)
    assert "request_rejected" in " ".join(str(record.msg) for record in caplog.records)


def test_canvas_webhook_rejects_alpha(app, walls):
    """Canvas live events for beta's connection id are rejected without beta's signature."""
    _, _, target, _ = walls
    client = app.test_client()

    response = client.post(
        f"/webhooks/canvas/{target.ids['connection_id']}",
        data="eyJhbGciOiJub25lIn0.eyJpc3MiOiJhbHBoYSJ9.",
        headers={"Content-Type": "application/jwt"},
    )

    assert 400 <= response.status_code < 500


def test_outbox_handlers_stay_in_provider(app, db, walls):
    """An outbox message of alpha that names beta's rows gives up and changes nothing."""
    from lti_tool.tasks import run_outbox_message

    alpha, beta, target, _ = walls
    before = db.scalar(select(Delivery).where(Delivery.id == target.ids["delivery_id"]))
    status_before = before.status
    attempts_before = before.attempts
    cases = {
        "credential.deliver": {"delivery_id": target.ids["delivery_id"]},
        "fact.evaluate": {"fact_id": 1},
        "moodle.reread_learner": {
            "connection_id": beta.connection_id,
            "lms_user_id": "42",
        },
    }
    ids = []
    for kind, payload in cases.items():
        message = enqueue(
            db,
            provider_id=alpha.provider_id,
            kind=kind,
            payload=payload,
            idempotency_key=f"alpha-{kind}",
        )
        ids.append(message.id)
    db.commit()

    with app.app_context():
        results = [run_outbox_message.run(message_id) for message_id in ids]

    assert results == ["failed", "failed", "failed"]
    db.expire_all()
    after = db.get(Delivery, target.ids["delivery_id"])
    assert after.status == status_before
    assert after.attempts == attempts_before
    for message_id in ids:
        message = db.get(OutboxMessage, message_id)
        assert "does not exist" in (message.last_error or "")


def test_api_token_wall_on_lists(app, walls):
    """Alpha's API token lists show none of beta's awards, deliveries or connections."""
    alpha, _, target, token = walls
    client = app.test_client()
    for path in (
        "/api/v1/awards",
        "/api/v1/deliveries",
        "/api/v1/lms-connections",
        "/api/v1/achievements",
        "/api/v1/facts",
        "/api/v1/backfills",
        "/api/v1/keys",
    ):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        body = response.get_data(as_text=True)
        assert response.status_code == 200, path
        for marker in target.markers:
            assert marker not in body, path
        assert str(target.ids["connection_id"]) not in body, path


def test_registration_of_beta_unused(db, walls):
    """The seed has one registration per provider, so launches cannot cross."""
    _, beta, _, _ = walls

    registration = db.get(Registration, beta.registration_id)

    assert registration.provider_id == beta.provider_id
    assert db.scalar(
        select(Credential).where(Credential.provider_id == beta.provider_id)
    )


def test_alpha_copy_of_beta_pair(app, db, walls):
    """Alpha may register beta's issuer and client id, but the API deployment
    approval of that pair with alpha's token changes only alpha's registration."""
    alpha, beta, _, token = walls
    beta_registration = db.get(Registration, beta.registration_id)
    copy = create_registration(
        db,
        app.extensions["hpass"].vault,
        db.get(Provider, alpha.provider_id),
        issuer=beta_registration.issuer,
        client_id=beta_registration.client_id,
        auth_login_url=beta_registration.auth_login_url,
        key_set_url=beta_registration.key_set_url,
    )
    db.commit()

    response = app.test_client().post(
        "/api/v1/deployments/approve",
        json={
            "issuer": beta_registration.issuer,
            "client_id": beta_registration.client_id,
            "deployment_id": "alpha-only",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    approved = db.scalars(
        select(Deployment.registration_id).where(
            Deployment.deployment_id == "alpha-only"
        )
    ).all()

    assert response.status_code == 200, response.get_data(as_text=True)
    assert approved == [copy.id]
    assert copy.provider_id != beta_registration.provider_id
