"""Names from the LMS or a form inside translated sentences: each is isolated in
<bdi>, and lists of them follow the page language."""

from __future__ import annotations

import html

import pytest
from babel import Locale
from markupsafe import Markup

from badge_engine.models import Achievement
from lti_tool.i18n import (
    FSI,
    LANGUAGES,
    PDI,
    gettext_html,
    isolate,
    isolate_ltr,
    isolate_text,
    localized_list,
    markup_text,
)
from lti_tool.models import LtiCourse

from .conftest import launch_as

SKILLS = [
    {"targetName": "First aid", "targetUrl": "https://skills.example.org/first-aid"},
    {"targetName": "CPR", "targetUrl": "https://skills.example.org/cpr"},
    {"targetName": "Triage", "targetUrl": "https://skills.example.org/triage"},
]


def test_isolate_escapes_name():
    """A name is escaped and wrapped in <bdi>."""
    assert isolate("R&D <1>") == Markup("<bdi>R&amp;D &lt;1&gt;</bdi>")


def test_isolate_ltr_escapes_address():
    """An address is escaped and wrapped in a left-to-right <bdi>."""
    assert isolate_ltr("a&b@example.org") == Markup(
        '<bdi dir="ltr">a&amp;b@example.org</bdi>'
    )


def test_isolate_text_wraps_name():
    """A name for plain text is wrapped in FSI and PDI and is not escaped."""
    wrapped = isolate_text("R&D")

    assert wrapped == "\u2068R&D\u2069"
    assert not isinstance(wrapped, Markup)


def test_isolate_text_removes_isolates_in_name():
    """Isolate characters inside a name are removed, so the PDI added closes the FSI
    added, while other bidirectional controls stay inside the pair."""
    name = "\u2069A\u2066B\u2067C\u2068D\u202eE"

    assert isolate_text(name) == FSI + "ABCD\u202eE" + PDI


def test_gettext_html_keeps_isolated_name(app):
    """The message and plain values are escaped, and an isolated name is kept."""
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        text = gettext_html(
            "The badge “%(name)s” of %(learner)s was revoked. Anyone who checks it "
            "now sees that it is revoked, and why.",
            name=isolate("A & B"),
            learner="<i>x</i>",
        )

    assert isinstance(text, Markup)
    assert text.startswith("The badge “<bdi>A &amp; B</bdi>” of &lt;i&gt;x&lt;/i&gt;")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "A, B, and C"),
        ("fr", "A, B et C"),
        ("es", "A, B y C"),
        ("ar", "A وB وC"),
    ],
)
def test_localized_list_each_language(app, locale, expected):
    """Three items are joined with the page language's separators (CLDR)."""
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        assert localized_list(["A", "B", "C"]) == expected


def test_localized_list_short_lists(app):
    """No items join to nothing, and one item stays as it is."""
    with app.test_request_context("/", headers={"Accept-Language": "ar"}):
        assert localized_list([]) == ""
        assert localized_list(["A"]) == "A"


def test_localized_list_escapes_items(app):
    """Plain items are escaped, and Markup items are kept."""
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        joined = localized_list(["<b>", isolate("C&D")])

    assert joined == Markup("&lt;b&gt; and <bdi>C&amp;D</bdi>")


@pytest.mark.parametrize("locale", sorted(LANGUAGES))
def test_list_patterns_plain_text(locale):
    """The list patterns that `localized_list` marks as HTML contain no markup
    characters."""
    patterns = Locale.parse(locale).list_patterns["standard"]

    for pattern in patterns.values():
        text = pattern.replace("{0}", "").replace("{1}", "")
        assert Markup.escape(text) == text, (locale, pattern)


