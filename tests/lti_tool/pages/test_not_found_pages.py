"""Not found and wrong-method errors on the course pages, in the page's language."""

from __future__ import annotations

import pytest

from .conftest import launch_as

UNKNOWN = "0f0f0f0f-unknown"
# An id inside a sentence, isolated left to right for right-to-left pages.
ISOLATED = f'<bdi dir="ltr">{UNKNOWN}</bdi>'

BADGE_NOT_FOUND = {
    "en": f"This course has no badge with the id {ISOLATED}.",
    "fr": f"Ce cours n&#39;a aucun badge avec l&#39;identifiant {ISOLATED}.",
    "es": f"Este curso no tiene ninguna insignia con el identificador {ISOLATED}.",
    "ar": f"لا توجد في هذه الدورة شارة بالمعرّف {ISOLATED}.",
}
HEADING = {
    "en": "Not found",
    "fr": "Introuvable",
    "es": "No encontrado",
    "ar": "غير موجود",
}


@pytest.mark.parametrize("language", sorted(BADGE_NOT_FOUND))
def test_unknown_badge_edit_translated(client, tenants, language):
    """An unknown badge id names the badge and links back to the course page."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale=language)

    response = client.get(f"/course/{alpha.course_id}/achievements/{UNKNOWN}/edit")
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert BADGE_NOT_FOUND[language] in page
    assert f"<h1>{HEADING[language]}</h1>" in page
    assert f'href="/course/{alpha.course_id}"' in page
    assert "The requested URL was not found" not in page


def test_unknown_badge_arabic_right_to_left(client, tenants):
    """The Arabic not-found page is laid out right to left."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="ar")

    page = client.get(
        f"/course/{alpha.course_id}/achievements/{UNKNOWN}/edit"
    ).get_data(as_text=True)

    assert '<html lang="ar" dir="rtl">' in page


def test_unknown_backfill_cancel_french(client, tenants):
    """Cancelling an unknown backfill names the backfill id in French."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    response = client.post(
        f"/course/{alpha.course_id}/backfills/{UNKNOWN}/cancel",
        data={"csrf": "test-csrf"},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "Ce cours n&#39;a aucune attribution" in page
    assert UNKNOWN in page
    assert f'href="/course/{alpha.course_id}"' in page


def test_unknown_award_revoke_spanish(client, tenants):
    """Revoking an unknown award names the award id in Spanish."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="es")

    response = client.post(
        f"/course/{alpha.course_id}/awards/{UNKNOWN}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert (
        f"Ninguna insignia otorgada en este curso tiene el identificador {ISOLATED}."
        in page
    )


def test_unknown_path_translated(client, tenants):
    """A path no route matches gets the product's page, translated."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    response = client.get(f"/course/{alpha.course_id}/nothing-here")
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "Aucune page n&#39;existe à l&#39;adresse" in page
    assert f'href="/course/{alpha.course_id}"' in page


def test_wrong_method_names_allowed(client, tenants):
    """A 405 names the methods the route accepts, in the page and in Allow."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.get(f"/course/{alpha.course_id}/backfills/{UNKNOWN}/cancel")
    page = response.get_data(as_text=True)

    assert response.status_code == 405
    assert (
        'does not accept <bdi dir="ltr">GET</bdi> requests. Use one of: <bdi dir="ltr">'
    ) in page
    assert "POST" in page
    assert "POST" in response.headers["Allow"]


def test_wrong_method_json_names_allowed(client):
    """The API's 405 JSON body names the accepted methods too."""
    response = client.delete("/health")

    assert response.status_code == 405
    assert "Use one of: " in response.get_json()["message"]
    assert "GET" in response.headers["Allow"]


def test_arabic_unknown_path_isolated(client, tenants):
    """On an Arabic page the path of a not found address is isolated left to right
    inside the translated sentence."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="ar")

    response = client.get(f"/course/{alpha.course_id}/nothing-here")
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert '<html lang="ar" dir="rtl">' in page
    assert f'<bdi dir="ltr">/course/{alpha.course_id}/nothing-here</bdi>' in page


def test_json_not_found_plain_path(client):
    """A JSON error body names the path as typed, with no markup or entities."""
    response = client.get("/api/a&b<c>", headers={"Accept": "application/json"})
    message = response.get_json()["message"]

    assert response.status_code == 404
    assert "/api/a&b<c>" in message
    assert "bdi" not in message
    assert "&amp;" not in message
