"""Learner and instructor pages inside the LMS: content, framing, forms, tenancy."""

from __future__ import annotations

import csv
import io
import re
import struct
import zlib
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from badge_engine.models import Achievement, Credential, Learner
from badge_engine.status import revoke_credential
from connectors.hpass.models import Delivery
from lti_tool.accounts import AuditEvent
from lti_tool.images import AchievementImage

from .conftest import add_credential, launch_as


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


def count_achievements(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Achievement.id)))


def test_learner_page_names_missing_step(client, tenants):
    """A badge not earned yet says so and names what is missing."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "Not earned yet" in page
    assert "Complete the course" in page
    assert "Badge of alpha" in page


def test_learner_page_shows_earned_badge(client, tenants, db):
    """An earned badge shows its date, delivery status, download and public link."""
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
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "Earned" in page
    assert "March 14, 2026" in page
    assert 'data-status="delivered"' in page
    assert "HPass portfolio: Delivered" in page
    assert f"/credentials/{credential.public_id}" in page
    assert f"/credentials/{credential.public_id}/download" in page


def _revoke(db, credential: Credential, reason: str = "Issued by mistake") -> None:
    revoke_credential(
        db,
        credential,
        reason,
        actor="instructor",
        now=datetime(2026, 4, 2, 8, 0, tzinfo=timezone.utc),
    )
    db.commit()


def test_learner_page_shows_revoked_badge(client, tenants, db):
    """A revoked badge shows as revoked, with its date and reason, and no steps."""
    alpha, _ = tenants
    _revoke(db, add_credential(db, alpha))
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    card = page.split('<li class="card"')[1]

    assert '<p class="status revoked">' in card
    assert "Revoked by its issuer on" in card
    assert '<time datetime="2026-04-02T08:00:00+00:00">April 2, 2026</time>' in card
    assert '<span dir="auto">Issued by mistake</span>' in card
    assert "ask your course's instructor" in card
    assert "Not earned yet" not in card
    assert "Still missing" not in card
    assert "Complete the course" not in card
    assert "Why not yet?" not in card


def test_learner_page_reearned_after_revocation(client, tenants, db):
    """A badge earned again after a revocation shows as earned, not revoked."""
    alpha, _ = tenants
    _revoke(db, add_credential(db, alpha))
    add_credential(db, alpha)
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    card = page.split('<li class="card"')[1]

    assert "Earned" in card
    assert "status revoked" not in card


def test_revoked_badge_only_for_its_learner(client, tenants, db):
    """Another learner's revoked badge leaves the launched learner's card unchanged."""
    alpha, _ = tenants
    other = Learner(
        provider_id=alpha.provider_id,
        lms_connection_id=alpha.connection_id,
        lms_user_id="77",
    )
    db.add(other)
    db.flush()
    credential = add_credential(db, alpha)
    credential.learner_id = other.id
    credential.live_key = f"{alpha.achievement_id}:{other.id}"
    _revoke(db, credential)
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "status revoked" not in page
    assert "Not earned yet" in page


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", ["Révoqué par son émetteur le", "Motif\u00a0:", "l’enseignant"]),
        ("es", ["Revocada", "ya no es válida", "profesor de su curso"]),
        ("ar", ["ألغتها الجهة المانحة", "لم تعد هذه الشارة صالحة", "مدرّس دورتك"]),
    ],
)
def test_revoked_badge_translated(client, tenants, db, language, words):
    """The revoked badge's status, date line and advice are in the page language."""
    alpha, _ = tenants
    _revoke(db, add_credential(db, alpha))
    launch_as(client, alpha, "learner", locale=language)

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    card = page.split('<li class="card"')[1]

    for word in words:
        assert word in card
    assert "Issued by mistake" in card