def _course_page(client, tenant, role: str, locale: str) -> str:
    launch_as(client, tenant, role, locale=locale)
    response = client.get(f"/course/{tenant.course_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["learner", "instructor", "observer"])
def test_arabic_heading_isolates_course_title(client, tenants, role):
    """The course title in each role's Arabic heading is isolated."""
    alpha, _ = tenants
    page = _course_page(client, alpha, role, "ar")
    heading = page[page.index("<h1>") : page.index("</h1>")]

    assert "<bdi>Course of alpha</bdi>" in heading


def test_heading_escapes_course_title(client, tenants, db):
    """A course title with markup is escaped inside its <bdi>."""
    alpha, _ = tenants
    course = db.get(LtiCourse, alpha.course_id)
    course.title = "<script>alert(1)</script>"
    db.commit()

    page = _course_page(client, alpha, "learner", "ar")

    assert "<bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi>" in page
    assert "<script>alert(1)" not in page


def test_heading_without_course_title(client, tenants, db):
    """A course without a title gets the catalogue's words, not an empty <bdi>."""
    alpha, _ = tenants
    course = db.get(LtiCourse, alpha.course_id)
    course.title = None
    db.commit()

    page = _course_page(client, alpha, "learner", "en")
    heading = page[page.index("<h1>") : page.index("</h1>")]

    assert heading == "<h1>Your badges in this course"


@pytest.mark.parametrize(
    ("locale", "separators"),
    [("en", (", ", ", and ")), ("ar", (" و", " و"))],
)
@pytest.mark.parametrize("role", ["learner", "instructor"])
def test_skills_listed_per_language(client, tenants, db, role, locale, separators):
    """A badge's skills are joined the page language's way on both course pages."""
    alpha, _ = tenants
    achievement = db.get(Achievement, alpha.achievement_id)
    achievement.alignments = SKILLS
    db.commit()

    page = html.unescape(_course_page(client, alpha, role, locale))
    first, second = separators
    expected = (
        '<a href="https://skills.example.org/first-aid" dir="auto">First aid</a>'
        + first
        + '<a href="https://skills.example.org/cpr" dir="auto">CPR</a>'
        + second
        + '<a href="https://skills.example.org/triage" dir="auto">Triage</a>'
    )

    assert expected in page


def _page_title(page: str) -> str:
    return page[page.index("<title>") + len("<title>") : page.index("</title>")]


@pytest.mark.parametrize("role", ["learner", "instructor", "observer"])
def test_arabic_title_isolates_course_title(client, tenants, role):
    """The Latin course title in each role's Arabic page title is wrapped in FSI and
    PDI, because a <title> cannot hold <bdi>."""
    alpha, _ = tenants
    page = _course_page(client, alpha, role, "ar")
    title = _page_title(page)

    assert title.endswith(" · \u2068Course of alpha\u2069")
    assert "<bdi>" not in title


def test_title_escapes_course_title(client, tenants, db):
    """A course title with markup is escaped inside its isolate characters."""
    alpha, _ = tenants
    course = db.get(LtiCourse, alpha.course_id)
    course.title = "<b>R&D</b>"
    db.commit()

    title = _page_title(_course_page(client, alpha, "learner", "ar"))

    assert title.endswith("\u2068&lt;b&gt;R&amp;D&lt;/b&gt;\u2069")


def test_title_without_course_title(client, tenants, db):
    """A course without a title gets the catalogue's word, with no isolates."""
    alpha, _ = tenants
    course = db.get(LtiCourse, alpha.course_id)
    course.title = None
    db.commit()

    title = _page_title(_course_page(client, alpha, "learner", "en"))

    assert title == "Your badges · Course"


def test_markup_text_plain(app):
    """A message made for HTML reads as plain text without its isolates and
    entities."""
    with app.test_request_context("/"):
        message = gettext_html(
            "No page exists at %(path)s. Check the address, or open the tool again "
            "from your course in the LMS.",
            path=isolate_ltr("/a&b"),
        )

    assert "&amp;" in message
    assert markup_text(message) == (
        "No page exists at /a&b. Check the address, or open the tool again from "
        "your course in the LMS."
    )
