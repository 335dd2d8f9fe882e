"""The rule builder's AGS minimum grade field in a real browser, with axe-core.

Uses the demo stack and chromium of `test_browser`, with one AGS line item added to
the demo course after the first launch.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from lti_tool.models import AgsLineItem, LtiCourse, Registration
from tests.lti_tool.pages import test_browser as browser_pages
from tests.lti_tool.pages.test_browser import axe_violations, launch

# The demo stack and chromium fixtures of test_browser, started again for this module.
stack = browser_pages.stack
browser = browser_pages.browser

pytestmark = pytest.mark.slow

ITEM_LABEL = "Field report review"
ITEM_URL = "https://lms.example/lti/lineitems/77/lineitem"


def _add_line_item(stack) -> str:
    """Store one AGS line item for the launched demo course; return its activity id."""
    digest = hashlib.sha256(ITEM_URL.encode()).hexdigest()
    with stack.bridge.session() as session:
        existing = session.scalar(
            select(AgsLineItem).where(AgsLineItem.lineitem_url_sha256 == digest)
        )
        if existing is not None:
            return existing.activity_id
        course = session.scalars(select(LtiCourse).order_by(LtiCourse.id)).first()
        registration = session.get(Registration, course.registration_id)
        row = AgsLineItem(
            provider_id=course.provider_id,
            lti_course_id=course.id,
            lms_connection_id=registration.lms_connection_id,
            lms_course_id=course.lms_course_id,
            lineitem_url=ITEM_URL,
            lineitem_url_sha256=digest,
            label=ITEM_LABEL,
            score_maximum=20,
        )
        session.add(row)
        session.commit()
        return row.activity_id


def _open_builder(browser, stack, locale: str):
    page = launch(browser, stack, "instructor", locale=locale)
    activity_id = _add_line_item(stack)
    page.reload()
    return page, activity_id


def test_threshold_by_keyboard(browser, stack):
    """Ticking a line item and tabbing reaches its field; an error is tied to it."""
    page, activity_id = _open_builder(browser, stack, "en")
    field_id = f"min_percent-{activity_id}"
    page.fill("#name", "Field reporting")
    page.fill("#description", "Writes field reports.")
    page.fill("#criteria", "A reviewed field report.")
    page.check("#rule_kind-activities_completed")

    page.focus(f"#activity-{activity_id}")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id")
    page.keyboard.type("101")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    field = page.locator(f"#{field_id}")

    assert focused == field_id
    assert (
        page.get_by_label(
            f"Minimum grade for “{ITEM_LABEL}”, in percent (optional)"
        ).count()
        == 1
    )
    assert field.get_attribute("aria-invalid") == "true"
    assert f"{field_id}-error" in field.get_attribute("aria-describedby")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator(f'#error-summary a[href="#{field_id}"]').count() == 1
    assert axe_violations(page) == []

    field.fill("70")
    with page.expect_navigation():
        page.get_by_role("button", name="Create badge").click()

    assert page.get_by_text(f"{ITEM_LABEL} (grade of at least 70%)").count() == 1
    page.context.close()


@pytest.mark.parametrize("locale", ["fr", "es", "ar"])
def test_threshold_translated_accessible(browser, stack, locale):
    """The field and its error pass axe-core in each translated language."""
    page, activity_id = _open_builder(browser, stack, locale)
    page.check("#rule_kind-activities_completed")
    page.check(f"#activity-{activity_id}")
    page.fill(f"#min_percent-{activity_id}", "abc")
    with page.expect_navigation():
        page.locator('#badge-form button[type="submit"]').first.click()
    field = page.locator(f"#min_percent-{activity_id}")
    label = page.locator(f'label[for="min_percent-{activity_id}"]').inner_text()

    assert field.get_attribute("aria-invalid") == "true"
    assert ITEM_LABEL in label
    assert "Minimum grade" not in label
    assert axe_violations(page) == []
    if locale == "ar":
        assert page.evaluate("document.documentElement.dir") == "rtl"
    page.context.close()


def test_activities_disabled_for_course_rule(browser, stack):
    """The activities are disabled, and skipped by Tab, while the course rule is chosen."""
    page, activity_id = _open_builder(browser, stack, "en")
    fieldset = page.locator("fieldset[data-rule-activities]")
    checkbox = page.locator(f"#activity-{activity_id}")

    page.check("#rule_kind")
    page.focus("#rule_kind-activities_completed")
    page.keyboard.press("Tab")
    focused_when_disabled = page.evaluate("document.activeElement.id")

    assert fieldset.evaluate("element => element.disabled")
    assert checkbox.is_disabled()
    assert not focused_when_disabled.startswith(("activity-", "min_percent-"))
    assert axe_violations(page) == []

    page.check("#rule_kind-activities_completed")
    page.keyboard.press("Tab")
    focused_when_enabled = page.evaluate("document.activeElement.id")

    assert not fieldset.evaluate("element => element.disabled")
    assert checkbox.is_enabled()
    assert focused_when_enabled.startswith("activity-")

    page.check("#rule_kind")

    assert checkbox.is_disabled()
    page.context.close()
