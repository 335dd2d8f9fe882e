"""The rule builder lists a course's AGS line items beside its Moodle activities."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from badge_engine.models import Achievement
from lti_tool.course_activities import AGS_SECTION
from lti_tool.models import AgsLineItem, LtiCourse

from .conftest import launch_as
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
    created = db.scalar(select(Achievement).where(Achievement.name == "First aid basics"))
    assert created.award_rule["rule"]["activity_ids"] == [activity_id]
