"""The course and admin pages in a real browser: Debian's chromium driven by Playwright.

The pages run against the demo stack (the bridge, the LTI platform peer, the Moodle
stand-in, the portfolio and a real Celery worker). axe-core, bundled with
axe-playwright-python, checks each page in each language.

Screenshots go to the test's tmp folder; set HPASS_SCREENSHOT_DIR to also keep the
English and Arabic learner and instructor pages there (docs/screenshots/ is made so).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement, Learner, Provider
from connectors.hpass.models import Delivery, DeliveryStatus
from lti_tool.accounts import AccountRole, create_account
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.setup import PLATFORM_PATH
from lti_tool.demo.stack import DemoStack, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LANGUAGES = ("en", "fr", "es", "ar")
DELIVERY_TIMEOUT_SECONDS = 90
ADMIN_EMAIL = "admin@demo-academy.example"
ADMIN_PASSWORD = "a long demo admin password"

pytestmark = pytest.mark.slow


def _require_browser():
    """Return Playwright's sync API, or skip (outside CI) when chromium is missing."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed; pip install -e '.[test]'"
        sync_playwright = None
    if problem is None and not CHROMIUM.exists():
        problem = "chromium is missing; apt-get install -y chromium"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need a browser under CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The demo stack with a worker and one provider admin account."""
    _require_browser()
    stack = DemoStack(tmp_path_factory.mktemp("browser-stack"))
    stack.start_web()
    stack.start_worker()
    _add_admin(stack, ADMIN_EMAIL, ADMIN_PASSWORD)
    yield stack
    stack.stop()


def _demo_provider_id(session) -> int:
    from lti_tool.demo.setup import DEMO_SLUG

    return session.scalar(select(Provider.id).where(Provider.slug == DEMO_SLUG))


def _add_admin(stack, email: str, password: str) -> None:
    with stack.bridge.session() as session:
        create_account(
            session,
            email=email,
            password=password,
            role=AccountRole.PROVIDER_ADMIN,
            provider_id=_demo_provider_id(session),
        )
        session.commit()


def _signed_in_page(browser, stack, email: str, password: str, *, locale: str = "en"):
    """Open a new browser context signed in to the admin pages as `email`."""
    page = browser.new_context(locale=locale).new_page()
    page.goto(f"{stack.base_url}/account/sign-in")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.locator("form button[type=submit]").last.click()
    return page


@pytest.fixture(scope="module")
def browser(stack):
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path):
    """Save a screenshot into tmp_path and, when asked, into HPASS_SCREENSHOT_DIR."""
    keep = os.environ.get("HPASS_SCREENSHOT_DIR")

    def take(page, name: str, keep_copy: bool = False) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if keep and keep_copy:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    return take


def launch(browser, stack, who: str, *, locale: str = "en", width: int = 1024):
    """Open a new browser context and launch the tool from the platform as `who`."""
    context = browser.new_context(
        locale=locale, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{stack.base_url}{PLATFORM_PATH}/launch/{who}")
    page.wait_for_url("**/course/*")
    return page


def axe_violations(page) -> list[str]:
    """Run axe-core on the page; return each violation of any impact, in short."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
    ]


def has_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def _delivered(stack) -> Delivery | None:
    with stack.bridge.session() as session:
        return session.scalar(
            select(Delivery).where(Delivery.status == DeliveryStatus.DELIVERED.value)
        )


def test_instructor_form_by_keyboard(browser, stack, shots):
    """An instructor creates a badge with the keyboard alone, with a visible focus."""
    page = launch(browser, stack, "instructor")
    page.keyboard.press("Tab")
    skip_link = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")

    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "name":
            break
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.type("Field safety")
    page.keyboard.press("Tab")
    page.keyboard.type("Knows the field safety rules.")
    page.keyboard.press("Tab")
    page.keyboard.type("Completed the course.")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "submit":
            break
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert skip_link == "Skip to content"
    assert outline != "none"
    assert page.get_by_role("heading", name="Field safety").count() == 1
    # The confirmation takes the focus, so a keyboard or screen reader user goes on
    # from it instead of from the top of the page.
    assert page.evaluate("document.activeElement.id") == "course-notice"
    assert "“Field safety” was created" in page.evaluate(
        "document.activeElement.textContent"
    )
    shots(page, "instructor-keyboard")
    page.context.close()


def test_instructor_form_errors_by_field(browser, stack):
    """An empty form is refused with each message tied to its field."""
    page = launch(browser, stack, "instructor")

    with page.expect_navigation():
        page.get_by_role("button", name="Create badge").click()
    name_field = page.locator("#name")

    assert name_field.get_attribute("aria-invalid") == "true"
    assert "name-error" in name_field.get_attribute("aria-describedby")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert axe_violations(page) == []
    page.context.close()


def test_double_click_creates_one_badge(browser, stack):
    """A second click on "Create badge" while the first post is on the way is dropped."""
    page = launch(browser, stack, "instructor")
    page.fill("#name", "Double click")
    page.fill("#description", "Knows the double click rule.")
    page.fill("#criteria", "Completed the course.")

    # The second click comes 15 ms after the first, before the response arrives.
    # Without the guard, the browser aborts the first navigation but the bridge has
    # the first post already.
    page.evaluate(
        """() => {
            const button = [...document.querySelectorAll("button")]
                .find((each) => each.textContent.trim() === "Create badge");
            button.click();
            setTimeout(() => button.click(), 15);
        }"""
    )
    page.get_by_role("heading", name="Double click").first.wait_for()
    page.wait_for_load_state("networkidle")
    with stack.bridge.session() as session:
        created = session.scalars(
            select(Achievement).where(Achievement.name == "Double click")
        ).all()

    assert len(created) == 1
    assert page.get_by_role("heading", name="Double click").count() == 1
    page.context.close()


