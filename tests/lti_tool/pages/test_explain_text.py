""" "Why not yet?" and "Still missing" on the learner page, in every page language."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from badge_engine.explain import (
    NOT_REPORTED,
    READING_ACTIVITY,
    READING_COURSE,
    READING_GRADE,
    LmsReading,
    explain_award,
)
from badge_engine.facts import CompletionState
from badge_engine.models import Achievement
from badge_engine.rules import ActivityProgress, LearnerProgress
from lti_tool.views.explain_text import explanation_text, reading_text

from .conftest import launch_as

NBSP = "\u00a0"
DONE_AT = datetime(2026, 1, 1, tzinfo=UTC)
TIME_TAG = '<time datetime="2026-01-01T00:00:00+00:00">'
NAMES = {"4001": "Final quiz"}
LANGUAGES = ("en", "fr", "es", "ar")


def plain(text: str) -> str:
    """Return the text with no-break spaces as spaces, for catalogue texts whose
    French spacing this module does not test."""
    return text.replace(NBSP, " ")


def render(app, locale: str, reading: LmsReading) -> str:
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        text = reading_text(reading, NAMES)
    # Entities are unescaped so that apostrophes read as typed. Tags stay.
    return html.unescape(text)


READINGS = {
    "course_done": LmsReading(READING_COURSE, "completed", at=DONE_AT),
    "course_done_untimed": LmsReading(READING_COURSE, "completed"),
    "course_open": LmsReading(READING_COURSE, "not_completed"),
    "grade": LmsReading(READING_GRADE, percent=82.5, at=DONE_AT),
    "no_grade": LmsReading(READING_GRADE),
    "quiz_done": LmsReading(
        READING_ACTIVITY, CompletionState.COMPLETE.value, activity_id="4001", at=DONE_AT
    ),
    "page_open": LmsReading(
        READING_ACTIVITY, CompletionState.INCOMPLETE.value, activity_id="4002"
    ),
    "page_failed": LmsReading(
        READING_ACTIVITY, CompletionState.FAILED.value, activity_id="4002"
    ),
    "page_passed": LmsReading(
        READING_ACTIVITY, CompletionState.PASSED.value, activity_id="4002"
    ),
    "page_unknown": LmsReading(READING_ACTIVITY, NOT_REPORTED, activity_id="4002"),
}

EXPECTED = {
    "en": {
        "course_done": "course completed on " + TIME_TAG,
        "course_done_untimed": "course completed, at a time the LMS did not report",
        "course_open": "course not completed",
        "grade": "grade of 82.5% on " + TIME_TAG,
        "no_grade": "no grade",
        "quiz_done": "“<bdi>Final quiz</bdi>”: completed on " + TIME_TAG,
        "page_open": 'activity <bdi dir="ltr">4002</bdi>: not completed',
        "page_failed": 'activity <bdi dir="ltr">4002</bdi>: failed',
        "page_passed": 'activity <bdi dir="ltr">4002</bdi>: passed',
        "page_unknown": 'activity <bdi dir="ltr">4002</bdi>: not reported',
    },
    "fr": {
        "course_done": "cours terminé le " + TIME_TAG,
        "course_done_untimed": "cours terminé, à une date que le LMS n'a pas indiquée",
        "course_open": "cours non terminé",
        "grade": f"note de 82,5{NBSP}% le " + TIME_TAG,
        "no_grade": "aucune note",
        "quiz_done": f"«{NBSP}<bdi>Final quiz</bdi>{NBSP}»{NBSP}: terminée le "
        + TIME_TAG,
        "page_open": f'l\'activité <bdi dir="ltr">4002</bdi>{NBSP}: non terminée',
        "page_failed": f'l\'activité <bdi dir="ltr">4002</bdi>{NBSP}: échouée',
        "page_passed": f'l\'activité <bdi dir="ltr">4002</bdi>{NBSP}: réussie',
        "page_unknown": (
            f'l\'activité <bdi dir="ltr">4002</bdi>{NBSP}: non signalée par le LMS'
        ),
    },
    "es": {
        "course_done": "curso completado el " + TIME_TAG,
        "course_done_untimed": "curso completado, en una fecha que el LMS no indicó",
        "course_open": "curso no completado",
        "grade": f"calificación de 82,5{NBSP}% el " + TIME_TAG,
        "no_grade": "sin calificación",
        "quiz_done": "«<bdi>Final quiz</bdi>»: completada el " + TIME_TAG,
        "page_open": 'la actividad <bdi dir="ltr">4002</bdi>: no completada',
        "page_failed": 'la actividad <bdi dir="ltr">4002</bdi>: no aprobada',
        "page_passed": 'la actividad <bdi dir="ltr">4002</bdi>: aprobada',
        "page_unknown": 'la actividad <bdi dir="ltr">4002</bdi>: no informada por el LMS',
    },
    "ar": {
        "course_done": "الدورة مكتملة في " + TIME_TAG,
        "course_done_untimed": "الدورة مكتملة، في وقت لم يذكره نظام إدارة التعلّم",
        "course_open": "الدورة غير مكتملة",
        "grade": "درجة ",
        "no_grade": "لا توجد درجة",
        "quiz_done": "«<bdi>Final quiz</bdi>»: مكتمل في " + TIME_TAG,
        "page_open": 'النشاط <bdi dir="ltr">4002</bdi>: غير مكتمل',
        "page_failed": 'النشاط <bdi dir="ltr">4002</bdi>: غير ناجح',
        "page_passed": 'النشاط <bdi dir="ltr">4002</bdi>: ناجح',
        "page_unknown": 'النشاط <bdi dir="ltr">4002</bdi>: لم يُبلغ عنه نظام إدارة التعلّم',
    },
}


@pytest.mark.parametrize("locale", LANGUAGES)
@pytest.mark.parametrize("case", sorted(READINGS))
def test_reading_text_each_language(app, locale, case):
    """Each kind of LMS reading is worded in the page language."""
    text = render(app, locale, READINGS[case])

    assert text.startswith(EXPECTED[locale][case])


@pytest.mark.parametrize("locale", LANGUAGES)
def test_reading_time_localised(app, locale):
    """A reading's time is a <time> element in the page language's format."""
    text = render(app, locale, READINGS["course_done"])
    displayed_time = text.split(TIME_TAG, 1)[1].split("</time>", 1)[0]

    assert "2026" in displayed_time
    assert "T00:00" not in displayed_time


def test_reading_escapes_activity_name(app):
    """An activity name from the LMS is escaped inside the reading."""
    with app.test_request_context("/"):
        text = reading_text(READINGS["quiz_done"], {"4001": "<b>Quiz</b>"})

    assert "<b>" not in text
    assert "&lt;b&gt;Quiz&lt;/b&gt;" in text


COMBINED = {
    "kind": "all_of",
    "rules": [
        {"kind": "course_completed"},
        {"kind": "activity_completed", "activity_id": "4001"},
    ],
    "window": {"from": "2025-01-01T00:00:00Z"},
}

# The conditions of COMBINED as the learner's steps, in each language: the
# combination, its two parts and the start of its window.
CONDITION_TEXTS = {
    "en": (
        "Do all of these:",
        "Complete the course.",
        "Complete “<bdi>Final quiz</bdi>”.",
        "Do this on or after <time",
    ),
    "fr": (
        f"Faire toutes ces étapes{NBSP}:",
        "Terminer le cours.",
        f"Terminer «{NBSP}<bdi>Final quiz</bdi>{NBSP}».",
        "À faire à partir du <time",
    ),
    "es": (
        "Hacer todos estos pasos:",
        "Completar el curso.",
        "Completar «<bdi>Final quiz</bdi>».",
        "Hacerlo a partir del <time",
    ),
    "ar": (
        "القيام بكل هذه الخطوات:",
        "إكمال الدورة.",
        "إكمال «<bdi>Final quiz</bdi>».",
        "القيام بذلك في <time",
    ),
}


@pytest.mark.parametrize("locale", LANGUAGES)
def test_conditions_each_language(app, locale):
    """Conditions are the learner's steps, with a combination's window apart."""
    progress = LearnerProgress(
        course_completed=False,
        activities={"4001": ActivityProgress(CompletionState.COMPLETE, DONE_AT)},
    )
    explanation = explain_award(
        {"version": 1, "rule": COMBINED},
        progress,
        read_at=DONE_AT,
        source="lms",
        activity_names=NAMES,
    )
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        worded = explanation_text(explanation)
    combination, course, quiz = (
        html.unescape(condition.description.text) for condition in worded.conditions
    )
    window = html.unescape(worded.conditions[0].description.window)
    all_of, course_text, quiz_text, window_text = CONDITION_TEXTS[locale]

    assert plain(combination) == plain(all_of)
    assert window.startswith(window_text)
    assert plain(course) == plain(course_text)
    assert plain(quiz) == plain(quiz_text)
    assert [c.met for c in worded.conditions] == [False, False, True]
    assert [c.depth for c in worded.conditions] == [0, 1, 1]
    assert worded.top_conditions == worded.conditions[:1]
    assert worded.conditions[0].parts == worded.conditions[1:]
    # The combination has a window, so it is missing whole, with both parts.
    assert len(worded.missing) == 1
    assert plain(html.unescape(worded.missing[0].text)) == plain(all_of)
    assert len(worded.missing[0].parts) == 2


def test_missing_only_completion_time(app):
    """A windowed course completion with no LMS time is missing only its time."""
    explanation = explain_award(
        {
            "version": 1,
            "rule": {
                "kind": "course_completed",
                "window": {"from": "2025-01-01T00:00:00Z"},
            },
        },
        LearnerProgress(course_completed=True, course_completed_at=None),
        read_at=DONE_AT,
        source="lms",
    )
    with app.test_request_context("/"):
        worded = explanation_text(explanation)

    [missing] = worded.missing
    assert missing.text == (
        "You have done this, but the LMS did not report when, so it cannot be "
        "checked against the dates below:"
    )
    assert [part.text for part in missing.parts] == ["Complete the course."]
    assert missing.window.startswith("Do this on or after <time")


# The learner page


RAW_RULE = {
    "version": 1,
    "rule": {
        "kind": "all_of",
        "rules": [
            {
                "kind": "activities_completed_at_least",
                "activity_ids": ["4001", "4002"],
                "count": 2,
            },
            {"kind": "grade_at_least", "min_percent": 70},
        ],
    },
}

# Text the page must show in each language for RAW_RULE: the combination's
# introduction in the conditions, the at-least step as a condition, the "no grade"
# reading, and the course total grade as the learner's step, both as a condition
# and in the "Still missing" lists.
PAGE_TEXTS = {
    "en": (
        "Do all of these:",
        "Complete at least 2 of these activities:",
        "(no grade)",
        "Reach 70% or more in the course total.",
    ),
    "fr": (
        f"Faire toutes ces étapes{NBSP}:",
        "Terminer au moins 2 de ces activités :",
        "(aucune note)",
        "Atteindre 70 % ou plus dans la note totale du cours.",
    ),
    "es": (
        "Hacer todos estos pasos:",
        "Completar al menos 2 de estas actividades:",
        "(sin calificación)",
        "Alcanzar 70 % o más en la calificación total del curso.",
    ),
    "ar": (
        "القيام بكل هذه الخطوات:",
        "إكمال 2 على الأقل من هذه الأنشطة:",
        "(لا توجد درجة)",
        "الحصول على 70% أو أكثر في المجموع الكلي للدورة.",
    ),
}
ENGLISH_LEFTOVERS = (
    "Do all of these",
    "Meet every one",
    "Complete at least",
    "Reach at least",
    "not reported",
    "no grade",
    "Meet the badge",
)


def learner_page(client, db, tenant, locale: str) -> str:
    achievement = db.get(Achievement, tenant.achievement_id)
    achievement.award_rule = RAW_RULE
    db.commit()
    launch_as(client, tenant, "learner", locale=locale)
    response = client.get(f"/course/{tenant.course_id}")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def section(page: str, start: str, end: str) -> str:
    begin = page.index(start)
    return page[begin : page.index(end, begin)]


@pytest.mark.parametrize("locale", LANGUAGES)
def test_learner_page_why_not_yet(client, db, tenants, locale):
    """The "Why not yet?" conditions and their LMS data are in the page language."""
    alpha, _ = tenants
    page = learner_page(client, db, alpha, locale)
    explained = plain(section(page, '<details class="why-not-yet"', "</details>"))
    combination, grade, no_grade, grade_step = PAGE_TEXTS[locale]

    assert plain(combination) in explained
    assert plain(grade) in explained
    assert no_grade in explained
    assert plain(grade_step) in explained
    assert explained.count('class="condition"') == 3
    if locale != "en":
        for english in ENGLISH_LEFTOVERS:
            assert english not in explained, english


@pytest.mark.parametrize("locale", LANGUAGES)
def test_learner_page_missing_raw_rule(client, db, tenants, locale):
    """A rule set through the API lists what is missing, not a general sentence."""
    alpha, _ = tenants
    page = learner_page(client, db, alpha, locale)
    missing = plain(section(page, '<ul class="missing-list">', "</ul>"))
    _combination, _grade, _no_grade, grade_step = PAGE_TEXTS[locale]

    assert missing.count("<li>") == 2
    assert plain(grade_step) in missing
    assert '<bdi dir="ltr">4001</bdi>' in missing
    assert '<bdi dir="ltr">4002</bdi>' in missing
    assert "Meet the badge's criteria" not in page
    assert "Remplir les critères du badge" not in page


def test_learner_page_missing_uses_stored_facts(client, db, tenants):
    """The missing list drops a part the stored completion facts show met."""
    from badge_engine.facts import CompletionFact, FactSource
    from lti_tool.pipeline import record_fact

    alpha, _ = tenants
    rule = {
        "version": 1,
        "rule": {
            "kind": "all_of",
            "rules": [
                {"kind": "activity_completed", "activity_id": "4001"},
                {"kind": "grade_at_least", "min_percent": 70},
            ],
        },
    }
    fact = CompletionFact(
        provider_id=alpha.provider_id,
        lms_connection_id=alpha.connection_id,
        lms_course_id="101",
        lms_user_id="42",
        activity_id="4001",
        state=CompletionState.COMPLETE,
        occurred_at=DONE_AT,
        source=FactSource.EVENT,
    )
    record_fact(db, fact)
    achievement = db.get(Achievement, alpha.achievement_id)
    achievement.award_rule = rule
    db.commit()
    launch_as(client, alpha, "learner", locale="en")

    page = html.unescape(
        client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    )
    missing = section(page, '<ul class="missing-list">', "</ul>")

    assert missing.count("<li>") == 1
    assert "Reach 70% or more in the course total." in missing
    assert "4001" not in missing


NESTED_RULE = {
    "version": 1,
    "rule": {
        "kind": "all_of",
        "rules": [
            {
                "kind": "any_of",
                "rules": [
                    {"kind": "activity_completed", "activity_id": "4001"},
                    {"kind": "grade_at_least", "min_percent": 70},
                ],
            },
            {"kind": "course_completed"},
        ],
        "window": {"from": "2026-03-01T00:00:00Z", "until": "2027-05-01T00:00:00Z"},
    },
}

# NESTED_RULE's texts on the learner page: the two combinations, the course step,
# the words before the window's start, and the third-person word for the learner
# that the page must not use.
NESTED_TEXTS = {
    "en": (
        "Do all of these:",
        "Do one of these:",
        "Complete the course.",
        "Do this between <time",
        "learner",
    ),
    "ar": (
        "القيام بكل هذه الخطوات:",
        "القيام بخطوة واحدة من هذه الخطوات:",
        "إكمال الدورة.",
        "القيام بذلك بين <time",
        "المتعلّم",
    ),
}


def nested_card(client, db, tenant, locale: str) -> str:
    achievement = db.get(Achievement, tenant.achievement_id)
    achievement.award_rule = NESTED_RULE
    db.commit()
    launch_as(client, tenant, "learner", locale=locale)
    response = client.get(f"/course/{tenant.course_id}")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    return page


@pytest.mark.parametrize("locale", sorted(NESTED_TEXTS))
def test_learner_page_nested_steps(client, db, tenants, locale):
    """Nested rules read as the learner's steps in nested lists, in en and ar."""
    alpha, _ = tenants
    page = nested_card(client, db, alpha, locale)
    card = section(page, '<li class="card"', '<section class="portfolio-link"')
    missing = section(card, '<ul class="missing-list">', '<details class="why-not-yet"')
    explained = section(card, '<details class="why-not-yet"', "</details>")
    all_of, any_of, course_step, window, third_person = NESTED_TEXTS[locale]

    # "Still missing": the windowed rule is missing whole, its parts nested.
    assert missing.count('<ul class="rule-parts">') == 2
    assert missing.index(all_of) < missing.index(any_of) < missing.index(course_step)
    assert window in missing
    assert '<bdi dir="ltr">4001</bdi>' in missing
    # "Why not yet?": five conditions, each combination's parts in its own list.
    assert explained.count('class="condition"') == 5
    assert explained.count('<ul class="conditions">') == 3
    assert all_of in explained
    assert any_of in explained
    assert window in explained
    assert third_person not in card


def test_learner_page_arabic_direction(client, db, tenants):
    """The Arabic learner page is right to left, with ids and times isolated."""
    alpha, _ = tenants
    page = nested_card(client, db, alpha, "ar")
    card = section(page, '<li class="card"', '<section class="portfolio-link"')

    assert '<html lang="ar" dir="rtl">' in page
    assert '<bdi dir="ltr">4001</bdi>' in card
    assert '<time datetime="2026-03-01T00:00:00+00:00">' in card
    assert '<time datetime="2027-05-01T00:00:00+00:00">' in card
    assert "Do all of these" not in card
    assert "Do this" not in card


def test_learner_card_says_missing_once(client, db, tenants):
    """With "Why not yet?" open, the card lists what is missing once, and the
    details give the conditions only."""
    alpha, _ = tenants
    page = nested_card(client, db, alpha, "en")
    card = section(page, '<li class="card"', '<section class="portfolio-link"')
    explained = section(card, '<details class="why-not-yet"', "</details>")

    assert card.count("Still missing") == 1
    assert 'class="explain-missing"' not in card
    assert 'class="condition"' in explained
    assert "Still missing" not in explained
