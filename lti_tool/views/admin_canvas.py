"""The admin form that connects a Canvas site, beside the Moodle form on /admin/connect.

It runs the action of `hpass-bridge lms connect canvas`, which stores the connection
only when Canvas accepted the token and the test on the named course found no
problem other than missing scopes. Missing scopes are reported after the connection
is stored, because the admin adds them in Canvas and the bridge's next test finds
them.
"""

from __future__ import annotations

from flask import request
from markupsafe import Markup

from connectors.models import LmsKind
from lti_tool.accounts import Account
from lti_tool.bridge import current_bridge, db_session
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.logs import get_logger
from lti_tool.operations import ActionError
from lti_tool.operations.lms import (
    TOKEN_MAX,
    CanvasTestFailed,
    InvalidLmsUrl,
    canvas_course_id,
    connect_canvas_site,
    find_same_site,
)
from lti_tool.views.admin import (
    _actor,
    _connections_page,
    _provider_or_pick,
    _read_field,
    account_required,
    bp,
    lms_url_message,
    read_lms_url,
)
from lti_tool.views.field_errors import FieldError
from lti_tool.views.pages import check_csrf

log = get_logger(__name__)

# Long enough for a pasted course address, from which the id is taken.
COURSE_FIELD_MAX = 500
CLIENT_ID_MAX = 200
# The three fields of an API developer key, given all together or not at all.
DEVELOPER_KEY_FIELDS = (
    "canvas_client_id",
    "canvas_client_secret",
    "canvas_refresh_token",
)
# Fields whose values are secrets, so the page never sends them back.
SECRET_FIELDS = ("canvas_token", "canvas_client_secret", "canvas_refresh_token")


def _read_canvas_form(provider) -> tuple[dict, dict, dict]:
    """Read and check the form's fields and return (values, form, errors)."""
    form: dict = {}
    errors: dict = {}
    values = {"name": _read_field(form, errors, "canvas_name")}

    url = read_lms_url(
        form,
        errors,
        "canvas_url",
        not_a_url_message=_(
            "This is not a web address. Enter a full address such as "
            "https://canvas.example.org."
        ),
        provider_id=provider.id,
    )
    values["url"] = url

    values["token"] = _read_field(form, errors, "canvas_token", limit=TOKEN_MAX)
    course_field = _read_field(form, errors, "canvas_course", limit=COURSE_FIELD_MAX)
    course_id = canvas_course_id(course_field)
    if "canvas_course" not in errors and course_id is None:
        errors["canvas_course"] = _(
            "Enter the course's number, such as 1234 in the course address "
            "https://canvas.example.org/courses/1234."
        )
    values["course_id"] = course_id or course_field

    values["client_id"] = _read_field(
        form, errors, "canvas_client_id", CLIENT_ID_MAX, required=False
    )
    values["client_secret"] = _read_field(
        form, errors, "canvas_client_secret", TOKEN_MAX, required=False
    )
    values["refresh_token"] = _read_field(
        form, errors, "canvas_refresh_token", TOKEN_MAX, required=False
    )
    filled = [name for name in DEVELOPER_KEY_FIELDS if form[name]]
    if filled and len(filled) < len(DEVELOPER_KEY_FIELDS):
        for name in DEVELOPER_KEY_FIELDS:
            if not form[name] and name not in errors:
                errors[name] = _(
                    "A developer key needs its client id, secret and refresh token "
                    "together. Fill in this field, or empty all three to connect "
                    "with an admin access token."
                )
    for name in SECRET_FIELDS:
        form.pop(name, None)

    if "canvas_url" not in errors:
        existing = find_same_site(db_session(), provider.id, LmsKind.CANVAS.value, url)
        if existing is not None:
            errors["canvas_url"] = _site_connected_message(provider, existing.name)
    return values, form, errors


def _site_connected_message(provider, name: str) -> Markup:
    return i18n.gettext_html(
        "%(provider)s is already connected to this Canvas site as “%(name)s”. Use "
        "that connection, or press its Disconnect button under LMS sites before "
        "connecting the site again.",
        provider=i18n.isolate(provider.name),
        name=i18n.isolate(name),
    )