def test_learner_downloads_own_credential(client, tenants, db):
    """The download link sends the signed credential as a JSON attachment."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "learner")

    response = client.get(
        f"/course/{alpha.course_id}/credentials/{credential.public_id}/download"
    )

    assert response.status_code == 200
    assert response.mimetype == "application/vc+ld+json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_json()["name"] == "signed document"


def test_download_of_other_provider_credential(client, tenants, db):
    """A credential of another provider is not found from this course."""
    alpha, beta = tenants
    foreign = add_credential(db, beta)
    launch_as(client, alpha, "learner")

    response = client.get(
        f"/course/{alpha.course_id}/credentials/{foreign.public_id}/download"
    )

    assert response.status_code == 404


def test_course_page_frame_ancestors(client, tenants):
    """Course pages may be framed by the launching platform and by no one else."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    response = client.get(f"/course/{alpha.course_id}")
    policy = response.headers["Content-Security-Policy"]

    assert "frame-ancestors 'self' https://lms-alpha.example.org" in policy
    assert "lms-beta" not in policy
    assert "X-Frame-Options" not in response.headers


def test_course_of_other_launch_forbidden(client, tenants):
    """A course the session did not launch is refused with a 403."""
    alpha, beta = tenants
    launch_as(client, alpha, "instructor")

    response = client.get(f"/course/{beta.course_id}")

    assert response.status_code == 403
    assert "did not launch" in response.get_data(as_text=True)


def test_instructor_creates_badge(client, tenants, db):
    """A valid form creates the badge and records who did it."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(png_bytes(128, 128)), "b.png")},
    )

    assert response.status_code == 303
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    assert created is not None
    assert created.award_rule == {"version": 1, "rule": {"kind": "course_completed"}}
    assert created.image_url.startswith("http://127.0.0.1:5999/images/")
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "achievement.created")
    )
    assert event.actor == "lti:9"
    assert event.provider_id == alpha.provider_id
    assert event.detail["course_id"] == created.lms_course_id
    image = client.get(created.image_url.removeprefix("http://127.0.0.1:5999"))
    assert image.status_code == 200
    assert image.mimetype == "image/png"


def test_instructor_form_missing_fields(client, tenants, db):
    """Missing fields are refused beside each field and nothing is saved."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(name="", criteria="  "),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="name-error"' in page
    assert 'aria-describedby="name-error"' in page
    assert 'aria-invalid="true"' in page
    assert 'id="criteria-error"' in page
    assert "Badge name is required" in page
    assert count_achievements(db) == before


@pytest.mark.parametrize(
    "name",
    ["\u200b", " \u200f\u200e ", "\u2066\u2069", "\u3000"],
    ids=["zero-width-space", "direction-marks", "isolates", "ideographic-space"],
)
def test_invisible_name_refused(client, tenants, db, name):
    """A name of characters that show nothing is refused as missing."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name=name)
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "Badge name is required" in page
    assert count_achievements(db) == before


BIDI_CONTROLS = [chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_control_in_name_rejected(client, tenants, db, control):
    """A direction control inside a name is rejected, naming the character."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(name=f"First aid {control}cisab"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="name-error"' in page
    assert f"contains the direction control character U+{ord(control):04X}" in page
    assert "Delete it and save again." in page
    assert count_achievements(db) == before


def test_override_in_description_rejected(client, tenants, db):
    """U+202E RIGHT-TO-LEFT OVERRIDE in the description is rejected beside it."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(description="Knows \u202edia tsrif."),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="description-error"' in page
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in page
    assert count_achievements(db) == before


def test_override_error_in_french(client, tenants, db):
    """The direction control error is translated for a French launch."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(name="Premiers \u202esnios"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "contient le caractère de contrôle de direction U+202E" in page
    assert "Supprimez-le et enregistrez de nouveau." in page


def test_override_error_in_arabic(client, tenants, db):
    """The direction control error is shown in Arabic on a right-to-left page."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="ar")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(name="إسعافات \u2067أولية"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert '<html lang="ar" dir="rtl">' in page
    assert "على محرف التحكم في الاتجاه U+2067 RIGHT-TO-LEFT ISOLATE" in page


@pytest.mark.parametrize(
    "name",
    [
        "إسعافات أولية",
        "עזרה ראשונה",
        "First aid \u200f(إسعافات أولية)\u200e basics",
        "\u200fעזרה ראשונה 2\u200f",
    ],
    ids=["arabic", "hebrew", "direction-marks", "hebrew-with-rlm"],
)
def test_right_to_left_name_accepted(client, tenants, db, name):
    """Arabic and Hebrew names, and the marks U+200E and U+200F, are saved as typed."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name=name)
    )

    assert response.status_code in (302, 303), response.get_data(as_text=True)
    db.expire_all()
    created = db.scalar(select(Achievement).where(Achievement.name == name))
    assert created is not None


