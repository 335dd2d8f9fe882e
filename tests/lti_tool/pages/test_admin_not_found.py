"""Not found pages in the admin area: what is missing in this provider, and where to go."""

from __future__ import annotations

import pytest

from lti_tool.accounts import AccountRole

from .conftest import add_account, sign_in

DEAD_LETTER_NOT_FOUND = {
    "en": "This provider has no failed delivery number 999.",
    "fr": "Ce fournisseur n&#39;a aucune livraison en échec portant le numéro 999.",
    "es": "Este proveedor no tiene ninguna entrega fallida con el número 999.",
    "ar": "ليس لدى هذا المزوّد عملية تسليم فاشلة بالرقم 999.",
}
BACK_TO_FAILED = {
    "en": "Back to failed deliveries",
    "fr": "Retour aux livraisons en échec",
    "es": "Volver a las entregas fallidas",
    "ar": "العودة إلى عمليات التسليم الفاشلة",
}
LEARNER_ADVICE = "open the tool again from your course"


@pytest.fixture
def alpha_admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


@pytest.mark.parametrize("language", sorted(DEAD_LETTER_NOT_FOUND))
def test_unknown_dead_letter_translated(client, alpha_admin, language):
    """Retrying an unknown failed delivery names it and links back to the list."""
    response = client.post(
        "/admin/dead-letters/999/retry",
        data={"csrf": "test-csrf"},
        headers={"Accept-Language": language},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert DEAD_LETTER_NOT_FOUND[language] in page
    assert f'<a href="/admin/dead-letters">{BACK_TO_FAILED[language]}</a>' in page
    assert LEARNER_ADVICE not in page


def test_unknown_admin_path_points_to_overview(client, alpha_admin):
    """A path no admin route matches gets a 404 linking to the admin overview."""
    response = client.get("/admin/registrations/5")
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert (
        'The admin pages have no page at <bdi dir="ltr">/admin/registrations/5</bdi>.'
        in page
    )
    assert '<a href="/admin/">Back to the admin overview</a>' in page
    assert LEARNER_ADVICE not in page


def test_unknown_admin_path_french(client, alpha_admin):
    """The admin not found page for an unknown path is translated."""
    response = client.get("/admin/accounts/7", headers={"Accept-Language": "fr"})
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "Les pages d&#39;administration n&#39;ont aucune page" in page
    assert "Retour à la vue d&#39;ensemble de l&#39;administration" in page


def test_unknown_held_deployment_named(client, alpha_admin):
    """Approving an unknown deployment names it and links back to the held list."""
    response = client.post(
        "/lti/admin/deployments/4242/approve", data={"csrf": "test-csrf"}
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "This provider has no LTI deployment number 4242." in page
    assert '<a href="/lti/admin/deployments">Back to held deployments</a>' in page


def test_operator_unknown_provider_named(client, tenants, db):
    """An unknown provider id in the operator's choice is named, with the overview linked."""
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")

    response = client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": "31337"}
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "No provider with the number 31337 exists on the bridge." in page
    assert '<a href="/admin/">Back to the admin overview</a>' in page


def test_admin_not_found_json(client, alpha_admin):
    """A JSON client gets the same message without the page's link."""
    response = client.post(
        "/admin/dead-letters/999/retry",
        data={"csrf": "test-csrf"},
        headers={"Accept": "application/json"},
    )
    body = response.get_json()

    assert response.status_code == 404
    assert body["error"] == "not_found"
    assert body["message"].startswith(
        "This provider has no failed delivery number 999."
    )
