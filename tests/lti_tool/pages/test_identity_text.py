"""The details of launches rejected over their custom LMS ids, in every page language."""

from __future__ import annotations

import pytest

from lti_tool.lti import identity_text

LANGUAGES = ("fr", "es", "ar")

# Each text function with arguments whose ids a page must show isolated.
CASES = {
    "moodle_id_differs": (
        lambda: identity_text.moodle_id_differs("lms_user_id", "3001", "sub", "4002"),
        ["lms_user_id", "3001", "sub", "4002"],
    ),
    "course_without_context": (
        lambda: identity_text.course_without_context("canvas_course_id"),
        ["canvas_course_id"],
    ),
    "course_of_other_context": (
        lambda: identity_text.course_of_other_context("101", "ctx-9"),
        ["101", "ctx-9", "lms_course_id", "$Context.id", "$Canvas.course.id"],
    ),
    "learner_of_other_sub": (
        lambda: identity_text.learner_of_other_sub("3001"),
        ["3001", "lms_user_id", "$User.id", "$Canvas.user.id"],
    ),
    "canvas_course_unconfirmed": (
        lambda: identity_text.canvas_ids_unconfirmed(
            identity_text.canvas_has_no_course("ctx-9"), admin_lookup=False
        ),
        ["ctx-9", "lms_course_id=$Canvas.course.id", "lms_user_id=$Canvas.user.id"],
    ),
    "canvas_admin_unconfirmed": (
        lambda: identity_text.canvas_ids_unconfirmed(
            identity_text.canvas_has_no_readable_user("sub-7"), admin_lookup=True
        ),
        ["sub-7", "Users - view list"],
    ),
    "canvas_user_not_in_course": (
        lambda: identity_text.canvas_ids_unconfirmed(
            identity_text.canvas_has_no_course_user("sub-7"), admin_lookup=False
        ),
        ["sub-7"],
    ),
    "canvas_course_differs": (
        lambda: identity_text.canvas_course_differs("canvas_course_id", "101", "999"),
        ["canvas_course_id", "101", "999"],
    ),
    "canvas_user_differs": (
        lambda: identity_text.canvas_user_differs("canvas_user_id", "3001", "4002"),
        ["canvas_user_id", "3001", "4002"],
    ),
    "canvas_scope_missing": (
        lambda: identity_text.canvas_not_checked(
            "course", "ctx-9", "scope missing", scope_missing=True, admin_lookup=False
        ),
        ["ctx-9", *identity_text.CANVAS_IDENTITY_SCOPES],
    ),
    "canvas_admin_not_checked": (
        lambda: identity_text.canvas_not_checked(
            "user", "sub-7", "timed out", scope_missing=False, admin_lookup=True
        ),
        ["sub-7", "hpass-bridge lms test"],
    ),
    "canvas_admin_access_denied": (
        lambda: identity_text.canvas_not_checked(
            "user",
            "sub-7",
            "HTTP 403",
            scope_missing=False,
            access_denied=True,
            admin_lookup=True,
        ),
        ["sub-7", "Users - view list"],
    ),
    "canvas_user_not_checked": (
        lambda: identity_text.canvas_not_checked(
            "user", "sub-7", "timed out", scope_missing=False, admin_lookup=False
        ),
        ["sub-7", "hpass-bridge lms test"],
    ),
    "one_parameter_without_canvas": (
        lambda: identity_text.custom_ids_without_canvas(["canvas_user_id"]),
        ["canvas_user_id"],
    ),
    "two_parameters_without_canvas": (
        lambda: identity_text.custom_ids_without_canvas(
            ["canvas_course_id", "canvas_user_id"]
        ),
        ["canvas_course_id", "canvas_user_id"],
    ),
}


def _render(app, case: str, language: str) -> str:
    text, _ids = CASES[case]
    with app.test_request_context("/", headers={"Accept-Language": language}):
        return str(text())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_identity_text_translated(app, case, language):
    """Every sentence differs from the English one, and each id is isolated."""
    english = _render(app, case, "en")
    translated = _render(app, case, language)

    english_sentences = {part for part in english.split(". ") if len(part) > 20}
    assert english_sentences
    for sentence in english_sentences:
        assert sentence not in translated
    _text, ids = CASES[case]
    for value in ids:
        assert f'<bdi dir="ltr">{value}</bdi>' in translated


def test_long_id_cut(app):
    """An id longer than the shown maximum is cut, as the English log cuts it."""
    long_id = "x" * (identity_text.SHOWN_ID_MAX + 10)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        text = str(identity_text.learner_of_other_sub(long_id))

    assert f'<bdi dir="ltr">{"x" * identity_text.SHOWN_ID_MAX}</bdi>' in text
    assert long_id not in text


def test_canvas_error_escaped(app):
    """Canvas's error text is escaped and marked as English."""
    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        text = str(
            identity_text.canvas_not_checked(
                "course", "ctx-9", "<b>bad</b>", scope_missing=False, admin_lookup=False
            )
        )

    assert 'Erreur de Canvas\u00a0: <span lang="en" dir="ltr">&lt;b&gt;bad' in text
