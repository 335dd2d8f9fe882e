"""The LTI registrations on /admin/connect: details, edit, remove and the CLI list."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.lti.registrations import create_registration
from lti_tool.models import Deployment, Registration

from .conftest import add_account, sign_in

PLATFORM = "http://127.0.0.1:9"


@pytest.fixture
def admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


def _unused_registration(app, db, tenant, client_id="spare") -> Registration:
    """Add a registration of the tenant's provider that no launch has used."""
    from badge_engine.models import Provider

    registration = create_registration(
        db,
        app.extensions["hpass"].vault,
        db.get(Provider, tenant.provider_id),
        issuer=PLATFORM,
        client_id=client_id,
        auth_login_url=PLATFORM + "/auth",
        key_set_url=PLATFORM + "/jwks",
        deployment_ids=("7", "12"),
    )
    db.commit()
    return registration


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_list_shows_deployments_and_site(client, admin):
    """Each registration lists its deployment ids, its LMS site and its buttons."""
    page = _page(client.get("/admin/connect"))

    assert "Deployment ids" in page
    assert '<code dir="ltr">1</code>' in page
    assert "LMS site" in page
    assert "/admin/registrations/" in page
    assert re.search(r'href="/admin/registrations/[\w-]+/edit"', page)
    assert re.search(r'href="/admin/registrations/[\w-]+/remove"', page)


def test_register_shows_confirmation(client, admin, db):
    """Registering by hand ends on the list with a status message naming it."""
    response = client.post(
        "/admin/connect/lti",
        data={
            "csrf": "test-csrf",
            "issuer": PLATFORM,
            "client_id": "client-1",
            "auth_login_url": PLATFORM + "/auth",
            "key_set_url": PLATFORM + "/jwks",
            "deployment_id": "3",
        },
        follow_redirects=True,
    )
    page = _page(response)

    assert response.status_code == 200
    assert 'role="status"' in page
    assert (
        f'The registration of <bdi dir="ltr">{PLATFORM}</bdi> with client id '
        '<bdi dir="ltr">client-1</bdi> is saved.' in page
    )


def test_remove_asks_then_removes(app, client, admin, db):
    """Remove shows a confirmation page; the POST deletes, audits and confirms."""
    registration = _unused_registration(app, db, admin)
    public_id = registration.public_id
    registration_id = registration.id

    confirm = _page(client.get(f"/admin/registrations/{public_id}/remove"))
    removed = client.post(
        f"/admin/registrations/{public_id}/remove", data={"csrf": "test-csrf"}
    )
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "lti_registration.removed")
    )
    db.expire_all()

    assert f'Remove the registration of <bdi dir="ltr">{PLATFORM}</bdi>?' in confirm
    assert 'name="csrf"' in confirm
    assert removed.status_code == 200
    assert 'role="status"' in _page(removed)
    assert 'with client id <bdi dir="ltr">spare</bdi> is removed.' in _page(removed)
    assert db.get(Registration, registration_id) is None
    assert (
        db.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(Deployment.registration_id == registration_id)
        )
        == 0
    )
    assert event.target == f"lti_registration:{public_id}"
    assert event.actor.startswith("account:")


def test_remove_needs_csrf(app, client, admin, db):
    """A removal without the form token changes nothing."""
    registration = _unused_registration(app, db, admin)

    response = client.post(f"/admin/registrations/{registration.public_id}/remove")
    db.expire_all()

    assert response.status_code in (400, 403)
    assert db.get(Registration, registration.id) is not None


def test_remove_in_use_kept(client, admin, db):
    """A registration with a course is not removed, and the page explains why."""
    registration = db.get(Registration, admin.registration_id)

    confirm = _page(client.get(f"/admin/registrations/{registration.public_id}/remove"))
    response = client.post(
        f"/admin/registrations/{registration.public_id}/remove",
        data={"csrf": "test-csrf"},
    )
    db.expire_all()

    assert "cannot be removed without losing them" in confirm
    assert "Remove the registration</button>" not in confirm
    assert response.status_code == 409
    assert db.get(Registration, admin.registration_id) is not None


def test_other_provider_registration_not_found(client, admin, tenants, db):
    """Another provider's registration is a 404 for every registration page."""
    _, beta = tenants
    foreign = db.get(Registration, beta.registration_id).public_id

    responses = [
        client.get(f"/admin/registrations/{foreign}/remove"),
        client.get(f"/admin/registrations/{foreign}/edit"),
        client.post(
            f"/admin/registrations/{foreign}/remove", data={"csrf": "test-csrf"}
        ),
        client.post(
            f"/admin/registrations/{foreign}/edit",
            data={"csrf": "test-csrf", "new_deployment_policy": "hold"},
        ),
    ]
    db.expire_all()

    assert [response.status_code for response in responses] == [404] * 4
    assert db.get(Registration, beta.registration_id).new_deployment_policy == "accept"


