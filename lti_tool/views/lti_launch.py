"""The OIDC login and launch endpoints, handled ahead of Flask's request handling.

Every course visit from an LMS is a login and a launch, so these two requests cost
more in total than any page. `LaunchDispatcher` is WSGI middleware in front of Flask:
it handles `/lti/<registration>/login` (GET, POST, HEAD) and
`/lti/<registration>/launch` (POST) with a werkzeug request and response, and passes
every other request to Flask. The Flask views of these URLs call the same
`LaunchEndpoints`, so there is one implementation. The two redirects of a
successful login and course launch are sent as `PlainRedirect`s, with the bytes
werkzeug's response would send but without building it.

Steps that render a template or use Flask's session (the LTI Platform Storage pages,
Deep Linking, error pages) run inside a Flask request context that is pushed for them
only. Flask's before- and after-request functions run there as for any request, so
these responses get the same request id, language choice and headers.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlsplit

import structlog
from markupsafe import escape
from flask import Flask, has_request_context, render_template
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response
from werkzeug.http import dump_cookie, http_date
from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect

from badge_engine.identity import IdentityConflict, change_email
from badge_engine.models import Learner
from lti_tool.errors import NotFound, bind_request_id
from lti_tool.i18n import gettext, isolate_text
from lti_tool.models import LtiCourse
from lti_tool.logs import get_logger
from lti_tool.lti import (
    ags,
    deep_linking,
    identity_text,
    nonces,
    roles,
    upserts,
)
from lti_tool.lti.canvas_identity import CanvasIdentityCheck, PendingCheck
from lti_tool.lti.errors import ClaimInvalid, DeploymentHeld, RegistrationUnknown
from lti_tool.lti.jwks import JwksCache
from lti_tool.lti.launch import (
    CLAIM,
    COURSE_ID_PARAMETERS,
    DEEP_LINKING,
    STATE_COOKIE_PREFIX,
    USER_ID_PARAMETERS,
    LaunchRequest,
    LaunchValidator,
    NeedsPlatformStorage,
    ValidatedLaunch,
    lms_id,
)
from lti_tool.lti.row_cache import LaunchRowCache, clear_after_commits
from lti_tool.lti.serialize import database_writes
from lti_tool.lti.session_cookie import SessionCookieWriter
from lti_tool.lti.transaction import LaunchTransaction
from lti_tool.row_ids import shortened
from lti_tool.urls_for import lti_launch_url
from lti_tool.views import headers

log = get_logger(__name__)

MAX_LOGIN_PARAMETER = 2048
MAX_STORAGE_TARGET = 128
ENDPOINTS = ("lti.login", "lti.launch")
# Flask's default converter matches one path segment, so `<public_id>` is [^/]+.
_LAUNCH_PATH = re.compile(r"/lti/([^/]+)/(login|launch)\Z")
_REQUEST_ID = "hpass.request_id"


class LaunchEndpoints:
    """The login and launch handling of one app, with its per-process caches."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.bridge = app.extensions["hpass"]
        self.settings = self.bridge.settings
        self.rows = LaunchRowCache()
        self.rows.clear_on_commit(self.bridge.session_factory)
        self.upserts = upserts.RecentUpserts()
        clear_after_commits(
            self.bridge.session_factory, (LtiCourse, Learner), self.upserts.clear
        )
        self.jwks = app.extensions.setdefault(
            "hpass_lti_jwks",
            JwksCache(
                policy=self.bridge.outbound_policy,
                timeout=self.settings.http_timeout_seconds,
            ),
        )
        self.state_signer = nonces.StateSigner(self.settings.secret_key)
        self.identity = CanvasIdentityCheck(self.bridge)
        self._session_cookie: SessionCookieWriter | None = None
        # Launches arrive as cross-site POSTs inside an iframe, so the state cookie
        # must be SameSite=None, which browsers accept only with Secure. Loopback
        # development mode runs on plain HTTP, where Lax works because ports do not
        # make sites differ.
        if self.settings.loopback_dev:
            self.cookie_flags = {"samesite": "Lax", "secure": False}
        else:
            self.cookie_flags = {"samesite": "None", "secure": True}

    def login(
        self, request: Request, public_id: str, *, plain: bool = False
    ) -> Response | PlainRedirect:
        """Handle an OIDC login initiation: sign a state and nonce, send the browser
        to the platform's authorization endpoint, and set the state cookie.

        With `plain`, a redirect is returned as a `PlainRedirect`.
        """
        params = request.values
        # The login writes nothing, so it opens a connection only to read a
        # registration that is not cached.
        registration = self.rows.registration_cached(public_id)
        if registration is None:
            with self.bridge.engine.connect() as connection:
                registration = self.registration_or_404(connection, public_id)
        storage_target = self._check_login(registration, params, public_id)
        row, binding = self.state_signer.issue(
            registration, storage_target=storage_target
        )

        query = {
            "login_hint": params["login_hint"],
            "state": row.state,
            "nonce": row.nonce,
        }
        if params.get("lti_message_hint"):
            query["lti_message_hint"] = params["lti_message_hint"]
        separator = "&" if "?" in registration.auth_login_url else "?"
        auth_url = (
            registration.auth_login_url
            + separator
            + _fixed_login_query(registration.client_id, self._launch_url(registration))
            + "&"
            + urlencode(query)
        )
        max_age = int(nonces.LIFETIME.total_seconds())
        state_cookie = dump_cookie(
            STATE_COOKIE_PREFIX + row.state,
            row.state,
            max_age=max_age,
            expires=_expires_after(max_age),
            path="/lti/",
            httponly=True,
            max_size=Response.max_cookie_size,
            **self.cookie_flags,
        )

        if plain and not storage_target:
            return PlainRedirect(
                auth_url,
                [
                    ("Set-Cookie", state_cookie),
                    ("Cache-Control", "no-store"),
                    *self._redirect_headers(request, registration),
                ],
            )
        if storage_target:
            response = self._in_flask(
                request,
                lambda: render_template(
                    "lti/storage_put.html",
                    auth_url=auth_url,
                    storage_target=storage_target,
                    platform_origin=_origin(registration.auth_login_url),
                    state=row.state,
                    binding=binding,
                ),
            )
        else:
            response = redirect(auth_url)
        response.headers.add("Set-Cookie", state_cookie)
        response.headers["Cache-Control"] = "no-store"
        return self._with_headers(request, response, registration)

    def _check_login(self, registration, params, public_id: str) -> str | None:
        """Check the login initiation's parameters; return its storage target."""
        issuer, client_id = params.get("iss"), params.get("client_id")
        ids = dict(
            registration=public_id,
            issuer=issuer,
            client_id=client_id,
            deployment_id=params.get("lti_deployment_id"),
        )
        if issuer != registration.issuer or (
            client_id and client_id != registration.client_id
        ):
            sent_issuer = f"issuer {issuer!r}" if issuer else "no issuer"
            sent_client_id = f"client_id {client_id!r}" if client_id else "no client_id"
            raise RegistrationUnknown(
                f"this login URL belongs to issuer {registration.issuer!r} and "
                f"client_id {registration.client_id!r}, but the platform sent "
                f"{sent_issuer} and {sent_client_id}",
                check="the platform's tool settings must use the login URL of the "
                "matching registration",
                **ids,
            )
        for name, value in params.items():
            if len(value) > MAX_LOGIN_PARAMETER:
                raise ClaimInvalid(
                    f"login parameter {name!r} is {len(value)} characters long, more "
                    f"than {MAX_LOGIN_PARAMETER}",
                    check="the platform must send standard login initiation parameters",
                    **ids,
                )
        if not params.get("login_hint"):
            raise ClaimInvalid(
                "the login initiation has no login_hint",
                check="the platform must send login_hint with the login initiation",
                **ids,
            )
        target = params.get("target_link_uri")
        base = self.settings.public_base_url
        if target and not is_our_url(target, base):
            raise ClaimInvalid(
                f"the login's target_link_uri {target!r} is not a URL of this tool "
                f"({base})",
                check="the tool placement's target link URI must be this "
                "registration's launch URL",
                **ids,
            )

        storage_target = params.get("lti_storage_target")
        if storage_target and len(storage_target) > MAX_STORAGE_TARGET:
            raise ClaimInvalid(
                f"the login's lti_storage_target is {len(storage_target)} characters "
                f"long, more than {MAX_STORAGE_TARGET}",
                check="the platform must name its storage frame (such as _parent) in "
                "lti_storage_target",
                **ids,
            )
        return storage_target

    def launch(
        self, request: Request, public_id: str, *, plain: bool = False
    ) -> Response | PlainRedirect:
        """Validate a launch, then start the course session or Deep Linking.

        With `plain`, the course page's redirect is returned as a `PlainRedirect`.
        """
        with LaunchTransaction(self.bridge) as db:
            registration = self.registration_or_404(db.connection(), public_id)
            state = request.form.get("state") or ""
            launch_request = LaunchRequest(
                id_token=request.form.get("id_token"),
                state=state,
                state_cookie=request.cookies.get(STATE_COOKIE_PREFIX + state),
                storage_binding=request.form.get("lti_storage_binding"),
                origin=request.headers.get("Origin"),
            )
            validator = LaunchValidator(
                db,
                registration,
                jwks_cache=self.jwks,
                row_cache=self.rows,
                state_signer=self.state_signer,
                tool_base_url=self.settings.public_base_url,
                leeway_seconds=self.settings.lti_clock_leeway_seconds,
            )
            try:
                claims, message_type = validator.verify(launch_request)
            except NeedsPlatformStorage as needs:
                storage_target = needs.storage_target
                return self._in_flask(
                    request,
                    lambda: render_template(
                        "lti/storage_get.html",
                        action=self._launch_url(registration),
                        storage_target=storage_target,
                        id_token=launch_request.id_token,
                        state=state,
                        platform_origin=_origin(registration.auth_login_url),
                    ),
                )

            try:
                with database_writes(self.bridge.engine):
                    pending = self._use_nonce(db, validator, launch_request, claims)
                    if pending is None:
                        accepted = self._accept(
                            db, request, validator, claims, message_type
                        )
                if pending is not None:
                    # The nonce is committed, so a replay never gets here. Canvas
                    # is requested outside the write lock, as the key set is.
                    self.identity.confirm(pending, registration, validator.ids)
                    with database_writes(self.bridge.engine):
                        accepted = self._accept(
                            db, request, validator, claims, message_type
                        )
            except IntegrityError:
                # Another process removed the registration while this one had it
                # cached: read it again, which raises NotFound when it is gone.
                self.rows.clear()
                with self.bridge.engine.connect() as connection:
                    self.registration_or_404(connection, public_id)
                raise
        state_deletion = dump_cookie(
            STATE_COOKIE_PREFIX + state,
            "",
            max_age=0,
            expires=_EPOCH_HTTP_DATE,
            path="/lti/",
            max_size=Response.max_cookie_size,
            **self.cookie_flags,
        )
        if not isinstance(accepted, CourseLaunch):
            accepted.headers.add("Set-Cookie", state_deletion)
            return self._with_headers(request, accepted, registration)

        location, session_cookie = self._start_course_session(request, accepted)
        if plain:
            return PlainRedirect(
                location,
                [
                    ("Set-Cookie", session_cookie),
                    ("Vary", "Cookie"),
                    ("Set-Cookie", state_deletion),
                    *self._redirect_headers(request, registration),
                    ("Cache-Control", "no-store"),
                ],
            )
        response = redirect(location)
        response.headers.add("Set-Cookie", session_cookie)
        response.vary.add("Cookie")
        response.headers.add("Set-Cookie", state_deletion)
        return self._with_headers(request, response, registration)

    def _redirect_headers(
        self, request: Request, registration
    ) -> list[tuple[str, str]]:
        """Return the headers `_with_headers` adds to a redirect, in its order."""
        return headers.lti_redirect_headers(
            registration,
            secure=request.is_secure,
            loopback_dev=self.settings.loopback_dev,
            extra_origins=tuple(headers.request_origin(request.headers.get("Origin"))),
        )

    def _with_headers(self, request: Request, response: Response, registration):
        """Add the security headers Flask's after-request function adds to /lti/ pages.

        A response made inside a Flask request context has them already.
        """
        return headers.apply_lti_headers(
            response,
            registration,
            secure=request.is_secure,
            loopback_dev=self.settings.loopback_dev,
            extra_origins=tuple(headers.request_origin(request.headers.get("Origin"))),
        )

    def _use_nonce(
        self,
        db: LaunchTransaction,
        validator: LaunchValidator,
        launch_request: LaunchRequest,
        claims: dict,
    ) -> PendingCheck | None:
        """Record the launch's nonce as used; return the custom ids Canvas must confirm.

        Without such ids, the nonce stays in the launch's transaction, which
        commits once in `_accept`. With them, the nonce is committed now, alone
        with the purge of expired ones. So a replayed launch is rejected before
        any request to Canvas, and a launch rejected later leaves no other row.
        """
        try:
            validator.use_nonce(launch_request, claims)
            pending = self.identity.pending(
                db.connection(), validator.registration, claims
            )
        except BaseException:
            # Release SQLite's write lock before the error page renders.
            db.rollback()
            raise
        if pending is not None:
            db.commit_and_begin()
        return pending

    def _accept(
        self,
        db: LaunchTransaction,
        request: Request,
        validator: LaunchValidator,
        claims: dict,
        message_type: str,
    ) -> CourseLaunch | Response:
        """Resolve the deployment and record the launch, then commit.

        Returns the course launch, or the Deep Linking picker's redirect. Nothing
        of this transaction stays written when this raises, except a deployment
        held for an admin. The nonce may have been committed already, by
        `_use_nonce`.
        """
        try:
            validated = validator.resolve(claims, message_type)
            if validated.message_type == DEEP_LINKING:
                accepted = self._in_flask(
                    request, lambda: deep_linking.start(validated)
                )
            else:
                accepted, remember = _record_course_launch(db, validated, self.upserts)
        except DeploymentHeld:
            # The held deployment is what the admin approves.
            db.commit()
            raise
        except BaseException:
            # Release SQLite's write lock before the error page renders.
            db.rollback()
            raise

        db.commit()
        if isinstance(accepted, CourseLaunch):
            remember()
        return accepted

    def _start_course_session(
        self, request: Request, launch: CourseLaunch
    ) -> tuple[str, str]:
        """Return the course page's URL and the Set-Cookie header of its new session."""
        validated, data = launch.validated, launch.validated.claims
        registration = validated.registration
        session_cookie = self._session_cookie_header(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            course_id=launch.course_id,
            lms_user_id=launch.lms_user_id,
            learner_id=launch.learner_id,
            # The course pages have a learner, an observer and an instructor view.
            # An admin gets the instructor's view and keeps the admin role for the
            # admin pages.
            role=roles.INSTRUCTOR if roles.is_staff(launch.role) else launch.role,
            lti_role=launch.role,
            name=data.get("name") or data.get("given_name") or "",
            launch_locale=(data.get(CLAIM + "launch_presentation") or {}).get("locale"),
            frame_origins=headers.launch_frame_origins(
                request.headers.get("Origin"),
                (data.get(CLAIM + "launch_presentation") or {}).get("return_url"),
            ),
        )
        structlog.contextvars.bind_contextvars(
            provider_id=registration.provider_id, course_id=launch.course_id
        )
        log.info(
            "lti_launch_accepted",
            role=launch.role,
            lms_user_id=launch.lms_user_id,
            **validated.ids,
        )
        return self._course_url(request, launch.course_id), session_cookie

    def _session_cookie_header(self, **data) -> str:
        """Return the Set-Cookie header that replaces the browser's Flask session.

        The course pages read this session through Flask; an earlier course session
        of the browser ends here. An admin's sign-in is kept in its own cookie (see
        `lti_tool.views.account_session`), which this header leaves alone. The
        response that sets it must vary by Cookie.
        """
        if self._session_cookie is None:
            self._session_cookie = SessionCookieWriter(self.app)
        return self._session_cookie.header(data)

    def _course_url(self, request: Request, course_id: int) -> str:
        adapter = self.app.url_map.bind(
            "", script_name=request.environ.get("SCRIPT_NAME") or "/"
        )
        return adapter.build("pages.course", {"course_id": course_id})

    def registration_or_404(self, connection: Connection, public_id: str):
        """Return the registration's row (read-only, with the model's attribute names)."""
        registration = self.rows.registration(connection, public_id)
        if registration is None:
            raise RegistrationNotFound(
                f"no LTI registration {public_id!r} exists on this bridge; check the "
                "tool URLs configured in the LMS against the provider admin page",
                registration=public_id,
            )
        return registration

    def _launch_url(self, registration) -> str:
        return lti_launch_url(self.settings.public_base_url, registration.public_id)

    def _in_flask(self, request: Request, produce: Callable[[], object]) -> Response:
        """Run `produce` with Flask's request context and request functions.

        Inside a Flask view the context is there already. From the dispatcher, a
        context is pushed on the same WSGI environ and the before- and after-request
        functions run around `produce`, as in Flask's own dispatch.
        """
        app = self.app
        if has_request_context():
            return app.make_response(produce())

        environ = request.environ
        # Flask's before-request function binds this id again instead of a new one.
        environ["HTTP_X_REQUEST_ID"] = environ[_REQUEST_ID]
        with app.request_context(environ):
            result = app.preprocess_request()
            if result is None:
                result = produce()
            return app.process_response(app.make_response(result))

    def error_response(self, request: Request, error: Exception) -> Response:
        """Render `error` with the app's error handlers, as Flask would."""
        return self._in_flask(request, lambda: self.app.handle_user_exception(error))