@pytest.mark.parametrize("locale", LANGUAGES)
def test_course_pages_accessible(browser, stack, shots, locale):
    """Learner and instructor pages pass axe-core in each language."""
    for who in ("learner", "instructor"):
        page = launch(browser, stack, who, locale=locale)
        html = page.locator("html")

        assert html.get_attribute("lang") == locale
        assert html.get_attribute("dir") == ("rtl" if locale == "ar" else "ltr")
        assert axe_violations(page) == [], f"{who} in {locale}"
        keep = who == "instructor" and locale in ("en", "ar")
        shots(page, f"{who}-{locale}", keep_copy=keep)
        page.context.close()


@pytest.fixture
def add_demo_course_badge(stack):
    """Return a function that adds a badge with a given award rule to the demo
    course, on the demo learner's LMS site, and returns the badge's id. The badges
    are deleted after the test."""
    achievement_ids = []

    def add(name: str, *, description: str, criteria_narrative: str, rule: dict) -> int:
        with stack.bridge.session() as session:
            learner = session.scalar(
                select(Learner).where(Learner.lms_user_id == str(DEMO_LEARNER_ID))
            )
            achievement = Achievement(
                provider_id=learner.provider_id,
                lms_connection_id=learner.lms_connection_id,
                lms_course_id=str(DEMO_COURSE_ID),
                name=name,
                description=description,
                criteria_narrative=criteria_narrative,
                award_rule={"version": 1, "rule": rule},
            )
            session.add(achievement)
            session.commit()
            achievement_ids.append(achievement.id)
            return achievement.id

    yield add
    with stack.bridge.session() as session:
        for achievement_id in achievement_ids:
            session.delete(session.get(Achievement, achievement_id))
        session.commit()


@pytest.mark.parametrize("locale", ("en", "ar"))
def test_rule_descriptions_accessible(
    browser, stack, shots, add_demo_course_badge, locale
):
    """A combined rule with a date window reads as a nested list with times on the
    instructor page, which passes axe-core."""
    rule = {
        "kind": "all_of",
        "rules": [
            {"kind": "course_completed"},
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002"],
                "count": 1,
            },
        ],
        "window": {"from": "2025-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"},
    }
    add_demo_course_badge(
        f"Combined rule {locale}",
        description="A badge with a combined rule.",
        criteria_narrative="Complete the course and one activity.",
        rule=rule,
    )

    page = launch(browser, stack, "instructor", locale=locale)
    card = page.locator(".card", has_text=f"Combined rule {locale}")

    assert card.locator(".award-rule time").count() == 2
    assert card.locator(".rule-parts > li").count() == 2
    assert "activities_completed" not in card.inner_text()
    assert axe_violations(page) == [], f"instructor in {locale}"
    shots(page, f"rule-descriptions-{locale}")
    page.context.close()


# The "no grade" reading of a course total grade condition, per language.
NO_GRADE = {
    "en": "no grade",
    "fr": "aucune note",
    "es": "sin calificación",
    "ar": "لا توجد درجة",
}


@pytest.mark.parametrize("locale", LANGUAGES)
def test_why_not_yet_translated(browser, stack, shots, add_demo_course_badge, locale):
    """A learner opens "Why not yet?" on a badge whose rule came through the API:
    the conditions, LMS data and missing steps are in the page language, and the
    open section passes axe-core."""
    rule = {
        "kind": "all_of",
        "rules": [
            {"kind": "activity_completed", "activity_id": "4001"},
            {"kind": "grade_at_least", "min_percent": 70},
        ],
    }
    name = f"Raw rule {locale}"
    add_demo_course_badge(
        name,
        description="A badge with a rule set through the API.",
        criteria_narrative="Complete the quiz and reach 70% in the course.",
        rule=rule,
    )

    page = launch(browser, stack, "learner", locale=locale)
    badge = page.locator("li.card", has_text=name)
    details = badge.locator("details.why-not-yet")
    details.locator("summary").click()
    explained = details.inner_text()
    missing = badge.locator(".missing-list > li")

    assert details.locator(".condition").count() == 3
    # The combination's two parts are a list nested in its condition.
    assert details.locator(".condition .conditions > .condition").count() == 2
    assert NO_GRADE[locale] in explained
    assert missing.count() == 2
    assert "activity_completed" not in badge.inner_text()
    if locale != "en":
        for english in (
            "Meet every one",
            "Reach at least",
            "no grade",
            "Meet the badge's criteria",
            "incomplete",
        ):
            assert english not in badge.inner_text(), english
    assert axe_violations(page) == [], f"learner in {locale}"
    shots(page, f"why-not-yet-{locale}")
    page.context.close()


NOT_MET = {"en": "Not met:", "ar": "غير مستوفى:"}
# The course total step of GRADE_RULE, as the card and "Why not yet?" word it.
GRADE_STEP = {
    "en": "Reach 70% or more in the course total.",
    "ar": "الحصول على 70% أو أكثر في المجموع الكلي للدورة.",
}
GRADE_RULE = {
    "kind": "all_of",
    "rules": [
        {"kind": "activity_completed", "activity_id": "4001"},
        {"kind": "grade_at_least", "min_percent": 70},
    ],
}


