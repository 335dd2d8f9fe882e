"""Page languages: English, French, Spanish and Arabic, with gettext catalogues.

The catalogues are the `.po` files in `lti_tool/translations/`. They are compiled in
memory when the app starts, so a fresh clone installed with `pip install -e .` needs no
build step and a `.po` edit can never run against a stale `.mo` file.

A page's language is, in order: the language the person picked with the switcher, the
locale claim of their LTI launch (`launch_presentation.locale`), the browser's
Accept-Language header, then English. The sign-in and admin pages keep their switcher
choice in the account cookie and read no launch locale, so a course launch does not
change their language and a choice there does not change the course pages'. Account
emails, sent by Celery tasks with no
request, set their language with `force_locale`.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, request, session
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"
# Languages in the order the switcher lists them, each named in its own language.
LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية"}
RTL_LANGUAGES = frozenset({"ar"})


def supported_locale(value: str | None) -> str | None:
    """Return the supported language for a BCP 47 tag such as `fr-CA`, or None."""
    if not value:
        return None
    try:
        language = Locale.parse(value.strip().replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return None

    return language if language in LANGUAGES else None


class LocaleSource(Enum):
    """The origin of a page's language, in the order `select_locale` tries them."""

    # The switcher's choice, stored in the session of the page's area. A `?lang=`
    # link stores its choice before the view runs.
    CHOICE = "choice"
    # The locale claim of the LTI launch, on course pages only.
    LAUNCH = "launch"
    # The first supported language of the browser's Accept-Language header.
    BROWSER = "browser"
    # Nothing above named a supported language, so the page is in English.
    DEFAULT = "default"


def _stored_choices() -> tuple[tuple[str | None, LocaleSource], ...]:
    """Return the languages stored in the session of this page's area, each with
    its source, first choice first."""
    from lti_tool.views.account_session import account_session, in_account_area

    if in_account_area():
        return ((account_session().get("locale_choice"), LocaleSource.CHOICE),)
    return (
        (session.get("locale_choice"), LocaleSource.CHOICE),
        (session.get("launch_locale"), LocaleSource.LAUNCH),
    )


def select_locale() -> tuple[str, LocaleSource]:
    """Return the request's language and where it comes from."""
    for candidate, source in _stored_choices():
        chosen = supported_locale(candidate)
        if chosen:
            return chosen, source
    for tag, _quality in request.accept_languages:
        chosen = supported_locale(tag)
        if chosen:
            return chosen, LocaleSource.BROWSER

    return DEFAULT_LOCALE, LocaleSource.DEFAULT


def chosen_locale() -> str | None:
    """Return the request's language, or None when the page fell back to English.

    The sign-in, invitation and reset pages store this as the account's language. A
    fallback is no choice, so it must not replace a language stored before.
    """
    locale, source = select_locale()
    if source is LocaleSource.DEFAULT:
        return None

    return locale


@lru_cache(maxsize=None)
def translations_for(locale: str) -> NullTranslations:
    """Compile the locale's `.po` catalogue into gettext translations, once per process."""
    po_path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)

    return Translations(buffer)


def current_locale() -> str:
    if "locale" not in g:
        g.locale, _source = select_locale()
    return g.locale


@contextmanager
def force_locale(locale: str) -> Iterator[None]:
    """Translate in `locale` inside the block, in place of the request's language.

    Celery tasks run in an app context with no request, so an email they send
    takes its language from here. Requires an app context.
    """
    previous = g.pop("locale", None)
    g.locale = locale
    try:
        yield
    finally:
        if previous is None:
            g.pop("locale", None)
        else:
            g.locale = previous


def gettext(message: str, **variables) -> str:
    text = translations_for(current_locale()).ugettext(message)
    return text % variables if variables else text


def list_separator() -> str:
    """Return the separator between the items of a list: ", ", or "، " in Arabic."""
    return gettext(", ")


def gettext_html(message: str, **variables) -> Markup:
    """Translate a message into HTML: the catalogue text and plain values are
    escaped, and Markup values, such as names wrapped by `isolate`, are kept."""
    text = Markup.escape(translations_for(current_locale()).ugettext(message))
    return text % variables if variables else text


