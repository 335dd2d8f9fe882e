"""Languages of the pages: choice order, right-to-left, and complete catalogues."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import g, session

from lti_tool.i18n import (
    LANGUAGES,
    TRANSLATIONS,
    LocaleSource,
    chosen_locale,
    force_locale,
    gettext,
    localized_percent,
    select_locale,
    supported_locale,
    translations_for,
)

from .conftest import launch_as

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("es_MX", "es"),
        ("ar-EG", "ar"),
        ("de", None),
        ("", None),
        (None, None),
        ("not a tag!", None),
    ],
)
def test_supported_locale_tags(tag, expected):
    """A BCP 47 tag maps to its supported language, or to None."""
    assert supported_locale(tag) == expected


# Code that a French message quotes as typed. Its marks take no space before them. The
# code is a URL or its scheme, a query string, an XML processing instruction, or a
# scheme named alone before a comma ("javascript:,").
FRENCH_QUOTED_CODE = re.compile(
    r"[a-z]+://\S*|\?[a-z_]+=|<\?.*?\?>|(?:%\(\w+\)s|[a-z]+):(?=,)"
)
FRENCH_HIGH_MARK = re.compile(r"[:;?!]")
FRENCH_MARK_SPACES = ("\u00a0", "\u202f")


def _french_forms(message, translations) -> list[str]:
    """Return every form of a message as the compiled French catalogue gives it."""
    if not isinstance(message.id, tuple):
        return [translations.ugettext(message.id)]
    singular, plural = message.id[:2]
    # 1, 2 and 1000000 select the three plural forms of the catalogue's header.
    return [translations.ungettext(singular, plural, n) for n in (1, 2, 1000000)]


def test_french_space_before_high_marks():
    """French has a no-break space before each colon, semicolon, ? and !."""
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    translations = translations_for("fr")
    wrong = []

    for message in template:
        if not message.id:
            continue
        for text in _french_forms(message, translations):
            prose = FRENCH_QUOTED_CODE.sub("code", text)
            for mark in FRENCH_HIGH_MARK.finditer(prose):
                before = prose[mark.start() - 1] if mark.start() else ""
                if before not in FRENCH_MARK_SPACES:
                    wrong.append(prose[max(0, mark.start() - 30) : mark.end()])

    assert wrong == []


REPOSITORY = Path(__file__).resolve().parents[3]


def _load_update_script():
    path = REPOSITORY / "scripts" / "update_translations.py"
    spec = importlib.util.spec_from_file_location("update_translations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extraction_finds_template_messages(monkeypatch):
    """The catalogue update script extracts exactly the messages of messages.pot, so
    running it deletes no message that a page still shows."""
    # The script extracts from the working directory, as its main() sets it.
    monkeypatch.chdir(REPOSITORY)
    extracted = _load_update_script().extract_template()
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = read_po(handle)

    extracted_ids = {message.id for message in extracted if message.id}
    template_ids = {message.id for message in template if message.id}

    assert template_ids - extracted_ids == set()
    assert extracted_ids - template_ids == set()


@pytest.mark.parametrize("locale", ["fr", "es", "ar"])
def test_catalogue_translates_every_message(locale):
    """Every extracted message has a translation with the same placeholders."""
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)

    for message in template:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        assert translated is not None, f"{locale}: {message.id!r} is missing"
        # A plural message has a tuple of ids and one string per plural form.
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = (
            translated.string
            if isinstance(translated.string, tuple)
            else (translated.string,)
        )
        expected = set(PLACEHOLDER.findall(sources[0]))
        for form in forms:
            assert form, f"{locale}: {message.id!r} is untranslated"
            assert set(PLACEHOLDER.findall(form)) == expected, (
                f"{locale}: placeholders differ in {message.id!r}"
            )


# French typography: a narrow no-break space (U+202F) before ; ! ?, and a no-break
# space (U+00A0) before : and », after «, and between a number and %. Any other
# space there, or none, is wrong, because a breakable one lets a line break leave
# the mark alone at the start of a line. Each pattern finds a wrong space next to
# its mark. Marks that are not punctuation are skipped: a URL's "?token=" and
# "https://", an address scheme's colon before a comma ("javascript:,"), and the XML
# processing instruction "<?...?>".
NARROW_NBSP = "\u202f"
NBSP = "\u00a0"
FRENCH_WRONG_SPACE = {
    ";": re.compile(r"[^\u202f];"),
    "!": re.compile(r"[^\u202f]!"),
    "?": re.compile(r"[^\u202f<]\?(?!token=|>)"),
    ":": re.compile(r"[^\u00a0]:(?![/,])"),
    "»": re.compile(r"[^\u00a0]»"),
    "«": re.compile(r"«[^\u00a0]"),
    "%": re.compile(r"[^\u00a0%(]%%"),
}


def french_forms():
    path = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="fr")

    for message in catalog:
        if not message.id:
            continue
        yield from (
            message.string if isinstance(message.string, tuple) else (message.string,)
        )


@pytest.mark.parametrize("mark", sorted(FRENCH_WRONG_SPACE))
def test_french_punctuation_keeps_its_space(mark):
    """French translations put the right no-break space at each mark."""
    wrong = FRENCH_WRONG_SPACE[mark]

    for form in french_forms():
        found = wrong.search(form)
        assert found is None, f"wrong space at {mark!r} in {form!r}"


def test_french_punctuation_space_kinds():
    """The checks tell the two no-break spaces apart at each mark."""
    for mark in ";!?":
        assert FRENCH_WRONG_SPACE[mark].search(f"Oui{NBSP}{mark}")
        assert FRENCH_WRONG_SPACE[mark].search(f"Oui {mark}")
        assert not FRENCH_WRONG_SPACE[mark].search(f"Oui{NARROW_NBSP}{mark}")
    for mark in ":»":
        assert FRENCH_WRONG_SPACE[mark].search(f"Oui{NARROW_NBSP}{mark}")
        assert FRENCH_WRONG_SPACE[mark].search(f"Oui {mark}")
        assert not FRENCH_WRONG_SPACE[mark].search(f"Oui{NBSP}{mark}")
    assert FRENCH_WRONG_SPACE["«"].search("« Oui")
    assert not FRENCH_WRONG_SPACE["«"].search(f"«{NBSP}Oui")
    assert FRENCH_WRONG_SPACE["%"].search("50 %%")
    assert not FRENCH_WRONG_SPACE["%"].search(f"50{NBSP}%%")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "82.5%"),
        ("fr", f"82,5{NBSP}%"),
        ("es", f"82,5{NBSP}%"),
        ("ar", "82.5%"),
    ],
)
def test_localized_percent_keeps_sign(app, locale, expected):
    """A percentage keeps its sign on the number's line in every page language."""
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        assert localized_percent(82.5) == expected
        assert localized_percent(70) == expected.replace("82.5", "70").replace(
            "82,5", "70"
        )
        assert localized_percent(200 / 3) == expected.replace("82.5", "66.667").replace(
            "82,5", "66,667"
        )