@pytest.mark.parametrize("locale", sorted(GRADE_STEP))
def test_why_not_yet_names_step_once(browser, stack, add_demo_course_badge, locale):
    """With "Why not yet?" open, an unmet step is shown and read out once, as a
    condition marked "Not met:", and closing it shows the "Still missing" list
    again."""
    name = f"Grade rule {locale}"
    step = GRADE_STEP[locale]
    add_demo_course_badge(
        name,
        description="A badge that needs a course total grade.",
        criteria_narrative="Complete the quiz and reach 70% in the course.",
        rule=GRADE_RULE,
    )

    page = launch(browser, stack, "learner", locale=locale)
    badge = page.locator("li.card", has_text=name)
    details = badge.locator("details.why-not-yet")
    missing = badge.locator(".missing-list")
    closed_text = badge.inner_text()

    details.locator("summary").click()
    open_text = badge.inner_text()
    open_tree = badge.aria_snapshot()
    not_met = details.locator(".condition", has_text=step).last.inner_text()
    list_hidden = missing.is_hidden()
    violations = axe_violations(page)
    details.locator("summary").click()
    list_shown_again = missing.is_visible()
    page.context.close()

    assert closed_text.count(step) == 1
    assert open_text.count(step) == 1
    assert open_tree.count(step) == 1
    assert list_hidden
    assert not_met.startswith("○")
    assert NOT_MET[locale] in not_met
    assert violations == [], f"learner in {locale}"
    assert list_shown_again


@pytest.mark.parametrize("locale", ("en", "ar"))
def test_revoked_badge_card(browser, stack, shots, locale):
    """A learner's revoked badge shows its date and reason, lists no steps, and the
    page passes axe-core."""
    from datetime import datetime, timezone

    from badge_engine.models import Credential

    name = f"Revoked badge {locale}"
    with stack.bridge.session() as session:
        learner = session.scalar(
            select(Learner).where(Learner.lms_user_id == str(DEMO_LEARNER_ID))
        )
        achievement = Achievement(
            provider_id=learner.provider_id,
            lms_connection_id=learner.lms_connection_id,
            lms_course_id=str(DEMO_COURSE_ID),
            name=name,
            description="A badge revoked after it was issued.",
            criteria_narrative="Complete the course.",
            award_rule={"version": 1, "rule": {"kind": "course_completed"}},
        )
        session.add(achievement)
        session.flush()
        credential = Credential(
            provider_id=learner.provider_id,
            achievement_id=achievement.id,
            learner_id=learner.id,
            status="revoked",
            revoked_at=datetime(2026, 4, 2, 8, 0, tzinfo=timezone.utc),
            revocation_reason="Issued by mistake",
            awarded_at=datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc),
            document={"type": ["VerifiableCredential"]},
        )
        session.add(credential)
        session.commit()
        achievement_id, credential_id = achievement.id, credential.id
    try:
        page = launch(browser, stack, "learner", locale=locale)
        card = page.locator("li.card", has_text=name)

        assert card.locator(".status.revoked").count() == 1
        assert card.locator('time[datetime="2026-04-02T08:00:00+00:00"]').count() == 1
        assert "Issued by mistake" in card.inner_text()
        assert card.locator(".missing-list").count() == 0
        assert card.locator("details.why-not-yet").count() == 0
        assert axe_violations(page) == [], f"learner in {locale}"
        shots(page, f"revoked-badge-{locale}")
        page.context.close()
    finally:
        with stack.bridge.session() as session:
            session.delete(session.get(Credential, credential_id))
            session.delete(session.get(Achievement, achievement_id))
            session.commit()


def test_arabic_layout_mirrored(browser, stack):
    """In Arabic the header starts on the right: the brand sits right of the switcher."""
    page = launch(browser, stack, "learner", locale="ar")

    brand = page.locator(".brand").bounding_box()
    switcher = page.locator("nav.languages").bounding_box()

    assert brand["x"] > switcher["x"]
    page.context.close()


@pytest.mark.parametrize("who", ["learner", "instructor"])
def test_arabic_heading_isolates_title(browser, stack, who):
    """The Latin course title in an Arabic heading gets its own left-to-right run,
    and the Arabic words before it stay on its right."""
    page = launch(browser, stack, who, locale="ar")
    heading = page.evaluate(
        """() => {
          const h1 = document.querySelector("h1");
          const title = h1.querySelector("bdi");
          if (!title) return null;
          const words = document.createRange();
          words.selectNodeContents(h1.firstChild);
          const style = getComputedStyle(title);
          return {
            title: title.textContent,
            isolation: style.unicodeBidi,
            direction: style.direction,
            titleRight: title.getBoundingClientRect().right,
            wordsLeft: words.getBoundingClientRect().left,
          };
        }"""
    )
    page.context.close()

    assert heading is not None
    assert heading["title"].isascii()
    assert heading["isolation"] == "isolate"
    assert heading["direction"] == "ltr"
    assert heading["titleRight"] <= heading["wordsLeft"] + 1