class RegistrationNotFound(NotFound):
    """The registration id in a login or launch URL names no registration.

    The error may be raised outside a Flask request, in the launch dispatcher, so
    its page text is translated when the page renders. The log keeps the English
    message with the id.
    """

    def __init__(self, message: str, *, registration: str) -> None:
        super().__init__(message, registration=registration)
        self.registration = registration

    def page_text(self) -> tuple[str, str | None]:
        return (
            gettext(
                "This tool link points to the LTI registration %(registration)s, "
                "which does not exist on the bridge. Tell your provider admin, who "
                "must check the tool's URLs in the LMS.",
                registration=isolate_text(shortened(self.registration)),
            ),
            None,
        )


class LaunchDispatcher:
    """WSGI middleware that handles logins and launches, and passes on the rest."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.endpoints = app.extensions["hpass_lti_launch"]
        self._segments: frozenset[str] | None = None
        # Flask's request class reads these limits from the app's config; a plain
        # werkzeug request takes them as class attributes.
        self.request_class = type(
            "LaunchHttpRequest",
            (Request,),
            {
                "max_content_length": app.config["MAX_CONTENT_LENGTH"],
                "max_form_memory_size": app.config["MAX_FORM_MEMORY_SIZE"],
                "max_form_parts": app.config["MAX_FORM_PARTS"],
            },
        )

    def __call__(self, environ, start_response):
        endpoint, public_id = self._match(environ)
        if endpoint is None:
            return self.wsgi_app(environ, start_response)

        request = self.request_class(environ)
        request_id = bind_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ[_REQUEST_ID] = request_id
        try:
            if endpoint == "lti.login":
                response = self.endpoints.login(request, public_id, plain=True)
            else:
                response = self.endpoints.launch(request, public_id, plain=True)
        except Exception as error:
            response = self.endpoints.error_response(request, error)
        if isinstance(response, PlainRedirect):
            return response.send(environ, start_response, request_id)
        response.headers["X-Request-ID"] = request_id
        return _send(response, environ, start_response)

    def _match(self, environ) -> tuple[str | None, str | None]:
        """Return the endpoint and registration id when this request is ours."""
        found = _LAUNCH_PATH.match(environ.get("PATH_INFO", ""))
        if found is None:
            return None, None
        public_id, action = found.groups()
        method = environ.get("REQUEST_METHOD")
        if public_id in self._static_segments():
            return self._match_with_flask(environ)
        if action == "login" and method in ("GET", "POST", "HEAD"):
            return "lti.login", public_id
        if action == "launch" and method == "POST":
            return "lti.launch", public_id
        # Flask handles OPTIONS and returns 405 for other methods.
        return None, None

    def _static_segments(self) -> frozenset[str]:
        """Return the fixed path segments after /lti/, such as `register`.

        A rule such as `/lti/register/<token>` takes precedence over
        `/lti/<public_id>/login` in Flask's routing, so those paths are matched
        against Flask's URL map instead. Read at the first request, when every
        blueprint is registered.
        """
        if self._segments is None:
            segments = set()
            for rule in self.app.url_map.iter_rules():
                if rule.rule.startswith("/lti/"):
                    segment = rule.rule[len("/lti/") :].split("/", 1)[0]
                    if "<" not in segment:
                        segments.add(segment)
            self._segments = frozenset(segments)
        return self._segments

    def _match_with_flask(self, environ) -> tuple[str | None, str | None]:
        if environ.get("REQUEST_METHOD") not in ("GET", "POST", "HEAD"):
            return None, None
        try:
            endpoint, args = self.app.url_map.bind_to_environ(environ).match()
        except (HTTPException, RequestRedirect):
            return None, None
        if endpoint not in ENDPOINTS:
            return None, None
        return endpoint, args["public_id"]


def install(app: Flask) -> None:
    """Put the login and launch dispatcher in front of the app's Flask handling."""
    app.extensions["hpass_lti_launch"] = LaunchEndpoints(app)
    app.wsgi_app = LaunchDispatcher(app, app.wsgi_app)