def test_instructor_form_keeps_values(client, tenants):
    """A refused form shows the values typed, so nothing has to be typed twice."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    page = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(description=""),
    ).get_data(as_text=True)

    assert 'value="First aid basics"' in page
    assert "Completed the first aid course." in page


def test_instructor_form_overlong_name(client, tenants, db):
    """A name over 200 characters is refused with its length and the limit."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name="x" * 201)
    )

    assert response.status_code == 400
    assert "201 characters long" in response.get_data(as_text=True)
    assert count_achievements(db) == before


def test_script_in_name_shown_as_text(client, tenants):
    """A script typed into a badge name is stored and shown as plain text."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    hostile = "<script>alert(1)</script> badge"

    client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name=hostile)
    )
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; badge" in page


def test_mixed_direction_name_isolated(client, tenants):
    """An Arabic name mixed with Latin text is shown in a dir="auto" element."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    name = "شارة First Aid ١"

    client.post(f"/course/{alpha.course_id}/achievements", data=badge_form(name=name))
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert f'<h3 dir="auto">{name}</h3>' in page


def test_svg_with_script_refused(client, tenants, db):
    """An SVG image containing a script is refused beside the image field."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b"<script>alert(1)</script></svg>"
    )
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(svg), "b.svg")},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="image-error"' in page
    assert "&lt;script&gt; element" in page
    assert count_achievements(db) == before
    assert db.scalar(select(func.count(AchievementImage.id))) == 0


def test_badge_image_on_course_pages(client, tenants, db):
    """Both course pages show an uploaded image by path, with alt text naming it."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(png_bytes(128, 128)), "b.png")},
    )
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    path = created.image_url.removeprefix("http://127.0.0.1:5999")

    for role in ("instructor", "learner"):
        launch_as(client, alpha, role)
        page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

        assert f'src="{path}"' in page, role
        assert "127.0.0.1:5999/images/" not in page, role
        alt = 'alt="Image of the badge “\u2068First aid basics\u2069”"'
        assert alt in page, role
        assert 'width="72" height="72"' in page, role


def test_badge_without_image_has_no_img(client, tenants):
    """A badge without an uploaded image shows no broken image."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "Badge of alpha" in page
    assert 'class="badge-image"' not in page


def test_badge_image_alt_translated(client, tenants, db):
    """The image's alt text follows the page's language."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(png_bytes(128, 128)), "b.png")},
    )
    launch_as(client, alpha, "learner", locale="ar")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "Image of the badge" not in page
    assert 'alt="صورة الشارة «\u2068First aid basics\u2069»"' in page


def test_huge_upload_refused(client, tenants, db):
    """A 50 MB upload is refused with a message beside the image field."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data={**badge_form(), "image": (io.BytesIO(b"\0" * 50 * 1024 * 1024), "b.png")},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="image-error"' in page
    assert "too large" in page
    assert count_achievements(db) == before


def test_wrong_csrf_token_refused(client, tenants, db):
    """A form without the session's CSRF token is refused and nothing is saved."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(csrf="forged")
    )

    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert count_achievements(db) == before


def test_learner_cannot_create_badge(client, tenants, db):
    """A learner's session cannot post the instructor form."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")
    before = count_achievements(db)

    response = client.post(f"/course/{alpha.course_id}/achievements", data=badge_form())

    assert response.status_code == 403
    assert count_achievements(db) == before


def test_instructor_edits_badge(client, tenants, db):
    """The edit form shows the badge's values and saves changes."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    url = f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}"

    form_page = client.get(url + "/edit").get_data(as_text=True)
    response = client.post(url, data=badge_form(name="Renamed badge"))

    assert 'value="Badge of alpha"' in form_page
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Achievement, alpha.achievement_id).name == "Renamed badge"