@pytest.mark.parametrize("who", ["learner", "instructor"])
def test_phone_width_fits(browser, stack, shots, who):
    """On a 360 px wide phone the course pages need no sideways scrolling."""
    page = launch(browser, stack, who, width=360)

    assert not has_horizontal_scroll(page)
    shots(page, f"{who}-phone")
    page.context.close()


def open_in_lms_frame(browser, stack, who: str):
    """Open the learner's or instructor's launch in an iframe on the platform's origin.

    Return the new context and the frame's locator.
    """
    context = browser.new_context()
    page = context.new_page()
    frame_page = f"{stack.base_url}{PLATFORM_PATH}/frame-test"
    launch_url = f"{stack.base_url}{PLATFORM_PATH}/launch/{who}"
    page.route(
        frame_page,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<title>LMS</title><iframe title="Badges" src="{launch_url}" '
            'width="800" height="600"></iframe>',
        ),
    )
    page.goto(frame_page)

    return context, page.frame_locator("iframe")


def test_page_inside_platform_frame(browser, stack):
    """The course page loads inside an iframe on the platform's origin."""
    context, frame = open_in_lms_frame(browser, stack, "learner")

    assert frame.get_by_text("Not earned yet").count() >= 1
    context.close()


def _add_sites_with_contacts(stack, locale: str) -> None:
    """Add an LMS site whose last contact failed and one whose last contact
    succeeded, so the site list shows both states."""
    from badge_engine.db import utcnow
    from connectors.contacts import record_event, record_failure, record_success
    from connectors.models import ContactSource, LmsConnection, LmsKind

    with stack.bridge.session() as session:
        sites = {}
        for state in ("down", "healthy"):
            sites[state] = LmsConnection(
                provider_id=_demo_provider_id(session),
                kind=LmsKind.MOODLE.value,
                name=f"{state.title()} site {locale}",
                base_url=f"https://{state}-{locale}.example.org",
            )
            session.add(sites[state])
        session.flush()
        record_success(session, sites["down"], ContactSource.POLL)
        record_failure(
            session,
            sites["down"],
            ContactSource.POLL,
            "Could not connect to Moodle: the connection failed.",
        )
        record_success(session, sites["healthy"], ContactSource.POLL)
        record_event(session, sites["healthy"], utcnow())
        session.commit()


@pytest.mark.parametrize("locale", LANGUAGES)
def test_admin_pages_accessible(browser, stack, shots, locale):
    """Sign-in and admin pages pass axe-core in each language, with LMS sites in
    each contact state on /admin/connect."""
    _add_sites_with_contacts(stack, locale)
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(f"{stack.base_url}/account/sign-in")
    assert axe_violations(page) == [], f"sign-in in {locale}"

    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit]").last.click()
    assert page.url.endswith("/admin/")

    paths = (
        "/admin/",
        "/admin/connect",
        "/admin/dead-letters",
        "/admin/audit",
        "/admin/accounts",
        "/account/password",
    )
    for path in paths:
        page.goto(stack.base_url + path)
        assert page.locator("html").get_attribute("lang") == locale
        assert axe_violations(page) == [], f"{path} in {locale}"
        shots(page, "admin" + path.replace("/admin", "").replace("/", "-") + locale)
        if path == "/admin/connect":
            down = page.locator(
                "li[data-contact=failed]", has_text=f"Down site {locale}"
            )
            healthy = page.locator(
                "li[data-contact=succeeded]", has_text=f"Healthy site {locale}"
            )
            assert down.locator("strong").count() == 1
            assert down.locator("time").count() == 2
            assert down.get_by_text("the connection failed").count() == 1
            assert healthy.locator("time").count() == 2
    context.close()