def current_endpoints(app: Flask) -> LaunchEndpoints:
    return app.extensions["hpass_lti_launch"]


@dataclass(frozen=True)
class PlainRedirect:
    """A 302 redirect of the login or a course launch, sent without werkzeug's Response.

    Werkzeug's Response, header object and `redirect` cost more than the rest of a
    login. `send` writes the status, body and headers that `redirect` gives:
    Content-Type, Content-Length and Location, then `headers` in order.
    """

    location: str
    headers: list[tuple[str, str]]

    def send(self, environ, start_response, request_id: str) -> list[bytes]:
        # The body and the Location header are those of werkzeug 3.1's `redirect`
        # and `get_wsgi_headers` (without `autocorrect_location_header`).
        html_location = escape(self.location)
        body = (
            "<!doctype html>\n"
            "<html lang=en>\n"
            "<title>Redirecting...</title>\n"
            "<h1>Redirecting...</h1>\n"
            "<p>You should be redirected automatically to the target URL: "
            f'<a href="{html_location}">{html_location}</a>. If not, click the link.\n'
        ).encode()
        start_response(
            "302 FOUND",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Location", iri_to_uri(self.location)),
                *self.headers,
                ("X-Request-ID", request_id),
            ],
        )
        # As werkzeug does, a HEAD request gets the headers of GET and no body.
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