def test_edit_of_other_provider_badge(client, tenants, db):
    """Each resource id of provider beta is not found from provider alpha's course."""
    alpha, beta = tenants
    foreign = add_credential(db, beta)
    launch_as(client, alpha, "instructor")
    base = f"/course/{alpha.course_id}"

    responses = [
        client.get(f"{base}/achievements/{beta.achievement_public_id}/edit"),
        client.post(
            f"{base}/achievements/{beta.achievement_public_id}", data=badge_form()
        ),
        client.post(
            f"{base}/awards/{foreign.public_id}/revoke",
            data={"csrf": "test-csrf", "reason": "Issued in error"},
        ),
    ]

    assert [response.status_code for response in responses] == [404, 404, 404]
    db.expire_all()
    assert db.get(Achievement, beta.achievement_id).name == "Badge of beta"
    assert db.get(Credential, foreign.id).status == "live"


def test_instructor_revokes_award(client, tenants, db):
    """Revoking with a reason marks the credential revoked and audits it."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )

    assert response.status_code == 303
    db.expire_all()
    revoked = db.get(Credential, credential.id)
    assert revoked.status == "revoked"
    assert revoked.revocation_reason == "Issued in error"
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "credential.revoked")
    )
    assert event.detail["reason"] == "Issued in error"


def test_revoke_confirmed_on_next_page(client, tenants, db):
    """After a revocation the awards section confirms it in a focusable status."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    again = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert response.headers["Location"].endswith("#revoke-notice")
    notice = re.search(
        r'<p class="notice" role="status" tabindex="-1" id="revoke-notice">(.*?)</p>',
        page,
    )
    assert notice is not None
    assert notice.group(1) == (
        "The badge “<bdi>Badge of alpha</bdi>” of <bdi>Learner of alpha</bdi> was "
        "revoked. Anyone who "
        "checks it now sees that it is revoked, and why."
    )
    assert page.index('id="awards-heading"') < page.index('id="revoke-notice"')
    assert 'id="course-notice"' not in page
    assert 'id="revoke-notice"' not in again


def test_revoke_notice_translated(client, tenants, db):
    """The revocation notice is in the page language."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor", locale="fr")

    client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    notice = (
        "Le badge «\u00a0<bdi>Badge of alpha</bdi>\u00a0» de <bdi>Learner of alpha</bdi> "
        "a été révoqué."
    )
    assert notice in page


def test_revoke_without_reason_refused(client, tenants, db):
    """A revocation without a reason is refused and the credential stays live."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "  "},
    )

    assert response.status_code == 400
    assert "Enter the reason for revoking this badge" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Credential, credential.id).status == "live"