@pytest.mark.parametrize("locale", ("en", "ar"))
def test_disconnect_by_keyboard(browser, stack, shots, locale):
    """An admin disconnects a spare LMS site with the keyboard alone, through a
    confirmation page that counts its badges, courses and LTI registrations. The
    course pages then show that its badge cannot be earned, and every page passes
    axe-core."""
    from babel.numbers import format_decimal

    from badge_engine.rules import COURSE_COMPLETED_RULE
    from connectors.models import LmsConnection, LmsKind
    from lti_tool.lti.registrations import create_registration
    from lti_tool.models import Registration

    with stack.bridge.session() as session:
        provider_id = _demo_provider_id(session)
        spare = LmsConnection(
            provider_id=provider_id,
            kind=LmsKind.MOODLE.value,
            name=f"Spare site {locale}",
            base_url=f"https://spare-{locale}.example.org",
        )
        session.add(spare)
        session.flush()
        for course_id in (str(DEMO_COURSE_ID), "9001"):
            session.add(
                Achievement(
                    provider_id=provider_id,
                    lms_connection_id=spare.id,
                    lms_course_id=course_id,
                    name=f"Spare badge {locale} {course_id}",
                    description="A badge of the spare site.",
                    criteria_narrative="Complete the course.",
                    award_rule=COURSE_COMPLETED_RULE,
                )
            )
        create_registration(
            session,
            stack.bridge.vault,
            session.get(Provider, provider_id),
            issuer=f"https://spare-{locale}.example.org",
            client_id=f"spare-{locale}",
            auth_login_url=f"https://spare-{locale}.example.org/auth",
            key_set_url=f"https://spare-{locale}.example.org/jwks",
            deployment_ids=("1",),
            lms_connection_id=spare.id,
        )
        session.commit()
        spare_id = spare.id
    page = _signed_in_page(browser, stack, ADMIN_EMAIL, ADMIN_PASSWORD, locale=locale)
    page.goto(stack.base_url + "/admin/connect")

    link = page.locator(
        'a.button[href$="/disconnect"]', has_text=f"Spare site {locale}"
    )
    link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    counts = {
        name: page.locator(f'[data-count="{name}"] strong').inner_text()
        for name in ("achievements", "courses", "lti_registrations")
    }
    warnings_shown = page.locator(".notice.warning").count()
    confirm_violations = axe_violations(page)
    shots(page, f"admin-disconnect-{locale}")
    page.locator("form button[type=submit]").last.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    notice = page.locator(".notice[role=status]").inner_text()
    focused = page.evaluate("document.activeElement.textContent")
    done_violations = axe_violations(page)
    page.context.close()

    two = format_decimal(2, locale=locale)
    one = format_decimal(1, locale=locale)
    assert counts == {"achievements": two, "courses": two, "lti_registrations": one}
    assert warnings_shown == 1
    assert confirm_violations == [], f"confirmation in {locale}"
    assert done_violations == [], f"connect page after disconnect in {locale}"
    assert f"Spare site {locale}" in notice
    assert f"Spare site {locale}" in focused
    with stack.bridge.session() as session:
        assert session.get(LmsConnection, spare_id).disconnected

    # The demo course's launches use the spare site for a moment, so the course
    # pages show its badge on the disconnected site.
    with stack.bridge.session() as session:
        registration = session.scalar(
            select(Registration).where(
                Registration.provider_id == provider_id,
                Registration.issuer == stack.base_url + PLATFORM_PATH,
                Registration.client_id == "hpass-bridge-demo",
            )
        )
        registration_id = registration.id
        demo_connection_id = registration.lms_connection_id
        registration.lms_connection_id = spare_id
        session.commit()
    try:
        course_pages = {}
        for who in ("learner", "instructor"):
            course_page = launch(browser, stack, who, locale=locale)
            card = course_page.locator(".card").filter(
                has_text=f"Spare badge {locale} {DEMO_COURSE_ID}"
            )
            course_pages[who] = {
                "unavailable": card.locator(".status.unavailable").count(),
                "missing": card.locator(".status.missing").count(),
                "backfill": card.locator("form").count(),
                "violations": axe_violations(course_page),
            }
            shots(course_page, f"{who}-disconnected-{locale}")
            course_page.context.close()
    finally:
        with stack.bridge.session() as session:
            session.get(
                Registration, registration_id
            ).lms_connection_id = demo_connection_id
            session.commit()

    for who, seen in course_pages.items():
        assert seen["unavailable"] == 1, f"{who} in {locale}"
        assert seen["missing"] == 0, f"{who} in {locale}"
        assert seen["backfill"] == 0, f"{who} in {locale}"
        assert seen["violations"] == [], f"{who} page after disconnect in {locale}"


@pytest.mark.parametrize("locale", ("en", "ar"))
def test_new_webhook_secret_by_keyboard(browser, stack, shots, locale):
    """An admin copies a spare site's webhook URL, then issues it a new webhook
    secret with the keyboard alone, through a confirmation page. The new secret is
    shown once in a copy field, the old one stops working, and every page passes
    axe-core."""
    from connectors.models import LmsConnection, LmsKind
    from lti_tool.views.webhooks import secret_digest

    name = f"Secret site {locale}"
    with stack.bridge.session() as session:
        spare = LmsConnection(
            provider_id=_demo_provider_id(session),
            kind=LmsKind.MOODLE.value,
            name=name,
            base_url=f"https://secret-{locale}.example.org",
            webhook_secret_sha256=secret_digest("the old secret"),
        )
        session.add(spare)
        session.commit()
        spare_id = spare.id
        public_id = spare.public_id
    page = _signed_in_page(browser, stack, ADMIN_EMAIL, ADMIN_PASSWORD, locale=locale)
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=stack.base_url
    )
    page.goto(stack.base_url + "/admin/connect")

    listed_url = page.locator(f"#webhook-{public_id}").input_value()
    field_label = page.locator(f'label[for="webhook-{public_id}"]').inner_text()
    page.locator(f'button[data-copy="webhook-{public_id}"]').click()
    page.wait_for_function(
        "id => document.getElementById(id).closest('.copy-field')"
        ".querySelector('.copy-status').textContent !== ''",
        arg=f"webhook-{public_id}",
    )
    copied = page.evaluate("navigator.clipboard.readText()")
    list_violations = axe_violations(page)
    link = page.locator(f'a.button[href$="/{public_id}/webhook-secret"]')
    link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    confirm_violations = axe_violations(page)
    shots(page, f"admin-webhook-secret-{locale}")
    page.locator("form button[type=submit]").last.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    notice = page.locator("#new-secret")
    notice_role = notice.get_attribute("role")
    new_secret = page.locator("#new-webhook-secret").input_value()
    new_url = page.locator("#new-webhook-url").input_value()
    secret_readonly = page.locator("#new-webhook-secret").get_attribute("readonly")
    done_violations = axe_violations(page)
    shots(page, f"admin-webhook-secret-done-{locale}")
    page.goto(stack.base_url + "/admin/connect")
    later = page.content()
    page.context.close()

    expected_url = f"{stack.base_url}/webhooks/moodle/{public_id}"
    assert listed_url == expected_url
    assert name in field_label
    assert copied == expected_url
    assert list_violations == [], f"connect page in {locale}"
    assert confirm_violations == [], f"confirmation in {locale}"
    assert done_violations == [], f"new secret page in {locale}"
    assert notice_role == "status"
    assert new_url == expected_url
    assert secret_readonly is not None
    assert new_secret
    assert new_secret not in later
    with stack.bridge.session() as session:
        stored = session.get(LmsConnection, spare_id).webhook_secret_sha256
    assert stored == secret_digest(new_secret)
    assert stored != secret_digest("the old secret")


