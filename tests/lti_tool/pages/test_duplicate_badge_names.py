"""The instructor's page keeps one badge of each name per course."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement, Credential
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.operations import achievements as achievement_ops

from .conftest import launch_as


def badge_form(**overrides) -> dict:
    form = {
        "csrf": "test-csrf",
        "name": "Badge of alpha",
        "description": "Finished the course.",
        "criteria": "Complete the course.",
        "rule_kind": "course_completed",
    }
    form.update(overrides)
    return form


def _course_badges(db, tenant) -> int:
    db.expire_all()
    return db.scalar(
        select(func.count(Achievement.id)).where(
            Achievement.provider_id == tenant.provider_id
        )
    )


def test_create_same_name_rejected(client, tenants, db):
    """A second badge named like the course's badge, in other case and spacing, is
    rejected beside the name field and nothing is saved or issued."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements",
        data=badge_form(name="  badge OF   alpha"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="name-error"' in page
    assert "This course already has a badge named “<bdi>Badge of alpha</bdi>”" in page
    assert "Edit that badge instead of adding another one" in page
    assert _course_badges(db, alpha) == 1
    assert db.scalar(select(func.count(Credential.id))) == 0


def test_create_same_name_translated(client, tenants, db):
    """The rejection is shown in the page's language."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    response = client.post(f"/course/{alpha.course_id}/achievements", data=badge_form())

    assert response.status_code == 400
    # French puts a no-break space inside the guillemets.
    expected = "Ce cours a déjà un badge nommé «\u00a0<bdi>Badge of alpha</bdi>\u00a0»"
    assert expected in response.get_data(as_text=True)


def test_create_other_name_saved(client, tenants, db):
    """A badge with another name in the same course is saved."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name="Second")
    )

    assert response.status_code == 303
    assert _course_badges(db, alpha) == 2


def test_other_provider_same_name_saved(client, tenants, db):
    """Another provider's course may use a name this provider's course has."""
    _, beta = tenants
    launch_as(client, beta, "instructor")

    response = client.post(f"/course/{beta.course_id}/achievements", data=badge_form())

    assert response.status_code == 303
    assert _course_badges(db, beta) == 2


def test_rename_to_taken_name_rejected(client, tenants, db):
    """Renaming a badge to the name of another badge of the course is rejected."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name="Second")
    )
    second = db.scalar(select(Achievement).where(Achievement.name == "Second"))

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{second.public_id}",
        data=badge_form(name="BADGE OF ALPHA"),
    )

    assert response.status_code == 400
    assert (
        "already has another badge named “<bdi>Badge of alpha</bdi>”"
        in response.get_data(as_text=True)
    )
    db.expire_all()
    assert db.get(Achievement, second.id).name == "Second"


def test_rename_own_name_case_saved(client, tenants, db):
    """A badge saved with its own name in other case is saved."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}",
        data=badge_form(name="Badge Of Alpha"),
    )

    assert response.status_code == 303
    db.expire_all()
    assert db.get(Achievement, alpha.achievement_id).name == "Badge Of Alpha"


def test_insert_race_raises_achievement_exists(tenants, db, monkeypatch):
    """A same-name badge that the first check missed, as when another request
    commits it in between, is caught by the unique key and named in the error."""
    alpha, _ = tenants
    monkeypatch.setattr(achievement_ops, "check_name_free", lambda *_: None)
    duplicate = Achievement(
        provider_id=alpha.provider_id,
        lms_connection_id=alpha.connection_id,
        lms_course_id="101",
        name="  badge OF alpha ",
        description="Another text.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )

    with pytest.raises(achievement_ops.AchievementExists) as raised:
        achievement_ops.insert_achievement(db, duplicate)

    assert raised.value.existing_id == alpha.achievement_public_id
    assert raised.value.identical is False
    assert _course_badges(db, alpha) == 1
