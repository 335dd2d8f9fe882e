"""Errors of the instructor's forms in the page's language, and French colons."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from badge_engine.models import Credential
from badge_engine.status import revoke_credential
from lti_tool.images import ImageRejected, check_image

from .conftest import add_credential, launch_as

NBSP = "\u00a0"


def png_bytes(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def badge_form(**overrides) -> dict:
    form = {
        "csrf": "test-csrf",
        "name": "First aid basics",
        "description": "Knows first aid.",
        "criteria": "Completed the first aid course.",
        "rule_kind": "course_completed",
    }
    form.update(overrides)
    return form


def _revoke(client, tenant, credential, reason):
    return client.post(
        f"/course/{tenant.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": reason},
    )


EMPTY_REASON = {
    "en": "Enter the reason for revoking this badge",
    "fr": "Indiquez le motif de la révocation de ce badge",
    "es": "Indique el motivo para revocar esta insignia",
    "ar": "أدخل سبب إلغاء هذه الشارة",
}


@pytest.mark.parametrize("language", sorted(EMPTY_REASON))
@pytest.mark.parametrize("reason", ["", "   ", "\u200b"])
def test_revoke_empty_reason_form(client, tenants, db, language, reason):
    """An empty reason shows the form again with a translated field error."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor", locale=language)

    response = _revoke(client, alpha, credential, reason)
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert EMPTY_REASON[language] in page
    assert "credential_id=" not in page
    assert "A revocation needs a reason" not in page
    assert f'id="reason-{credential.public_id}-error"' in page
    assert 'aria-invalid="true"' in page
    assert f'aria-describedby="reason-{credential.public_id}-error"' in page
    assert '<details class="revoke" open>' in page
    assert f'href="#reason-{credential.public_id}"' in page
    db.expire_all()
    assert db.get(Credential, credential.id).status == "live"


def test_revoke_error_page_rtl(client, tenants, db):
    """The Arabic form with its error is laid out right to left."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor", locale="ar")

    page = _revoke(client, alpha, credential, "").get_data(as_text=True)

    assert 'dir="rtl"' in page
    assert 'lang="ar"' in page


def test_revoke_too_long_reason(client, tenants, db):
    """A reason over 1000 characters is kept in the field with the limit named."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor", locale="fr")

    response = _revoke(client, alpha, credential, "x" * 1001)
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "Le motif compte 1\u202f001 caractères" in page
    assert "à 1\u202f000 caractères au plus" in page
    assert 'value="' + "x" * 1001 + '"' in page
    db.expire_all()
    assert db.get(Credential, credential.id).status == "live"


def test_revoke_already_revoked_translated(client, tenants, db):
    """Revoking a revoked badge again is rejected in the page's language."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    revoke_credential(db, credential, "Issued in error", actor="test")
    db.commit()
    launch_as(client, alpha, "instructor", locale="es")

    response = _revoke(client, alpha, credential, "Otra vez")
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "Esta insignia ya se revocó" in page
    assert "credential_id=" not in page
    assert "already revoked" not in page


def test_revoke_valid_reason_still_works(client, tenants, db):
    """A reason with visible text revokes the badge, trimmed."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor", locale="fr")

    response = _revoke(client, alpha, credential, "  Délivré par erreur ")

    assert response.status_code == 303
    db.expire_all()
    assert db.get(Credential, credential.id).revocation_reason == "Délivré par erreur"