def test_learner_progress_then_badge(browser, stack, shots):
    """A learner sees the badge missing, then earned after completion, in en and ar."""
    page = launch(browser, stack, "learner")
    card = page.locator(".card").filter(has_text="Humanitarian Action Essentials")
    assert card.get_by_text("Not earned yet").count() == 1
    assert card.locator(".missing-list").get_by_text("Complete the course").count() == 1

    stack.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _delivered(stack), DELIVERY_TIMEOUT_SECONDS), stack.logs()

    def card_delivered() -> bool:
        page.reload()
        return card.locator('.delivery[data-status="delivered"]').count() == 1

    assert wait_for(card_delivered, DELIVERY_TIMEOUT_SECONDS, interval=1.0)
    assert card.get_by_text("Earned", exact=True).count() == 1
    assert axe_violations(page) == []
    shots(page, "learner-en", keep_copy=True)

    page.goto(page.url.split("?")[0] + "?lang=ar")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert card.get_by_text("تم الحصول عليها", exact=True).count() == 1
    assert axe_violations(page) == []
    shots(page, "learner-ar", keep_copy=True)
    page.context.close()


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_demo_page_accessible(browser, stack, locale):
    """The demo page is translated and passes axe-core."""
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(f"{stack.base_url}/demo/")

    assert page.locator("html").get_attribute("lang") == locale
    assert page.locator("ol.steps li").count() == 5
    assert axe_violations(page) == []
    context.close()


# A slow mobile network, in the units of Chrome DevTools Protocol's
# Network.emulateNetworkConditions: 400 ms added round trip and 400 kbit/s each way
# (throughput in bytes per second).
SLOW_MOBILE = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 // 8,
    "uploadThroughput": 400_000 // 8,
    "connectionType": "cellular3g",
}
LEARNER_PAGE_MAX_BYTES = 100 * 1024


def load_throttled(page, url: str) -> dict:
    """Load `url` on the slow mobile network with the cache off and measure it.

    Returns the bytes transferred (the sum of `encodedDataLength`, the total bytes
    received, over every finished request), the request count and the page's load
    time in milliseconds from Navigation Timing.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", SLOW_MOBILE)
    finished: list[float] = []
    failed: list[str] = []
    cdp.on(
        "Network.loadingFinished",
        lambda event: finished.append(event["encodedDataLength"]),
    )
    cdp.on(
        "Network.loadingFailed", lambda event: failed.append(event.get("errorText", ""))
    )

    page.goto(url, wait_until="load")
    load_ms = page.evaluate(
        "(() => { const [n] = performance.getEntriesByType('navigation');"
        " return Math.round(n.loadEventEnd - n.startTime); })()"
    )
    cdp.detach()
    return {
        "bytes": int(sum(finished)),
        "requests": len(finished),
        "failed": failed,
        "load_ms": load_ms,
    }


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_learner_page_light(browser, stack, locale):
    """The learner page with an earned badge transfers under 100 KB on a slow network."""
    stack.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _delivered(stack), DELIVERY_TIMEOUT_SECONDS), stack.logs()
    page = launch(browser, stack, "learner", locale=locale, width=360)

    measured = load_throttled(page, page.url)

    print(
        f"learner page ({locale}, slow mobile): {measured['bytes']} bytes in "
        f"{measured['requests']} requests, load event after {measured['load_ms']} ms"
    )
    assert measured["failed"] == []
    assert measured["bytes"] < LEARNER_PAGE_MAX_BYTES
    card = page.locator(".card").filter(has_text="Humanitarian Action Essentials")
    assert card.locator('a[href$="/badge.png"]').count() == 1
    assert card.locator('a[href$="/badge.svg"]').count() == 1
    assert not has_horizontal_scroll(page)
    page.context.close()


def test_backfill_progress_live(browser, stack):
    """An instructor starts a backfill; the worker runs it and the page follows it."""
    from playwright.sync_api import expect

    page = launch(browser, stack, "instructor")
    card = page.locator(".card").filter(has_text="Humanitarian Action Essentials")

    card.get_by_role("button", name="Award to learners who already qualify").click()
    page.wait_for_url("**/course/*#course-notice")
    assert page.evaluate("document.activeElement.id") == "course-notice"
    assert "has started" in page.evaluate("document.activeElement.textContent")
    job = page.locator(".backfill").first
    assert job.locator("progress").count() == 1
    assert axe_violations(page) == []

    # bridge.js polls the progress endpoint, so the page updates without a reload.
    # Creating a badge also starts a backfill, so wait for this job, not any job.
    expect(job).to_have_attribute(
        "data-status", "done", timeout=DELIVERY_TIMEOUT_SECONDS * 1000
    )
    assert job.locator(".backfill-status").inner_text() == "Finished"
    assert "Learners checked:" in job.locator(".backfill-counts").inner_text()
    assert job.get_by_role("button", name="Cancel").count() == 0
    page.context.close()


def real_png(width: int, height: int) -> bytes:
    """A decodable PNG of one colour, so the browser can draw it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x1f\x6f\xb4" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _drawn_badge_images(scope) -> list[dict]:
    """Return each badge image's alt text, drawn size and whether it loaded.

    Badge images load lazily, so one below the fold has not loaded when the page
    has: the card is scrolled into view first, and each image's decode() waits
    for its load (and resolves to nothing when the image is broken).
    """
    scope.scroll_into_view_if_needed()
    return scope.locator("img.badge-image").evaluate_all(
        """images => Promise.all(images.map(image => image.decode().catch(() => null)))
            .then(() => images.map(image => ({
                alt: image.getAttribute("alt"),
                loaded: image.complete && image.naturalWidth > 0,
                width: image.getBoundingClientRect().width,
            })))"""
    )


