"""Editing an issued badge on the instructor page, and the learner's badge downloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from badge_engine.baking import extract_png, extract_svg
from badge_engine.issuers import did_document
from badge_engine.issuing import issue_credential
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    Learner,
    Provider,
)
from badge_engine.verify import verify_open_badge_credential
from lti_tool.accounts import AuditEvent

from .conftest import MOODLE_COURSE_ID, launch_as
from .test_course_pages import badge_form


def issue_real_credential(app, db, tenant) -> Credential:
    """Issue a signed credential of the tenant's badge to its learner."""
    bridge = app.extensions["hpass"]
    result = issue_credential(
        db,
        vault=bridge.vault,
        base_url=bridge.settings.public_base_url,
        achievement=db.get(Achievement, tenant.achievement_id),
        learner=db.get(Learner, tenant.learner_id),
        awarded_at=datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
    )
    db.commit()
    return result.credential


def credentials_of(db, tenant) -> list[Credential]:
    db.expire_all()
    return list(
        db.scalars(
            select(Credential)
            .where(Credential.provider_id == tenant.provider_id)
            .order_by(Credential.id)
        )
    )


def verify(app, db, tenant, credential: Credential):
    provider = db.get(Provider, tenant.provider_id)
    document = did_document(
        db, app.extensions["hpass"].settings.public_base_url, provider
    )
    return verify_open_badge_credential(credential.document, lambda did: document)


def test_edit_issued_badge_supersedes(app, db, client, tenants):
    """Editing a held badge's text issues a new version; both versions verify."""
    alpha, _ = tenants
    issue_real_credential(app, db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}",
        data=badge_form(name="Badge of alpha, corrected"),
    )

    assert response.status_code == 303
    old, new = credentials_of(db, alpha)
    assert old.status == CredentialStatus.SUPERSEDED.value
    assert old.revoked_at is None
    assert old.superseded_by_id == new.id
    assert new.status == CredentialStatus.LIVE.value
    assert new.previous_credential_id == old.id
    assert new.document["name"] == "Badge of alpha, corrected"
    assert old.document["name"] == "Badge of alpha"
    assert verify(app, db, alpha, old).verified
    assert verify(app, db, alpha, new).verified

    history = client.get(f"/credentials/{old.public_id}/versions").get_json()
    assert [version["status"] for version in history["versions"]] == [
        "superseded",
        "live",
    ]
    assert history["current"].endswith(new.public_id)
    audit = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "achievement.corrected")
    )
    assert audit is not None
    assert audit.detail["new_versions"] == [new.public_id]
    assert audit.detail["course_id"] == MOODLE_COURSE_ID


def test_edit_issued_badge_rule_only(app, db, client, tenants):
    """Changing only the award rule of a held badge issues no new version."""
    alpha, _ = tenants
    issue_real_credential(app, db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}",
        data=badge_form(
            name="Badge of alpha",
            description="Finished the course.",
            criteria="Complete the course.",
            rule_kind="activities_completed",
            activity_ids=["4001"],
        ),
    )

    assert response.status_code == 303
    [only] = credentials_of(db, alpha)
    assert only.status == CredentialStatus.LIVE.value


def test_edit_unheld_badge_in_place(db, client, tenants):
    """Editing a badge that no learner holds changes it in place and issues nothing."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}",
        data=badge_form(name="Renamed badge"),
    )

    assert response.status_code == 303
    db.expire_all()
    assert db.get(Achievement, alpha.achievement_id).name == "Renamed badge"
    assert credentials_of(db, alpha) == []


def test_learner_page_links_baked_downloads(app, db, client, tenants):
    """The learner page links the baked PNG and SVG, and both contain the credential."""
    alpha, _ = tenants
    credential = issue_real_credential(app, db, alpha)
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    png_link = f"/credentials/{credential.public_id}/badge.png"
    svg_link = f"/credentials/{credential.public_id}/badge.svg"
    assert png_link in page
    assert svg_link in page
    png = client.get(png_link)
    svg = client.get(svg_link)
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    assert json.loads(extract_png(png.data).text)["id"] == credential.document["id"]
    assert json.loads(extract_svg(svg.data).text)["id"] == credential.document["id"]