@dataclass(frozen=True)
class CourseLaunch:
    """A resource link launch recorded in the database."""

    validated: ValidatedLaunch
    course_id: int
    learner_id: int | None
    lms_user_id: str
    role: str


def _record_course_launch(
    db: LaunchTransaction, validated: ValidatedLaunch, recent: upserts.RecentUpserts
) -> tuple[CourseLaunch, Callable[[], None]]:
    """Upsert the launch's course and, for a learner, the learner; the caller commits.

    An upsert that `recent` shows wrote the same values lately is skipped. Returns
    the launch and a function that records this launch's writes in `recent`, for
    the caller to run after its commit.
    """
    registration, data = validated.registration, validated.claims
    # The validator has checked that the context claim has an id.
    context = data[CLAIM + "context"]
    lms_course_id, _ = lms_id(data, COURSE_ID_PARAMETERS, "context.id")
    lms_user_id, _ = lms_id(data, USER_ID_PARAMETERS, "sub")
    remembered: list[Callable[[], None]] = []

    connection = db.connection()
    endpoint = ags.endpoint_or_none(data, validated.ids)
    course_key = (registration.id, context["id"])
    course_values = (
        registration.provider_id,
        context.get("title") or None,
        lms_course_id,
        endpoint,
    )
    course_id = recent.course_id(course_key, course_values)
    if course_id is None:
        # A course id from a custom parameter could name another context's course.
        # Without one, the context id is the course id, and contexts are unique.
        other_context = None
        if lms_course_id != context["id"]:
            other_context = upserts.other_context_of(
                connection,
                registration_id=registration.id,
                context_id=context["id"],
                lms_course_id=lms_course_id,
            )
        if other_context is not None:
            raise ClaimInvalid(
                f"LMS course {lms_course_id[:64]!r} belongs to another course of this "
                f"LMS (context {other_context[:64]!r}), so this launch would act in "
                "a course that is not its own",
                check="the tool placement's custom parameter lms_course_id must be "
                "set by the LMS admin at the tool level ($Context.id in Moodle, "
                "$Canvas.course.id in Canvas), where a teacher cannot change it",
                page_detail=functools.partial(
                    identity_text.course_of_other_context,
                    lms_course_id,
                    other_context,
                ),
                **validated.ids,
                lms_course_id=lms_course_id,
            )
        course_id = upserts.course(
            connection,
            provider_id=registration.provider_id,
            registration_id=registration.id,
            context_id=context["id"],
            title=context.get("title") or None,
            lms_course_id=lms_course_id,
            ags=endpoint,
        )
        remembered.append(
            lambda: recent.remember_course(course_key, course_values, course_id)
        )

    role = roles.map_roles(data.get(CLAIM + "roles") or [])
    learner_id = None
    if role == roles.LEARNER and registration.lms_connection_id is not None:
        learner_key = (
            registration.provider_id,
            registration.lms_connection_id,
            lms_user_id,
        )
        learner_values = (
            data.get("name") or None,
            data.get("email") or None,
            data["sub"],
        )
        found = recent.learner(learner_key, learner_values)
        if found is None:
            learner_id, stored_email, stored_sub = upserts.learner(
                connection,
                provider_id=registration.provider_id,
                lms_connection_id=registration.lms_connection_id,
                lms_user_id=lms_user_id,
                name=data.get("name") or None,
                email=data.get("email") or None,
                lti_sub=data["sub"],
            )
            if stored_sub is not None and stored_sub != data["sub"]:
                raise ClaimInvalid(
                    f"LMS user {lms_user_id[:64]!r} first launched the tool as another "
                    "LTI user (sub), so this launch would act as someone else",
                    check="the tool placement's custom parameter lms_user_id must be "
                    "set by the LMS admin at the tool level ($User.id in Moodle, "
                    "$Canvas.user.id in Canvas), where a teacher cannot change it",
                    page_detail=functools.partial(
                        identity_text.learner_of_other_sub, lms_user_id
                    ),
                    **validated.ids,
                    lms_user_id=lms_user_id,
                )
        else:
            learner_id, stored_email = found
        if data.get("email") and data["email"] != stored_email:
            # The email change commits through the ORM, which clears `recent`.
            _change_learner_email(db.orm, learner_id, data["email"])
        elif found is None:
            remembered.append(
                lambda: recent.remember_learner(
                    learner_key, learner_values, learner_id, stored_email
                )
            )

    def remember() -> None:
        for step in remembered:
            step()

    return CourseLaunch(validated, course_id, learner_id, lms_user_id, role), remember