def test_badge_images_shown(browser, stack, tmp_path):
    """An uploaded badge image shows on both course pages, also inside the LMS frame."""
    name = "Water safety"
    image_path = tmp_path / "badge.png"
    image_path.write_bytes(real_png(120, 120))
    page = launch(browser, stack, "instructor")
    page.fill("#name", name)
    page.fill("#description", "Knows the water safety rules.")
    page.fill("#criteria", "Completed the water safety module.")
    page.set_input_files("#image", str(image_path))
    with page.expect_navigation():
        page.get_by_role("button", name="Create badge").click()

    instructor_images = _drawn_badge_images(page.locator(".card").filter(has_text=name))
    assert len(instructor_images) == 1
    assert instructor_images[0]["loaded"]
    assert name in instructor_images[0]["alt"]
    assert 48 <= instructor_images[0]["width"] <= 96
    assert axe_violations(page) == []
    page.context.close()

    context, frame = open_in_lms_frame(browser, stack, "learner")
    card = frame.locator(".card").filter(has_text=name)
    card.wait_for()

    learner_images = _drawn_badge_images(card)
    assert len(learner_images) == 1
    assert learner_images[0]["loaded"]
    assert name in learner_images[0]["alt"]
    context.close()


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_linked_portfolio_section(browser, stack, locale):
    """A linked learner is shown where badges go, and the link form opens on request."""
    page = launch(browser, stack, "learner", locale=locale)
    section = page.locator("section.portfolio-link")
    address_field = section.locator("#portfolio_url")

    assert section.locator('.portfolio-account[data-state="linked"]').count() == 1
    assert not address_field.is_visible()
    assert axe_violations(page) == []

    summary = section.locator("details.portfolio-change summary")
    summary.focus()
    page.keyboard.press("Enter")

    assert address_field.is_visible()
    assert section.locator("details.portfolio-change").get_attribute("open") is not None
    assert axe_violations(page) == []
    if locale == "ar":
        assert summary.inner_text() == "تغيير ملف الإنجازات"
    page.context.close()


def test_link_portfolio_on_another_site(browser, stack):
    """Linking a portfolio served from another origin takes the learner to its
    sign-in page: the browser lets the form's redirect leave the bridge."""
    from lti_tool.demo.peers.portfolio import PortfolioPeer

    peer = PortfolioPeer("static-token-not-used-here")
    server = peer.start()
    assert not server.url.startswith(stack.base_url)
    page = launch(browser, stack, "learner")
    try:
        section = page.locator("section.portfolio-link")
        section.locator("details.portfolio-change summary").click()
        section.locator("#portfolio_url").fill(server.url)
        section.get_by_role("button", name="Link portfolio").click()

        page.wait_for_url(f"{server.url}/**", timeout=10_000)
    finally:
        page.context.close()
        server.stop()


def test_portfolio_link_error_takes_focus(browser, stack):
    """An invalid portfolio address moves the focus to the field and its error."""
    page = launch(browser, stack, "learner")
    section = page.locator("section.portfolio-link")
    section.locator("details.portfolio-change summary").click()
    section.locator("#portfolio_url").fill("not a web address")
    page.evaluate("document.querySelector('#portfolio_url').form.noValidate = true")
    with page.expect_navigation():
        section.get_by_role("button", name="Link portfolio").click()
    focused_id = page.evaluate("document.activeElement.id")
    error_shown = page.locator("#portfolio_url-error").is_visible()
    page.context.close()

    assert focused_id == "portfolio_url"
    assert error_shown


def test_demo_peer_pages_under_policy(browser, stack):
    """The peers' pages work under their policy and report no violation."""
    context = browser.new_context()
    page = context.new_page()
    console = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"{stack.base_url}{PLATFORM_PATH}/frame/learner")
    tool = page.frame_locator("#tool")
    tool.locator("h1").wait_for()
    heading = tool.locator("h1").inner_text()
    # The frame page's inline script, allowed by its nonce, sets up this log.
    storage_script_ran = page.evaluate("Array.isArray(window.platformStorageLog)")
    for path in ("/demo/moodle/", "/demo/portfolio/", f"{PLATFORM_PATH}/"):
        response = page.goto(stack.base_url + path)
        assert "default-src 'none'" in response.headers["content-security-policy"]

    violations = [text for text in console if "Content Security Policy" in text]
    assert heading.startswith("Your badges")
    assert storage_script_ran
    assert violations == []
    context.close()


