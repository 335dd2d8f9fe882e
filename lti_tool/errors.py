"""Errors a request can end with, and how they are shown.

BridgeRequestError        4xx with a message naming what was wrong and what to do
├── BadRequest            400: malformed input
├── Unauthorized          401: missing or wrong credentials (webhook secret, token)
├── Forbidden             403: the caller may not do this
├── NotFound              404
├── Gone                  410: the resource existed and was removed for good
├── LaunchRejected        400: an LTI launch failed validation; carries the LTI ids
└── ServiceUnavailable    503: nothing was saved, the sender should try again
"""

from __future__ import annotations

import uuid

import structlog
from markupsafe import Markup
from flask import Flask, g, jsonify, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from lti_tool.i18n import gettext, gettext_html, isolate_ltr, markup_text
from lti_tool.logs import get_logger

log = get_logger(__name__)


class BridgeRequestError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        shown_message: str | None = None,
        back_link: tuple[str, str] | None = None,
        problems: list[dict[str, str]] | None = None,
        **ids: object,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Text the response shows instead of `message`, such as its translation for a
        # learner's page. The log still records `message`.
        self.shown_message = shown_message or message
        # (URL, label) of the page an HTML error page sends the reader back to.
        self.back_link = back_link
        # One {"field", "message"} entry per bad input field, for a JSON response.
        self.problems = problems
        if code:
            self.code = code
        self.ids = {key: value for key, value in ids.items() if value is not None}

    def page_text(self) -> tuple[str, str | Markup | None]:
        """Return the message a response shows and a detail, if any.

        A str detail is English and a Markup detail is in the page language. Called
        while the response renders, so a subclass can translate there.
        """
        return self.shown_message, None


class BadRequest(BridgeRequestError):
    status = 400


class Unauthorized(BridgeRequestError):
    status = 401
    code = "unauthorized"


class Forbidden(BridgeRequestError):
    status = 403
    code = "forbidden"


class NotFound(BridgeRequestError):
    status = 404
    code = "not_found"


class Gone(BridgeRequestError):
    status = 410
    code = "gone"


class LaunchRejected(BridgeRequestError):
    status = 400
    code = "launch_rejected"


class ServiceUnavailable(BridgeRequestError):
    status = 503
    code = "unavailable"


def _wants_json() -> bool:
    if request.path.startswith(("/webhooks/", "/api/", "/health")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _render(
    status: int,
    code: str,
    message: str | Markup,
    detail: str | Markup | None = None,
    back_link: tuple[str, str] | None = None,
    problems: list[dict[str, str]] | None = None,
):
    """Render an error as JSON or as the error page.

    A str `detail` is English, so the page marks it as English. A Markup one, from
    `gettext_html`, is in the page language.
    """
    body = {"error": code, "message": message, "request_id": g.get("request_id")}
    if detail:
        body["detail"] = detail
    if problems:
        body["problems"] = problems
    if _wants_json():
        for key in ("message", "detail"):
            if isinstance(body.get(key), Markup):
                body[key] = markup_text(body[key])
        return jsonify(body), status
    return (
        render_template(
            "error.html",
            status=status,
            course_url=launched_course_url(),
            back_link=back_link,
            detail_translated=isinstance(detail, Markup),
            **body,
        ),
        status,
    )


# Paths of the pages for provider admins and operators. The held deployments page
# sits in the LTI blueprint, under /lti/admin.
_ADMIN_PATHS = ("/admin/", "/lti/admin/")


def is_admin_path() -> bool:
    return request.path.startswith(_ADMIN_PATHS)


def admin_dashboard_link() -> tuple[str, str]:
    return url_for("admin.dashboard"), gettext("Back to the admin overview")


# Paths of the pages a learner or instructor reaches from a launched course.
_COURSE_PATHS = ("/course/", "/portfolio/")


def launched_course_url() -> str | None:
    """Return the URL of the launched course for a course or portfolio request.

    Inside the LMS frame the browser's back button is often out of reach, so an error
    page of such a request links back to the course.
    """
    course_id = session.get("course_id")
    if not isinstance(course_id, int) or not request.path.startswith(_COURSE_PATHS):
        return None
    return url_for("pages.course", course_id=course_id)


def bind_request_id(incoming: str | None) -> str:
    """Bind a request id to this thread's log context and return it.

    A printable X-Request-ID from the caller (such as a proxy) is kept, cut to 64
    characters, so that log lines join up across systems. Without one, a new id is
    made.
    """
    request_id = incoming[:64] if incoming and incoming.isprintable() else None
    request_id = request_id or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def _http_error_message(error: HTTPException) -> str | Markup:
    """Describe a routing error in the language of the request (English by default).

    The path and the methods are codes, so they are isolated left to right, which
    keeps them readable in an Arabic sentence.
    """
    path = isolate_ltr(request.path)
    if error.code == 404 and is_admin_path():
        return gettext_html(
            "The admin pages have no page at %(path)s. Check the address, or go back "
            "to the admin overview and choose a page from its menu.",
            path=path,
        )
    if error.code == 404:
        return gettext_html(
            "No page exists at %(path)s. Check the address, or open the tool again "
            "from your course in the LMS.",
            path=path,
        )
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        return gettext_html(
            "%(path)s does not accept %(method)s requests. Use one of: %(methods)s.",
            path=path,
            method=isolate_ltr(request.method),
            methods=isolate_ltr(", ".join(error.valid_methods)),
        )
    return error.description or error.name


def register_error_handlers(app: Flask) -> None:
    @app.before_request
    def bind_request_id_of_request() -> None:
        g.request_id = bind_request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def add_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.errorhandler(BridgeRequestError)
    def handle_bridge_error(error: BridgeRequestError):
        log.warning(
            "request_rejected",
            status=error.status,
            code=error.code,
            reason=error.message,
            path=request.path,
            **error.ids,
        )
        message, detail = error.page_text()
        return _render(
            error.status,
            error.code,
            message,
            detail,
            back_link=error.back_link,
            problems=error.problems,
        )

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        log.warning(
            "request_rejected",
            status=413,
            code="too_large",
            path=request.path,
            length=request.content_length,
        )
        return _render(
            413,
            "request_entity_too_large",
            f"The request body is larger than the bridge's limit of "
            f"{limit // (1024 * 1024)} MB. LMS events and forms are far smaller; "
            "check what sent this request, and for a badge image upload one of at "
            "most 512 KB.",
        )

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        status = error.code or 500
        if 400 <= status < 500:
            # abort(404) and friends: log them like the bridge's own rejections, so a
            # probe of another provider's ids leaves a trace.
            log.warning(
                "request_rejected", status=status, code=error.name, path=request.path
            )
        back_link = admin_dashboard_link() if is_admin_path() else None
        response, status = _render(
            status,
            error.name.lower().replace(" ", "_"),
            _http_error_message(error),
            back_link=back_link,
        )
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response = app.make_response(response)
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response, status

    @app.errorhandler(RecursionError)
    def handle_too_deep(error: RecursionError):
        # json.loads raises RecursionError, not ValueError, for a body nested tens of
        # thousands of levels deep, so get_json(silent=True) lets it through.
        log.warning("request_rejected", status=400, code="too_deep", path=request.path)
        return _render(
            400,
            "too_deep",
            "the request body is nested too deeply to read; send a JSON object of "
            "ordinary depth",
        )

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        log.exception("request_failed", path=request.path)
        return _render(
            500,
            "internal_error",
            "The bridge failed to handle this request. Nothing was saved; try again, "
            "and if it keeps failing give the request id to your HPass contact.",
        )