SVG_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b"<script>alert(1)</script></svg>"
)
IMAGE_CASES = [
    ("svg_script", SVG_SCRIPT, "svg_element"),
    ("not_image", b"GIF89a not a badge", "not_png_or_svg"),
    ("too_large", png_bytes(128, 128) + b"\0" * (513 * 1024), "too_large"),
    ("too_small", png_bytes(40, 40), "bad_dimensions"),
    (
        "svg_handler",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" '
        b'height="100" onload="alert(1)"/>',
        "svg_event_handler",
    ),
    (
        "svg_outside",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" '
        b'height="100"><image href="https://example.org/x.png"/></svg>',
        "svg_outside_resource",
    ),
    ("svg_no_size", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "svg_no_size"),
    (
        "svg_doctype",
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "b">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>',
        "svg_doctype",
    ),
]
TRANSLATED_IMAGE_ERRORS = {
    "svg_script": {
        "fr": "Le SVG contient un élément &lt;script&gt;",
        "es": "El SVG contiene un elemento &lt;script&gt;",
        "ar": "يحتوي ملف SVG على العنصر &lt;script&gt;",
    },
    "not_image": {
        "fr": "Le fichier n&#39;est pas une image PNG ou SVG",
        "es": "El archivo no es una imagen PNG ni SVG",
        "ar": "الملف ليس صورة PNG أو SVG",
    },
    "too_large": {
        "fr": "Téléversez un fichier de 512 Ko au plus",
        "es": "Suba un archivo de 512 KB como máximo",
        "ar": "ارفع ملفًا لا يزيد حجمه على 512 كيلوبايت",
    },
    "too_small": {
        "fr": "L&#39;image mesure 40 × 40 pixels",
        "es": "La imagen mide 40 × 40 píxeles",
        "ar": "أبعاد الصورة 40 × 40 بكسل",
    },
    "svg_handler": {
        "fr": "gestion d&#39;événement onload",
        "es": "manejo de eventos onload",
        "ar": "سمة معالجة الأحداث onload",
    },
    "svg_outside": {
        "fr": "Le SVG charge une ressource extérieure",
        "es": "El SVG carga un recurso de fuera",
        "ar": "يحمّل ملف SVG موردًا من خارج الملف",
    },
    "svg_no_size": {
        "fr": "Le SVG n&#39;a ni largeur",
        "es": "El SVG no tiene ancho y alto",
        "ar": "لا يحدد ملف SVG عرضًا وارتفاعًا",
    },
    "svg_doctype": {
        "fr": "Le SVG déclare un DOCTYPE",
        "es": "El SVG declara un DOCTYPE",
        "ar": "يعلن ملف SVG عن DOCTYPE",
    },
}


@pytest.mark.parametrize(("case", "content", "code"), IMAGE_CASES)
def test_image_rejection_keeps_english(case, content, code):
    """check_image raises with an English message and a code for the page."""
    with pytest.raises(ImageRejected) as raised:
        check_image(content)

    assert raised.value.code == code
    assert str(raised.value).startswith("the ")


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
@pytest.mark.parametrize(("case", "content", "code"), IMAGE_CASES)
def test_image_rejection_translated(client, tenants, language, case, content, code):
    """Every image rejection on the badge form is in the page's language."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale=language)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(content), "badge.bin")},
    )
    page = response.get_data(as_text=True)
    error = page.split('id="image-error">', 1)[1].split("</p>", 1)[0]

    assert response.status_code == 400
    assert TRANSLATED_IMAGE_ERRORS[case][language] in error
    assert "upload again" not in error
    assert "The image was not accepted" not in error


def test_french_label_colon_nbsp(client, tenants, db):
    """French puts a non-breaking space before the colon joining label and value."""
    from connectors.hpass.models import Delivery

    alpha, _ = tenants
    credential = add_credential(db, alpha)
    db.add(
        Delivery(
            provider_id=alpha.provider_id,
            credential_id=credential.id,
            status="delivered",
        )
    )
    db.commit()
    launch_as(client, alpha, "learner", locale="fr")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert f"Portfolio HPass{NBSP}: Livré" in page
    assert "Portfolio HPass: " not in page
    assert "Portfolio HPass : " not in page


def test_french_error_summary_colon(client, tenants):
    """The French error summary joins a field's label and error with " :"."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    page = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name="")
    ).get_data(as_text=True)

    assert f"Nom du badge{NBSP}: " in page