def test_edit_saves_and_audits(app, client, admin, db):
    """An edit changes the URLs, policy and site, records what changed, and confirms."""
    registration = _unused_registration(app, db, admin)
    public_id = registration.public_id

    form = _page(client.get(f"/admin/registrations/{public_id}/edit"))
    response = client.post(
        f"/admin/registrations/{public_id}/edit",
        data={
            "csrf": "test-csrf",
            "auth_login_url": PLATFORM + "/auth2",
            "key_set_url": PLATFORM + "/jwks",
            "auth_token_url": PLATFORM + "/token",
            "new_deployment_policy": "hold",
            "lms_connection_id": str(admin.connection_id),
        },
        follow_redirects=True,
    )
    db.expire_all()
    saved = db.get(Registration, registration.id)
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "lti_registration.updated")
    )

    assert 'name="lms_connection_id"' in form
    assert response.status_code == 200
    assert 'with client id <bdi dir="ltr">spare</bdi> is saved.' in _page(response)
    assert saved.auth_login_url == PLATFORM + "/auth2"
    assert saved.auth_token_url == PLATFORM + "/token"
    assert saved.new_deployment_policy == "hold"
    assert saved.lms_connection_id == admin.connection_id
    assert saved.issuer == PLATFORM
    assert event.detail["changed"] == [
        "auth_login_url",
        "auth_token_url",
        "lms_connection_id",
        "new_deployment_policy",
    ]


def test_edit_keeps_site_of_used_registration(client, admin, db):
    """The LMS site of a registration with courses cannot be changed or cleared."""
    registration = db.get(Registration, admin.registration_id)

    form = _page(client.get(f"/admin/registrations/{registration.public_id}/edit"))
    client.post(
        f"/admin/registrations/{registration.public_id}/edit",
        data={
            "csrf": "test-csrf",
            "auth_login_url": registration.auth_login_url,
            "key_set_url": registration.key_set_url,
            "new_deployment_policy": "accept",
            "lms_connection_id": "",
        },
    )
    db.expire_all()

    assert 'name="lms_connection_id"' not in form
    assert "The LMS site cannot change" in form
    assert db.get(Registration, admin.registration_id).lms_connection_id == (
        admin.connection_id
    )


def test_edit_rejects_private_url(app, client, admin, db):
    """An edited platform URL is checked like a new one, and nothing is saved."""
    registration = _unused_registration(app, db, admin)

    response = client.post(
        f"/admin/registrations/{registration.public_id}/edit",
        data={
            "csrf": "test-csrf",
            "auth_login_url": "https://10.0.0.1/auth",
            "key_set_url": PLATFORM + "/jwks",
            "new_deployment_policy": "sometimes",
        },
    )
    page = _page(response)
    db.expire_all()

    assert response.status_code == 400
    assert 'the non-public address <bdi dir="ltr">10.0.0.1</bdi>' in page
    assert "Choose whether new deployments are accepted or held." in page
    assert db.get(Registration, registration.id).auth_login_url == PLATFORM + "/auth"


def test_registration_pages_translated(app, client, admin, db):
    """The registration texts appear in French, with a narrow space before "?"."""
    registration = _unused_registration(app, db, admin)

    listed = _page(client.get("/admin/connect", headers={"Accept-Language": "fr"}))
    confirm = _page(
        client.get(
            f"/admin/registrations/{registration.public_id}/remove",
            headers={"Accept-Language": "fr"},
        )
    )

    assert "Identifiants de déploiement" in listed
    assert (
        f'Supprimer l\'enregistrement de <bdi dir="ltr">{PLATFORM}</bdi>\u202f?'
    ) in confirm


def _register_by_hand(client, client_id: str = "shared-client", language: str = "en"):
    return client.post(
        "/admin/connect/lti",
        data={
            "csrf": "test-csrf",
            "issuer": PLATFORM,
            "client_id": client_id,
            "auth_login_url": PLATFORM + "/auth",
            "key_set_url": PLATFORM + "/jwks",
            "deployment_id": "3",
        },
        headers={"Accept-Language": language},
    )


def test_two_providers_register_same_pair(app, client, admin, tenants, db):
    """Admins of two providers each register the same issuer and client id by
    hand, and each provider gets a registration of its own."""
    _, beta = tenants
    add_account(db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id)
    beta_client = app.test_client()
    sign_in(beta_client, "admin@beta.org")

    alpha_saved = _register_by_hand(client)
    beta_saved = _register_by_hand(beta_client)
    registrations = db.scalars(
        select(Registration)
        .where(Registration.client_id == "shared-client")
        .order_by(Registration.id)
    ).all()

    assert alpha_saved.status_code == 303
    assert beta_saved.status_code == 303
    assert [r.provider_id for r in registrations] == [
        admin.provider_id,
        beta.provider_id,
    ]
    assert registrations[0].public_id != registrations[1].public_id
    beta_page = _page(beta_client.get("/admin/connect"))
    assert registrations[1].public_id in beta_page
    assert registrations[0].public_id not in beta_page


def test_same_pair_twice_in_provider(app, client, admin, tenants, db):
    """A second registration of a pair in one provider is rejected with a message
    about that provider only, although another provider has the pair too."""
    _, beta = tenants
    _unused_registration(app, db, beta, client_id="shared-client")
    _register_by_hand(client)

    again = _register_by_hand(client)
    page = _page(again)

    assert again.status_code == 400
    assert (
        "This provider already has a registration with this issuer and client id."
        in page
    )
    assert "registered on the bridge" not in page
    assert "Beta" not in page
    assert (
        db.scalar(
            select(func.count())
            .select_from(Registration)
            .where(
                Registration.provider_id == admin.provider_id,
                Registration.client_id == "shared-client",
            )
        )
        == 1
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "Ce fournisseur a déjà un enregistrement"),
        ("es", "Este proveedor ya tiene un registro"),
        ("ar", "لدى هذا المزوّد تسجيل"),
    ],
)
def test_same_pair_message_translated(client, admin, language, expected):
    """The rejection of a second registration of a pair is translated."""
    _register_by_hand(client)

    page = _page(_register_by_hand(client, language=language))

    assert expected in page