def test_long_words_wrap_in_cards(browser, stack):
    """A badge whose texts contain a long unbroken word or URL still fits a phone."""
    long_name = "Humanitarianlogisticscoordination" * 3
    page = launch(browser, stack, "instructor", width=360)
    page.fill("#name", long_name)
    page.fill("#description", "See https://example.org/" + "criteria-" * 12)
    page.fill("#criteria", "Completed the course.")
    with page.expect_navigation():
        page.get_by_role("button", name="Create badge").click()
    page.get_by_role("heading", name=long_name).first.wait_for()
    # In a whole-module run the learner already has the demo badge, so this page
    # also shows the awards table, whose hidden revoke labels must not widen it.
    instructor_scrolls = has_horizontal_scroll(page)
    page.context.close()
    learner = launch(browser, stack, "learner", width=360)
    learner_scrolls = has_horizontal_scroll(learner)
    learner.context.close()

    assert not instructor_scrolls
    assert not learner_scrolls


def _focused_confirmation(page) -> dict:
    return page.evaluate(
        "({confirmation: document.activeElement.hasAttribute('data-confirmation'),"
        " text: document.activeElement.textContent})"
    )


def test_account_confirmations_take_focus(browser, stack):
    """Disabling and enabling an admin account move the focus to the notice."""
    other = "second-admin@demo-academy.example"
    _add_admin(stack, other, "a long password for the second admin")
    page = _signed_in_page(browser, stack, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(stack.base_url + "/admin/accounts")

    with page.expect_navigation():
        page.get_by_role("button", name=f"Disable {other}").click()
    disabled = _focused_confirmation(page)
    with page.expect_navigation():
        page.get_by_role("button", name=f"Enable {other}").click()
    enabled = _focused_confirmation(page)
    page.context.close()

    assert disabled["confirmation"]
    assert f"{other} is disabled" in disabled["text"]
    assert enabled["confirmation"]
    assert f"{other} is enabled" in enabled["text"]


def test_password_confirmation_takes_focus(browser, stack):
    """A changed password is confirmed by a notice that takes the focus."""
    email = "password-admin@demo-academy.example"
    old_password = "a long password before the change"
    _add_admin(stack, email, old_password)
    page = _signed_in_page(browser, stack, email, old_password)
    page.goto(stack.base_url + "/account/password")

    page.fill("#current_password", old_password)
    page.fill("#password", "a long password after the change")
    page.fill("#password_repeat", "a long password after the change")
    with page.expect_navigation():
        page.get_by_role("button", name="Change the password").click()
    focused = _focused_confirmation(page)
    violations = axe_violations(page)
    page.context.close()

    assert focused["confirmation"]
    assert "Your password was changed." in focused["text"]
    assert violations == []


def test_sign_out_notice_takes_focus(browser, stack):
    """The notice that confirms a sign-out takes the focus, like other confirmations,
    and an expired session's notice does not."""
    email = "sign-out-admin@demo-academy.example"
    password = "a long password for signing out"
    _add_admin(stack, email, password)
    page = _signed_in_page(browser, stack, email, password)

    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    focused = _focused_confirmation(page)
    violations = axe_violations(page)
    page.goto(stack.base_url + "/account/sign-in?expired=1")
    expired = _focused_confirmation(page)
    page.context.close()

    assert focused["confirmation"]
    assert "You are signed out." in focused["text"]
    assert violations == []
    assert not expired["confirmation"]


def test_cancel_ended_backfill_focus(browser, stack):
    """Cancelling a backfill that has ended moves the focus to the notice saying so."""
    from lti_tool.backfill import BackfillJob, BackfillStatus

    page = launch(browser, stack, "instructor")
    # With the progress endpoint blocked, the page keeps the Cancel button of a job
    # that has ended, as on a page loaded before the job ended.
    page.route("**/backfills.json", lambda route: route.abort())
    card = page.locator(".card").filter(has_text="Humanitarian Action Essentials")
    card.get_by_role("button", name="Award to learners who already qualify").click()
    page.wait_for_url("**/course/*#course-notice")
    job_id = page.locator(".backfill").first.get_attribute("data-backfill")

    def job_ended() -> bool:
        with stack.bridge.session() as session:
            status = session.scalar(
                select(BackfillJob.status).where(BackfillJob.public_id == job_id)
            )
        return status == BackfillStatus.DONE.value

    assert wait_for(job_ended, DELIVERY_TIMEOUT_SECONDS), stack.logs()
    job = page.locator(f'[data-backfill="{job_id}"]')
    with page.expect_navigation():
        job.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/course/*#course-notice")
    focused = page.evaluate(
        "({id: document.activeElement.id, text: document.activeElement.textContent})"
    )
    page.context.close()

    assert focused["id"] == "course-notice"
    assert f"Job {job_id} had already ended (Finished)" in focused["text"]


def test_language_choice_ends_with_launch(browser, stack):
    """A ?lang= choice lasts for the launch's pages, and the next launch drops it."""
    page = launch(browser, stack, "learner")
    course_url = page.url.split("#")[0]

    page.goto(course_url + "?lang=ar")
    chosen = page.locator("html").get_attribute("lang")
    page.goto(course_url)
    kept = page.locator("html").get_attribute("lang")
    page.goto(f"{stack.base_url}{PLATFORM_PATH}/launch/learner")
    page.wait_for_url("**/course/*")
    relaunched = page.locator("html").get_attribute("lang")
    page.context.close()

    assert chosen == "ar"
    assert kept == "ar"
    assert relaunched == "en"