def _change_learner_email(db: Session, learner_id: int, email: str) -> None:
    """Make the launch's email current; the old address stays, so its badges match."""
    learner = db.get(Learner, learner_id, populate_existing=True)
    try:
        change_email(db, learner, email)
    except IdentityConflict as error:
        log.warning("lti_launch_email_kept", learner_id=learner_id, error=str(error))


@functools.lru_cache(maxsize=1024)
def _fixed_login_query(client_id: str, redirect_uri: str) -> str:
    """Return the authentication request's parameters that are the same for every login.

    The login's other parameters follow them, so the whole query is what
    `urlencode` makes of all of them in this order.
    """
    return urlencode(
        {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
        }
    )


# The Expires date of a deleted cookie, as `dump_cookie` writes `expires=0`.
_EPOCH_HTTP_DATE = http_date(0)
_expiry_text: tuple[int, int, str] = (0, 0, "")


def _expires_after(max_age: int) -> str:
    """Return the Expires date that `dump_cookie` derives from `max_age` seconds.

    Werkzeug formats the current time plus `max_age` to whole seconds, so the text
    changes once a second and is kept until then.
    """
    global _expiry_text
    now = int(time.time())
    second, age, text = _expiry_text
    if second != now or age != max_age:
        text = http_date(now + max_age)
        _expiry_text = (now, max_age, text)
    return text


def is_our_url(url: str, base: str) -> bool:
    ours, theirs = urlsplit(base), urlsplit(url)
    same_origin = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
    return same_origin and theirs.path.startswith(ours.path)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _send(response, environ, start_response) -> list[bytes]:
    """Start `response` and return its whole body as a one-item list.

    Werkzeug returns an iterator, which granian drains with one call into Python per
    item. Every response here is built in memory, so a list costs nothing and lets
    the server write the body at once.
    """
    body_iterator, status, headers = response.get_wsgi_response(environ)
    try:
        body = b"".join(body_iterator)
    finally:
        body_iterator.close()
    start_response(status, headers)
    return [body]