def test_awards_csv_export(client, tenants, db):
    """The CSV lists each award and defuses cells that spreadsheets run."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    credential.learner.name = "=HYPERLINK(1)"
    db.commit()
    launch_as(client, alpha, "instructor")

    response = client.get(f"/course/{alpha.course_id}/awards.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))

    assert response.mimetype == "text/csv"
    assert rows[0][:3] == ["learner", "lms_user_id", "badge"]
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][2] == "Badge of alpha"
    assert rows[1][6].endswith(credential.public_id)
    assert len(rows) == 2


def _skill_fields(*rows: tuple[str, str, str], **overrides) -> list[tuple[str, str]]:
    fields = list(badge_form(**overrides).items())
    for name, url, framework in rows:
        fields += [
            ("skill_name", name),
            ("skill_url", url),
            ("skill_framework", framework),
        ]
    return fields


def test_badge_created_with_skills(client, tenants, db):
    """Skills typed in the form are stored as alignments; empty rows are ignored."""

    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=MultiDict(
            _skill_fields(
                ("First aid", "https://skills.example.org/first-aid", "CHCF"),
                ("", "", ""),
            )
        ),
    )

    assert response.status_code == 303
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    assert created.alignments == [
        {
            "targetName": "First aid",
            "targetUrl": "https://skills.example.org/first-aid",
            "targetFramework": "CHCF",
        }
    ]
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert 'href="https://skills.example.org/first-aid"' in page


@pytest.mark.parametrize(
    ("row", "input_id", "message"),
    [
        (
            ("", "https://skills.example.org/x", ""),
            "skill_name-1",
            "Skill 1 needs a name.",
        ),
        (
            ("First aid", "javascript:alert(1)", ""),
            "skill_url-1",
            "Skill 1 needs a link",
        ),
        (("First aid", "", ""), "skill_url-1", "Skill 1 needs a link"),
    ],
    ids=["no-name", "script-link", "no-link"],
)
def test_bad_skill_rejected(client, tenants, db, row, input_id, message):
    """A skill row without a name or an http(s) link is refused beside the field."""

    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=MultiDict(_skill_fields(row))
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert f'id="{input_id}-error">{message}' in page
    assert count_achievements(db) == before


@pytest.mark.parametrize(
    ("rows", "marked"),
    [
        (
            (
                ("Aid", "https://s.example.org/a", ""),
                ("", "https://s.example.org/b", ""),
            ),
            "skill_name-2",
        ),
        ((("Aid", "ftp://s.example.org/a", ""),), "skill_url-1"),
        ((("Aid", "https://s.example.org/a", "F" * 201),), "skill_framework-1"),
    ],
    ids=["second-name", "first-link", "long-framework"],
)
def test_skill_error_marks_its_field(client, tenants, rows, marked):
    """A skill error marks the one input at fault, not every skill input."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=MultiDict(_skill_fields(*rows))
    )
    page = response.get_data(as_text=True)
    invalid = re.findall(r'<input id="(skill_[a-z]+-\d)"[^>]*aria-invalid="true"', page)
    error_fields = page.count('<div class="field has-error">')

    assert response.status_code == 400
    assert invalid == [marked]
    assert error_fields == 1
    assert '<fieldset class="field skills"' in page


def test_skill_change_corrects_holders(client, tenants, db):
    """Adding a skill to a badge learners hold gives each holder a new version."""

    alpha, _ = tenants
    credential = add_credential(db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}",
        data=MultiDict(
            _skill_fields(
                ("Security", "https://skills.example.org/security", ""),
                name="Badge of alpha",
                description="Finished the course.",
                criteria="Complete the course.",
            )
        ),
    )

    assert response.status_code == 303
    audit = db.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
    assert audit.detail["changed"] == ["alignments"]
    db.expire_all()
    old = db.get(Credential, credential.id)
    assert old.status == "superseded"
    newer = db.scalar(
        select(Credential).where(
            Credential.achievement_id == alpha.achievement_id,
            Credential.status == "live",
        )
    )
    alignment = newer.document["credentialSubject"]["achievement"]["alignment"]
    assert alignment[0]["targetName"] == "Security"


def test_skill_errors_reported_together(client, tenants, db):
    """A missing name and a bad link of one skill are both reported at once."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = count_achievements(db)

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=MultiDict(
            _skill_fields(("", "not a url", ""), ("Aid", "https://s.example.org/a", ""))
        ),
    )
    page = response.get_data(as_text=True)
    start = page.index('id="error-summary"')
    summary = page[start : page.index("</div>", start)]
    invalid = re.findall(r'<input id="(skill_[a-z]+-\d)"[^>]*aria-invalid="true"', page)

    assert response.status_code == 400
    assert 'href="#skill_name-1"' in summary
    assert 'href="#skill_url-1"' in summary
    assert 'id="skill_name-1-error">Skill 1 needs a name.' in page
    assert 'id="skill_url-1-error">Skill 1 needs a link' in page
    assert 'aria-describedby="skill_url-1-error"' in page
    assert invalid == ["skill_name-1", "skill_url-1"]
    assert count_achievements(db) == before


def test_errors_of_all_fields_reported(client, tenants):
    """An empty badge name is reported together with the skill errors."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=MultiDict(
            _skill_fields(
                ("", "https://s.example.org/a", ""),
                ("Aid", "ftp://s.example.org/b", ""),
                name="",
            )
        ),
    )
    page = response.get_data(as_text=True)
    start = page.index('id="error-summary"')
    summary = page[start : page.index("</div>", start)]

    assert response.status_code == 400
    assert 'href="#name"' in summary
    assert 'href="#skill_name-1"' in summary
    assert 'href="#skill_url-2"' in summary
