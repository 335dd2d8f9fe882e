"""The rule builder lists a course's AGS line items beside its Moodle activities."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from sqlalchemy import select

from badge_engine.models import Achievement, CompletionFactRecord
from lti_tool.course_activities import AGS_SECTION
from lti_tool.models import AgsLineItem, LtiCourse

from .conftest import MOODLE_COURSE_ID, launch_as
from .test_activity_rules import QUIZ, activity_form, post_form

ITEM_URL = "https://lms.example/lti/lineitems/5/lineitem"


def _add_line_item(db, tenant) -> str:
    course = db.get(LtiCourse, tenant.course_id)
    row = AgsLineItem(
        provider_id=tenant.provider_id,
        lti_course_id=course.id,
        lms_connection_id=tenant.connection_id,
        lms_course_id=course.lms_course_id,
        lineitem_url=ITEM_URL,
        lineitem_url_sha256=hashlib.sha256(ITEM_URL.encode()).hexdigest(),
        label="Peer-reviewed essay",
        score_maximum=20,
    )
    db.add(row)
    db.commit()
    return row.activity_id


def test_picker_lists_ags_line_items(client, tenants, db):
    """A stored AGS line item is offered after the Moodle activities, in its section."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert f'id="activity-{QUIZ}"' in page
    assert f'id="activity-{activity_id}"' in page
    assert "Peer-reviewed essay" in page
    assert AGS_SECTION in page


def test_picker_other_tenant_hidden(client, tenants, db):
    """Another provider's AGS line items are not offered."""
    alpha, beta = tenants
    activity_id = _add_line_item(db, beta)
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert f'id="activity-{activity_id}"' not in page


def test_rule_on_ags_item_saved(client, tenants, db):
    """An activity rule may name an AGS line item, which the poll then reads."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form(activity_id)
    )

    assert response.status_code == 303
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    assert created.award_rule["rule"]["activity_ids"] == [activity_id]


def threshold_form(*activity_ids: str, match: str = "all", **thresholds: str):
    """The activity form plus minimum grade fields, keyed by activity id."""
    fields = activity_form(*activity_ids, match=match)
    fields += [(f"min_percent-{key}", value) for key, value in thresholds.items()]
    return fields


def _created(db):
    db.expire_all()
    return db.scalar(select(Achievement).where(Achievement.name == "First aid basics"))


def test_threshold_field_is_labelled(client, tenants, db):
    """Each AGS line item has a labelled minimum grade field tied to its hint."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    field = f"min_percent-{activity_id}"
    assert f'<label for="{field}">' in page
    assert (
        "Minimum grade for “<bdi>Peer-reviewed essay</bdi>”, in percent (optional)"
        in page
    )
    assert f'id="{field}" name="{field}" type="text" inputmode="decimal"' in page
    assert f'aria-describedby="{field}-hint"' in page
    assert f'id="min_percent-{QUIZ}"' not in page


def test_threshold_alone_saves_grade_rule(client, tenants, db):
    """A minimum grade on the only chosen line item stores a grade_at_least rule."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(activity_id, **{activity_id: "70"}),
    )

    assert response.status_code == 303
    assert _created(db).award_rule == {
        "version": 1,
        "rule": {
            "kind": "grade_at_least",
            "activity_id": activity_id,
            "min_percent": 70,
        },
    }
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert "Peer-reviewed essay (grade of at least 70%)" in page


def test_threshold_joins_activities(client, tenants, db):
    """With other activities chosen the grade rule is joined by the chosen match."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(QUIZ, activity_id, match="any", **{activity_id: "70,5"}),
    )

    assert response.status_code == 303
    assert _created(db).award_rule["rule"] == {
        "kind": "any_of",
        "rules": [
            {"kind": "activities_completed", "activity_ids": [QUIZ], "match": "any"},
            {"kind": "grade_at_least", "activity_id": activity_id, "min_percent": 70.5},
        ],
    }