def test_launch_locale_beats_accept_language(client, tenants):
    """The LTI launch's locale claim wins over the browser's Accept-Language."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="es-ES")

    page = client.get(
        f"/course/{alpha.course_id}", headers={"Accept-Language": "fr"}
    ).get_data(as_text=True)

    assert '<html lang="es" dir="ltr">' in page
    assert "Aún no obtenida" in page


def test_accept_language_without_launch_locale(client, tenants):
    """Without a launch locale the browser's preferred supported language is used."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    page = client.get(
        f"/course/{alpha.course_id}", headers={"Accept-Language": "de, fr;q=0.8"}
    ).get_data(as_text=True)

    assert '<html lang="fr" dir="ltr">' in page
    assert "Pas encore obtenu" in page


def test_arabic_page_is_right_to_left(client, tenants):
    """An Arabic page declares lang="ar" and dir="rtl"."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="ar")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert '<html lang="ar" dir="rtl">' in page
    assert "لم تحصل عليها بعد" in page


def test_switcher_choice_is_kept(client, tenants):
    """A ?lang= choice overrides the launch locale for the rest of the session."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="ar")

    client.get(f"/course/{alpha.course_id}?lang=fr")
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert '<html lang="fr" dir="ltr">' in page


def test_switcher_lists_every_language(client, tenants):
    """The switcher links each language, named in that language."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    for code, name in LANGUAGES.items():
        assert f'lang="{code}" hreflang="{code}"' in page
        assert name in page


def test_switcher_after_form_post(client, tenants):
    """A badge form shown again by its POST switches language on the course page."""
    from .test_course_pages import badge_form

    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/achievements", data=badge_form(name="")
    )
    page = response.get_data(as_text=True)
    switched = client.get(f"/course/{alpha.course_id}?lang=ar")

    assert response.status_code == 400
    assert f'href="/course/{alpha.course_id}?lang=ar"' in page
    assert "/achievements?lang=" not in page
    assert switched.status_code == 200


def test_switcher_after_portfolio_error(client, tenants):
    """An error page of a portfolio POST switches language on the launched course."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")
    with client.session_transaction() as session:
        csrf = session.setdefault("csrf", "test-csrf")

    response = client.post(
        "/portfolio/link",
        data={"csrf": csrf, "portfolio_url": "javascript:alert(1)"},
        headers={"Accept": "text/html"},
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert f'href="/course/{alpha.course_id}?lang=fr"' in page
    assert "/portfolio/link?lang=" not in page


def test_switcher_after_sign_in_post(client):
    """A rejected sign-in links the language switcher to the sign-in page's GET."""
    page = client.post(
        "/account/sign-in", data={"email": "nobody@example.org", "password": "x"}
    ).get_data(as_text=True)

    assert 'href="/account/sign-in?lang=es"' in page


@pytest.mark.parametrize(
    ("language", "zone"),
    [("en", "UTC"), ("es", "UTC"), ("fr", "TU"), ("ar", "التوقيت العالمي")],
)
def test_times_name_their_zone(app, language, zone):
    """A time on a page is in UTC, with the zone named in the page's language."""
    from datetime import datetime, timedelta, timezone

    from lti_tool.i18n import localized_datetime

    naive = datetime(2026, 12, 4, 23, 22, 22)
    in_utc_plus_two = naive.replace(tzinfo=timezone(timedelta(hours=2)))

    with app.test_request_context(headers={"Accept-Language": language}):
        shown_naive = localized_datetime(naive)
        shown_aware = localized_datetime(in_utc_plus_two)

    assert shown_naive.endswith(zone)
    assert "22:22" in shown_naive
    assert "21:22:22" in shown_aware or "9:22:22" in shown_aware


def test_dates_are_localised(client, tenants, db):
    """The date earned is written the way the page's language writes dates."""
    from .conftest import add_credential

    alpha, _ = tenants
    add_credential(db, alpha)
    launch_as(client, alpha, "learner", locale="fr")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "14 mars 2026" in page


# A URL inside right-to-left text is isolated as left-to-right (U+2066 ... U+2069),
# so its neutral characters stay in place: without it, "https://." shows as
# ".//:https".
URL_IN_TEXT = re.compile(r"https?://[^\s\u2069\"]*")


def test_arabic_urls_isolated():
    """Every web address in an Arabic translation sits in a left-to-right isolate."""
    with (TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="ar")

    for message in catalog:
        strings = message.string
        forms = strings if isinstance(strings, tuple) else (strings,)
        for form in forms:
            for found in URL_IN_TEXT.finditer(form or ""):
                start, end = found.span()
                assert form[start - 1 : start] == "\u2066", f"not isolated: {form!r}"
                assert form[end : end + 1] == "\u2069", f"not closed: {form!r}"


# The Arabic catalogue names the training provider "المزوّد". These are other
# words it once used for the same thing, so a page could name it two ways.
ARABIC_PROVIDER_TERM = "المزوّد"
ARABIC_PROVIDER_OTHER_TERMS = ("الجهة المقدِّمة", "الجهة المقدمة", "مقدّم التدريب")


def test_arabic_provider_term_is_one():
    """The Arabic catalogue translates "provider" with one term only."""
    with (TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="ar")

    provider_forms = []
    for message in catalog:
        strings = message.string
        forms = strings if isinstance(strings, tuple) else (strings,)
        for form in forms:
            text = form or ""
            for other in ARABIC_PROVIDER_OTHER_TERMS:
                assert other not in text, f"{other!r} names the provider: {text!r}"
            if ARABIC_PROVIDER_TERM in text:
                provider_forms.append(text)
    assert provider_forms, f"no translation uses {ARABIC_PROVIDER_TERM!r}"


def test_french_course_heading(client, tenants):
    """The French course heading sets the title after a colon, so no article before
    a title that starts with a vowel needs eliding."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "<h1>Badges du cours\u00a0: <bdi>Course of alpha</bdi></h1>" in page
    assert "Badges de Course" not in page


def test_force_locale_outside_request(app):
    """Without a request, the forced language applies inside its block only."""
    with app.app_context():
        with force_locale("es"):
            spanish = gettext("Password")
            with force_locale("fr"):
                french = gettext("Password")
            spanish_again = gettext("Password")
        forced_after = "locale" in g

    assert spanish == "Contraseña"
    assert french == "Mot de passe"
    assert spanish_again == "Contraseña"
    assert not forced_after


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("de, fr;q=0.8", ("fr", LocaleSource.BROWSER)),
        ("en", ("en", LocaleSource.BROWSER)),
        ("de", ("en", LocaleSource.DEFAULT)),
        ("", ("en", LocaleSource.DEFAULT)),
    ],
)
def test_select_locale_browser_or_default(app, accept_language, expected):
    """A supported Accept-Language language comes from the browser, and English
    without one is the default."""
    with app.test_request_context(
        "/account/sign-in", headers={"Accept-Language": accept_language}
    ):
        selected = select_locale()
        chosen = chosen_locale()

    assert selected == expected
    assert chosen == (None if expected[1] is LocaleSource.DEFAULT else expected[0])


def test_select_locale_switcher_link(app):
    """A `?lang=` link on a sign-in page is a choice, ahead of the browser's."""
    with app.test_request_context(
        "/account/sign-in?lang=ar", headers={"Accept-Language": "fr"}
    ):
        app.preprocess_request()
        selected = select_locale()
        chosen = chosen_locale()

    assert selected == ("ar", LocaleSource.CHOICE)
    assert chosen == "ar"


def test_select_locale_course_sources(app):
    """On a course page the stored choice comes before the launch's locale claim."""
    with app.test_request_context("/course/1", headers={"Accept-Language": "fr"}):
        session["launch_locale"] = "es-ES"
        from_launch = select_locale()
        session["locale_choice"] = "ar"
        from_choice = select_locale()

    assert from_launch == ("es", LocaleSource.LAUNCH)
    assert from_choice == ("ar", LocaleSource.CHOICE)