def _test_failed_errors(error: CanvasTestFailed, url: str, course_id: str) -> dict:
    """Return the field error for a connection test that Canvas failed."""
    result = error.result
    if result.token_invalid:
        return {
            "canvas_token": _(
                "Canvas rejected this token: it does not exist, or it was deleted "
                "or expired. Nothing was saved. In Canvas, create a new token under "
                "Account > Settings > Approved integrations, or authorise the "
                "bridge's developer key again, and enter the new token here."
            )
        }
    if result.site_unavailable:
        # As for Moodle, the full error, with its retries, is only in the log.
        return {
            "canvas_url": i18n.gettext_html(
                "The bridge could not reach Canvas at %(url)s. Check the address and "
                "that the site is up, then connect again. Nothing was saved.",
                url=i18n.isolate_ltr(url),
            )
        }
    # Canvas returned an error on the course, so its English text follows.
    message = i18n.gettext_html(
        "Canvas at %(url)s failed the connection test, so nothing was saved. "
        "The bridge could not read course %(course)s with this token. Check "
        "the site address and the course number, and that the token's user "
        "can open the course in Canvas, then connect again.",
        url=i18n.isolate_ltr(url),
        course=i18n.isolate_ltr(course_id),
    )
    return {"canvas_url": FieldError(message, detail=result.message)}


def _rejected_errors(error: ActionError, provider) -> dict:
    """Return the field error for an input the connect action rejected."""
    if error.code == "connection_exists":
        # A concurrent request connected the site after the form's check.
        existing = find_same_site(
            db_session(), provider.id, LmsKind.CANVAS.value, request.form["canvas_url"]
        )
        name = existing.name if existing is not None else ""
        return {"canvas_url": _site_connected_message(provider, name)}
    if error.code == "invalid_token":
        return {
            "canvas_token": _(
                "A token is one value without spaces. Copy it again from Canvas."
            )
        }
    if isinstance(error, InvalidLmsUrl):
        # The address passed the form's check, and then its DNS answer changed.
        url = (request.form.get("canvas_url") or "").strip()
        return {"canvas_url": lms_url_message(error, url, None)}
    # The form checked every other input the action checks, so this is the URL.
    return {"canvas_url": error.message}


@bp.post("/connect/canvas")
@account_required
def connect_canvas(account: Account):
    check_csrf()
    provider = _provider_or_pick(account)
    values, form, errors = _read_canvas_form(provider)
    if errors:
        return _connections_page(account, provider, form, errors, status=400)

    db = db_session()
    try:
        connected = connect_canvas_site(
            db,
            current_bridge(),
            _actor(account),
            provider,
            url=values["url"],
            token=values["token"],
            course_id=values["course_id"],
            name=values["name"],
            client_id=values["client_id"] or None,
            client_secret=values["client_secret"] or None,
            refresh_token=values["refresh_token"] or None,
            token_option="canvas_token",  # noqa: S106 - a field name, not a token
            url_field="canvas_url",
        )
    except CanvasTestFailed as error:
        db.rollback()
        log.info(
            "lms_connection_test_failed",
            provider_id=provider.id,
            base_url=values["url"],
            token_invalid=error.result.token_invalid,
            error=error.result.message,
        )
        errors = _test_failed_errors(error, values["url"], values["course_id"])
        return _connections_page(account, provider, form, errors, status=400)
    except ActionError as error:
        db.rollback()
        log.info(
            "request_rejected",
            status=400,
            code=error.code,
            reason=error.message,
            provider_id=provider.id,
        )
        errors = _rejected_errors(error, provider)
        return _connections_page(account, provider, form, errors, status=400)
    db.commit()
    log.info(
        "lms_connection_created",
        provider_id=provider.id,
        connection=connected.connection.id,
        kind=LmsKind.CANVAS.value,
        scopes_missing=len(connected.test.get("missing_scopes", [])),
    )
    # The webhook secret, which the Live Events URL carries, is shown this once.
    created = {
        "connection": connected.connection,
        "webhook_url": connected.webhook_url,
        "webhook_secret": connected.webhook_secret,
        "missing_scopes": connected.test.get("missing_scopes", []),
        "problems": connected.test.get("problems", []),
    }
    return _connections_page(account, provider, created=created)