def test_empty_threshold_keeps_completion(client, tenants, db):
    """An empty minimum grade keeps the completion rule the builder made before."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(activity_id, **{activity_id: "  "}),
    )

    assert response.status_code == 303
    assert _created(db).award_rule["rule"]["kind"] == "activities_completed"


@pytest.mark.parametrize("value", ["abc", "101", "-5", "NaN", "1e2", "70%", "100.0001"])
def test_invalid_threshold_rejected(client, tenants, db, value):
    """A minimum grade that is not 0 to 100 is rejected on its own field."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(activity_id, **{activity_id: value}),
    )
    page = response.get_data(as_text=True)

    field = f"min_percent-{activity_id}"
    assert response.status_code == 400
    assert f'id="{field}-error"' in page
    assert "is not a grade from 0 to 100" in page
    assert 'aria-invalid="true"' in page
    assert f'aria-describedby="{field}-hint {field}-error"' in page
    assert (
        f'<a href="#{field}">Minimum grade for “<bdi>Peer-reviewed essay</bdi>”:'
        in page
    )
    assert f'value="{value}"' in page
    assert _created(db) is None


def test_threshold_unchosen_item_rejected(client, tenants, db):
    """A minimum grade on a line item that is not ticked is rejected."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(QUIZ, **{activity_id: "60"}),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert (
        "“<bdi>Peer-reviewed essay</bdi>” has a minimum grade but is not chosen."
        in page
    )
    assert _created(db) is None


def test_edit_shows_saved_threshold(client, tenants, db):
    """The edit form shows a saved grade rule as ticked items and a minimum grade."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")
    post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(QUIZ, activity_id, **{activity_id: "80"}),
    )
    created = _created(db)

    page = client.get(
        f"/course/{alpha.course_id}/achievements/{created.public_id}/edit"
    ).get_data(as_text=True)

    ticked = 'id="activity-{0}" name="activity_ids" value="{0}" checked'
    assert ticked.format(activity_id) in page
    assert ticked.format(QUIZ) in page
    assert 'value="80"' in page


def test_threshold_translated_in_arabic(client, tenants, db):
    """The minimum grade field and its error read in Arabic on a right-to-left page."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor", locale="ar")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(activity_id, **{activity_id: "200"}),
    )
    page = response.get_data(as_text=True)

    assert '<html lang="ar" dir="rtl">' in page
    assert (
        "الحد الأدنى للدرجة في «<bdi>Peer-reviewed essay</bdi>»، بالنسبة المئوية (اختياري)"
        in page
    )
    assert "«200» ليست درجة من 0 إلى 100." in page
    assert 'dir="ltr"' in page


def _grade_fact(db, tenant, achievement, activity_id: str, percent: float, key: str):
    db.add(
        CompletionFactRecord(
            provider_id=tenant.provider_id,
            lms_connection_id=achievement.lms_connection_id,
            lms_course_id=MOODLE_COURSE_ID,
            lms_user_id="42",
            activity_id=activity_id,
            state="complete",
            grade_percent=percent,
            occurred_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
            source="poll",
            dedupe_key=key,
        )
    )
    db.commit()


def test_learner_sees_grade_step(client, tenants, db):
    """The learner page lists the minimum grade as a step until a grade reaches it."""
    alpha, _ = tenants
    activity_id = _add_line_item(db, alpha)
    launch_as(client, alpha, "instructor")
    post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        threshold_form(QUIZ, activity_id, **{activity_id: "70"}),
    )
    achievement = _created(db)
    _grade_fact(db, alpha, achievement, activity_id, 55.0, "grade-low")
    launch_as(client, alpha, "learner")

    low = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    _grade_fact(db, alpha, achievement, activity_id, 80.0, "grade-high")
    high_page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    # "Why not yet?" below the list names every condition, met ones included. The
    # new badge is listed after the course's first one.
    start = high_page.rindex('<ul class="missing-list">')
    high = high_page[start : high_page.index("</ul>", start)]

    assert (
        "Reach 70% or more in “<bdi>Peer-reviewed essay</bdi>” (your grade now: 55%)."
        in low
    )
    assert "Complete “<bdi>Final quiz</bdi>”." in low
    assert "Peer-reviewed essay" not in high
    assert "Complete “<bdi>Final quiz</bdi>”." in high