def isolate(value: object) -> Markup:
    """Wrap a name from the LMS or a form, such as a course title, in <bdi>.

    The browser then gives the name its own direction, so a Latin name in an Arabic
    sentence (or the reverse) leaves the words and punctuation around it in order.
    """
    return Markup("<bdi>{}</bdi>").format(value)


def isolate_ltr(value: object) -> Markup:
    """Wrap an email address, URL or code in <bdi dir="ltr">.

    Such a value is shown left to right even when it starts with a character of no
    direction, such as a digit, or contains Arabic letters.
    """
    return Markup('<bdi dir="ltr">{}</bdi>').format(value)


# The tags that `isolate` and `isolate_ltr` write.
_ISOLATE_TAGS = re.compile(r'</?bdi(?: dir="ltr")?>')


def markup_text(value: Markup) -> str:
    """Return the plain text of a message from `gettext_html`, for a JSON body.

    The <bdi> tags around its values are removed and its entities unescaped, so a
    path such as `/a&b` reads as typed.
    """
    return html.unescape(_ISOLATE_TAGS.sub("", str(value)))


# FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: the plain-text form of <bdi>.
FSI = "\u2068"
PDI = "\u2069"
# LEFT-TO-RIGHT ISOLATE: with PDI, the plain-text form of <bdi dir="ltr">.
LRI = "\u2066"
# The isolate initiators and terminator (U+2066 to U+2069) mapped to None for
# str.translate. A stray one in a name would pair with the FSI or PDI around it.
_WITHOUT_ISOLATES = dict.fromkeys(range(0x2066, 0x206A))


def isolate_text(value: object) -> str:
    """Wrap a name in the Unicode isolate characters FSI and PDI, for text that
    cannot hold markup: the page <title> and attribute values such as `alt`.

    Inside them the name takes the direction of its first strong character, as in a
    <bdi>. Isolate characters in the name itself are removed, so the PDI added here
    always closes the FSI added here, and it also ends any embedding or override the
    name opens. The result is plain text, so templates still escape it.
    """
    name = str(value).translate(_WITHOUT_ISOLATES)
    return f"{FSI}{name}{PDI}"


def isolate_ltr_text(value: object) -> str:
    """Wrap an email address, URL or code in the Unicode isolate characters LRI and
    PDI, for text that cannot hold markup, such as the body of an email.

    It is the plain-text form of `isolate_ltr`: the value reads left to right even
    in an Arabic sentence. Isolate characters in the value are removed, as
    `isolate_text` removes them.
    """
    text = str(value).translate(_WITHOUT_ISOLATES)
    return f"{LRI}{text}{PDI}"


def localized_list(items) -> Markup:
    """Join items into one list with the page language's separators and "and", from
    Babel's CLDR "standard" pattern: "A, B, and C" in English, "A وB وC" in Arabic.

    Each item is escaped unless it is Markup, such as a name wrapped by `isolate`.
    """
    escaped = [Markup.escape(item) for item in items]
    # CLDR's "standard" list patterns for the page languages contain only letters,
    # spaces and commas, and `test_list_patterns_plain_text` checks that, so the
    # joined text is safe HTML.
    joined = format_list(escaped, style="standard", locale=current_locale())
    return Markup(joined)  # noqa: S704 - see the comment above


def ngettext(singular: str, plural: str, count: int, **variables) -> str:
    text = translations_for(current_locale()).ungettext(singular, plural, count)
    return text % {"num": count, **variables}


def text_direction() -> str:
    return "rtl" if current_locale() in RTL_LANGUAGES else "ltr"


def localized_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return format_date(value, format="long", locale=current_locale())


def localized_datetime(value: datetime | None) -> str:
    """Format a time in UTC with the zone named, so no reader takes it for local time.

    A naive value, as SQLite returns, is taken to be UTC.
    """
    if value is None:
        return ""
    return format_datetime(
        value, format="long", tzinfo=timezone.utc, locale=current_locale()
    )


def localized_number(value: float | int) -> str:
    return format_decimal(value, locale=current_locale())


def localized_percent(value: float | int) -> str:
    """Format a percentage from 0 to 100 with the locale's sign and spacing.

    French and Spanish put a no-break space before the sign ("82,5 %"), so a line
    never breaks between the number and "%". Like `localized_number`, at most three
    decimals are shown.
    """
    fraction = (Decimal(str(value)).quantize(Decimal("0.001")) / 100).normalize()
    return format_percent(fraction, locale=current_locale(), decimal_quantization=False)


def language_choice() -> str | None:
    """Return the supported language this request picks with the switcher's
    `?lang=`, or None when it picks none."""
    return supported_locale(request.args.get("lang"))


def _apply_language_choice() -> None:
    """Store a supported `?lang=` choice in the session of this page's area.

    The switcher's links set it, and the pages, forms and redirects after them carry
    no `?lang=`, so the choice must outlive its request. A course session ends at the
    next LTI launch, which drops the choice. A choice on a sign-in or admin page goes
    to the account cookie, because writing Flask's session there would change the
    language of a course launched in the same browser.
    """
    from lti_tool.views.account_session import page_session

    chosen = language_choice()
    if chosen:
        page_session()["locale_choice"] = chosen


# Endpoints whose GET works once: the portfolio's OAuth callback consumes its code
# and state, so a second GET of its path is an error.
_SINGLE_USE = frozenset({"portfolio.callback"})
# Characters besides letters and digits that a URL path may carry unencoded (RFC 3986
# `pchar` and "/"). Every other character is percent-encoded in a switcher link.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


def same_origin_path(path: str) -> str | None:
    """Percent-encode a request path for a link, or return None for an off-origin one.

    Browsers read a backslash as "/" and drop tabs, CR and LF from a URL, so a
    404 page of `/%5Cevil.example.org` or `/%09/evil.example.org` would otherwise
    link to `//evil.example.org`, another host. After encoding, a path has only
    printable ASCII with no backslash. One that starts with "//" is still a
    reference to another host, and gets None.
    """
    encoded = quote(path, safe=_PATH_SAFE)
    if not encoded.startswith("/") or encoded.startswith("//"):
        return None

    return encoded


def switcher_path() -> str | None:
    """Return the path the language switcher links to, or None to show no switcher.

    An empty string makes the links `?lang=xx`, relative to the current page. That
    is used for a GET whose path cannot be written as a same-origin path.

    A GET of the path of a page rendered by a POST (a form shown again with its
    errors, an error page) fails with 405. So the links go to the nearest path above
    it that serves GET, such as the course page above its badge form. A course or
    portfolio path with none above it, or a single-use one, links to the launched
    course.
    """
    from lti_tool.errors import launched_course_url

    if request.endpoint in _SINGLE_USE:
        return launched_course_url()
    if request.method in ("GET", "HEAD"):
        return same_origin_path(request.path) or ""
    adapter = current_app.url_map.bind("localhost")
    path = request.path.rstrip("/")
    while path:
        for candidate in (path, path + "/"):
            try:
                adapter.match(candidate, method="GET")
            except HTTPException:
                # NotFound, MethodNotAllowed, or the redirect to the other slash form.
                continue
            # A route variable may hold a backslash or a control character.
            link = same_origin_path(candidate)
            if link is not None:
                return link
        path = path.rpartition("/")[0]

    return launched_course_url()


def init_app(app: Flask) -> None:
    """Install the gettext callables and locale filters into the app's templates."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    # Jinja's newstyle gettext substitutes the %(name)s variables itself, after
    # escaping them, so the callables installed here only translate.
    app.jinja_env.install_gettext_callables(
        lambda message: translations_for(current_locale()).ugettext(message),
        lambda singular, plural, count: translations_for(current_locale()).ungettext(
            singular, plural, count
        ),
        newstyle=True,
    )
    app.jinja_env.filters["date"] = localized_date
    app.jinja_env.filters["datetime"] = localized_datetime
    app.jinja_env.filters["number"] = localized_number
    app.jinja_env.filters["isolate"] = isolate
    app.jinja_env.filters["isolate_ltr"] = isolate_ltr
    app.jinja_env.filters["isolate_text"] = isolate_text
    app.jinja_env.filters["localized_list"] = localized_list
    app.before_request(_apply_language_choice)

    @app.context_processor
    def language_context():
        return {
            "locale": current_locale(),
            "text_direction": text_direction(),
            "languages": LANGUAGES,
            "switcher_path": switcher_path,
        }
