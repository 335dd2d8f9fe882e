"""A demo LTI 1.3 platform that launches the bridge as one of two demo users.

It plays the LMS side of a resource link launch: third-party login initiation at the
tool, the OpenID Connect authentication endpoint (`/auth`) and the platform's key set
(`/jwks`). The package `lti1p3platform` builds the launch, through the adapter in
`lti1p3platform_flask`. This module adds the demo course, people and resource link,
and the hints that tie a login initiation to its authentication request.

Start it with `PlatformPeer().start()`, register the tool with `register_tool(...)`,
then open `/launch/learner` in a browser or call `launch_with_session(...)`.

`/launch/<user>?message=deep_linking` sends an LtiDeepLinkingRequest instead. The
tool's signed response comes back to `/deep-link/return`, which verifies it with the
tool's key set and stores its claims in `deep_link_returns`. `/frame/<user>` shows the
tool in an iframe and answers LTI Platform Storage messages (`lti.put_data`,
`lti.get_data`), as a platform does for browsers that block the tool's cookies.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, urlencode, urljoin, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, render_template_string, request, url_for

from lti_tool.demo.peers.ags_service import AgsService
from lti_tool.demo.peers.page_policy import add_page_policy, allow_frame_target
from lti_tool.demo.peers.lti1p3platform_flask import (
    AuthRequestError,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskPlatformRequest,
    PlatformConfig,
    PlatformRegistration,
)
from lti_tool.demo.peers.serving import (
    RunningServer,
    peer_app,
    require_loopback_url,
    serve_in_thread,
)

logger = logging.getLogger(__name__)

# LIS role vocabulary as LTI 1.3 uses it in the roles claim.
ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_STUDENT = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"
ROLE_FACULTY = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"
CONTEXT_TYPE_COURSE_OFFERING = (
    "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
)
TOOL_PLATFORM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"

DEFAULT_CLIENT_ID = "hpass-bridge-demo"
DEFAULT_DEPLOYMENT_ID = "1"

# Claim sets the platform can send: its own, or shaped like Moodle's or Canvas's.
CLAIM_SETS = ("demo", "moodle", "canvas")
# Canvas signs every customer's launches with this one issuer.
CANVAS_ISSUER = "https://canvas.instructure.com"
ROLE_CANVAS_SYSTEM_USER = "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"
ROLE_INSTITUTION_INSTRUCTOR = (
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
)
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"

# Custom claim key carrying the Moodle course id. Moodle sends custom parameters
# as strings, so the value is the decimal course id.
MOODLE_COURSE_ID_CUSTOM_KEY = "moodle_course_id"


@dataclass(frozen=True)
class DemoUser:
    """A person the demo platform can launch as."""

    key: str
    user_id: str
    given_name: str
    family_name: str
    email: str
    roles: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class DemoCourse:
    """The LTI context of the demo launches: one Moodle course."""

    context_id: str
    label: str
    title: str
    moodle_course_id: int


@dataclass(frozen=True)
class DemoResourceLink:
    """The placement of the tool inside the demo course."""

    resource_link_id: str
    title: str
    description: str


# The Moodle stand-in uses the same ids: user 3001 is the learner, user 2 the
# instructor, and the Moodle course id is 101.
DEMO_LEARNER = DemoUser(
    key="learner",
    user_id="3001",
    given_name="Learner",
    family_name="One",
    email="learner1@example.invalid",
    roles=(ROLE_LEARNER, ROLE_STUDENT),
)
DEMO_INSTRUCTOR = DemoUser(
    key="instructor",
    user_id="2",
    given_name="Ines",
    family_name="Instructor",
    email="instructor@example.invalid",
    roles=(ROLE_INSTRUCTOR, ROLE_FACULTY),
)
DEMO_COURSE = DemoCourse(
    context_id="101",
    label="HUM101",
    title="Introduction to Humanitarian Action",
    moodle_course_id=101,
)
DEMO_RESOURCE_LINK = DemoResourceLink(
    resource_link_id="rl-101-badges",
    title="Course badges",
    description="Badges you can earn in this course and where they went",
)


@dataclass(frozen=True)
class ToolRegistration:
    """Registration data the platform stores for the tool.

    `redirect_uris` defaults to the launch URL alone. `jwks_url` is the tool's
    public key set, which a platform needs to verify Deep Linking responses.
    """

    login_url: str
    launch_url: str
    redirect_uris: tuple[str, ...] = ()
    jwks_url: str | None = None

    def registered_redirect_uris(self) -> tuple[str, ...]:
        return self.redirect_uris or (self.launch_url,)


@dataclass(frozen=True)
class _PendingLaunch:
    user: DemoUser
    issued_at: float
    deep_linking: bool = False


class LaunchFlowError(RuntimeError):
    """A step of `PlatformPeer.launch_with_session` got an unexpected response."""


class PlatformPeer:
    """A demo LTI 1.3 platform with a learner, an instructor and one course.

    The RSA signing key is generated in memory at construction and never written
    anywhere. `issuer` is the platform's own base URL; `start()` sets it to the
    server's URL when it was not given.
    """

    def __init__(
        self,
        issuer: str | None = None,
        tool: ToolRegistration | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        deployment_id: str = DEFAULT_DEPLOYMENT_ID,
        users: Sequence[DemoUser] = (DEMO_LEARNER, DEMO_INSTRUCTOR),
        course: DemoCourse = DEMO_COURSE,
        resource_link: DemoResourceLink = DEMO_RESOURCE_LINK,
        hint_lifetime_seconds: float = 300.0,
        claim_set: str = "demo",
        ags: AgsService | None = None,
    ) -> None:
        if claim_set not in CLAIM_SETS:
            raise ValueError(
                f"claim_set must be one of {CLAIM_SETS}, got {claim_set!r}"
            )
        self.claim_set = claim_set
        # Assignment and Grade Services; resource link launches then carry its claim.
        self.ags = ags
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.users = {user.key: user for user in users}
        self.course = course
        self.resource_link = resource_link
        self.hint_lifetime_seconds = hint_lifetime_seconds

        self._registration = PlatformRegistration(
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        self._registration.set_client_id(client_id)
        self._registration.set_deployment_id(deployment_id)
        self._config = PlatformConfig(registration=self._registration)

        self._lock = threading.Lock()
        self._pending: dict[str, _PendingLaunch] = {}
        self._issuer: str | None = None
        self._tool: ToolRegistration | None = None
        # Verified claims of each Deep Linking response, oldest first.
        self.deep_link_returns: list[dict[str, t.Any]] = []
        self._deep_link_data: set[str] = set()

        if issuer is not None:
            self.issuer = issuer
        if tool is not None:
            self.register_tool(tool)

    @property
    def issuer(self) -> str | None:
        return self._issuer

    @issuer.setter
    def issuer(self, value: str) -> None:
        issuer = require_loopback_url(value, "issuer").rstrip("/")
        self._issuer = issuer
        # The Canvas claim set signs as Canvas's shared issuer; the platform's own
        # endpoints stay on this machine.
        self._registration.set_iss(
            CANVAS_ISSUER if self.claim_set == "canvas" else issuer
        )

    @property
    def token_issuer(self) -> str | None:
        """The `iss` of the id_tokens this platform signs."""
        if self._issuer is None:
            return None
        return CANVAS_ISSUER if self.claim_set == "canvas" else self._issuer

    @property
    def tool(self) -> ToolRegistration | None:
        return self._tool

    def register_tool(self, tool: ToolRegistration) -> None:
        """Register (or replace) the one tool this platform launches."""
        require_loopback_url(tool.login_url, "tool login_url")
        require_loopback_url(tool.launch_url, "tool launch_url")
        for uri in tool.registered_redirect_uris():
            require_loopback_url(uri, "tool redirect URI")

        self._tool = tool
        self._registration.set_oidc_login_url(tool.login_url)
        self._registration.set_launch_url(tool.launch_url)
        self._registration.set_deeplink_launch_url(tool.launch_url)
        self._registration.set_redirect_uris(tool.registered_redirect_uris())
        if tool.jwks_url is not None:
            require_loopback_url(tool.jwks_url, "tool jwks_url")
            self._registration.set_tool_key_set_url(tool.jwks_url)

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        """Return the platform's public key set, as served at `/jwks`."""
        return {"keys": self._registration.get_jwks()}

    def find_user(self, reference: str) -> DemoUser | None:
        """Find a demo user by key ("learner") or by LMS user id ("3001")."""
        if reference in self.users:
            return self.users[reference]

        for user in self.users.values():
            if user.user_id == reference:
                return user

        return None

    def create_app(self) -> Flask:
        """Build the platform's Flask app; it reads this peer's state per request."""
        app = peer_app(__name__, "platform")
        app.add_url_rule("/", "index", self._index_view)
        app.add_url_rule("/jwks", "jwks", self._jwks_view)
        app.add_url_rule("/launch/<user_ref>", "launch", self._launch_view)
        app.add_url_rule("/auth", "auth", self._auth_view, methods=["GET", "POST"])
        app.add_url_rule("/frame/<user_ref>", "frame", self._frame_view)
        app.add_url_rule(
            "/deep-link/return",
            "deep_link_return",
            self._deep_link_return_view,
            methods=["POST"],
        )
        if self.ags is not None:
            self.ags.register_routes(app)
        add_page_policy(app)

        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve the platform in a background thread; sets `issuer` if unset."""
        server = serve_in_thread(self.create_app(), host=host, port=port)
        if self._issuer is None:
            self.issuer = server.url
        if self.ags is not None:
            self.ags.base_url = self._issuer

        return server

    def launch_with_session(
        self,
        session: requests.Session,
        user: str | DemoUser,
        *,
        timeout: float = 10.0,
    ) -> requests.Response:
        """Run a whole launch over HTTP and return the tool's final response.

        The steps are the browser's: `/launch/<user>` redirects to the tool's login
        initiation, which redirects to `/auth`, which returns a form that is posted
        to the tool's redirect URI. Cookies the tool sets stay in `session`.
        Raises LookupError for an unknown user, LaunchFlowError when a step before
        the final post fails, and ValueError when a redirect leaves this machine.
        """
        demo_user = user if isinstance(user, DemoUser) else self.find_user(user)
        if demo_user is None:
            raise LookupError(
                f"unknown demo user {user!r}; use one of {list(self.users)}"
            )
        if self._issuer is None:
            raise LaunchFlowError("the platform has no issuer yet; call start() first")

        hooks = {"response": _reject_offhost_redirect}
        start_url = f"{self._issuer}/launch/{quote(demo_user.key)}"
        auth_page = session.get(start_url, timeout=timeout, hooks=hooks)

        auth_url = f"{self._issuer}/auth"
        if not auth_page.url.startswith(auth_url) or auth_page.status_code != 200:
            raise LaunchFlowError(
                f"expected the launch form from {auth_url}, got HTTP "
                f"{auth_page.status_code} from {auth_page.url}: "
                f"{auth_page.text[:500]}"
            )

        form = _LaunchFormParser.parse(auth_page.text)
        if not form.action or "id_token" not in form.fields:
            raise LaunchFlowError(
                f"the page from {auth_page.url} has no launch form with an id_token"
            )

        action = urljoin(auth_page.url, form.action)
        require_loopback_url(action, "launch form action")

        return session.post(action, data=form.fields, timeout=timeout, hooks=hooks)

    def _issue_message_hint(self, user: DemoUser, *, deep_linking: bool = False) -> str:
        hint = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            expired = [
                key
                for key, pending in self._pending.items()
                if now - pending.issued_at > self.hint_lifetime_seconds
            ]
            for key in expired:
                del self._pending[key]
            self._pending[hint] = _PendingLaunch(
                user=user, issued_at=now, deep_linking=deep_linking
            )

        return hint

    def _consume_message_hint(
        self, lti_message_hint: str, login_hint: str
    ) -> _PendingLaunch:
        """Return the launch a hint was issued for and forget the hint.

        A hint is used once: a replayed authentication request is rejected.
        """
        with self._lock:
            pending = self._pending.get(lti_message_hint)
            fresh = (
                pending is not None
                and time.monotonic() - pending.issued_at <= self.hint_lifetime_seconds
            )
            if pending is not None and fresh and pending.user.user_id == login_hint:
                del self._pending[lti_message_hint]

                return pending

        if pending is None or not fresh:
            raise AuthRequestError(
                "login_required",
                "lti_message_hint is unknown, expired or already used; start a new "
                "launch from the platform at /launch/<user>",
            )

        raise AuthRequestError(
            "login_required",
            f"login_hint {login_hint!r} does not match the user this launch was "
            "started for; send the login_hint from the login initiation unchanged",
        )

    def _index_view(self) -> str:
        return render_template_string(
            INDEX_TEMPLATE,
            peer=self,
            jwks_url=f"{self._issuer}/jwks",
            auth_url=f"{self._issuer}/auth",
        )

    def _jwks_view(self):
        return jsonify(self.jwks())

    def _launch_view(self, user_ref: str):
        user = self.find_user(user_ref)
        if user is None:
            message = f"unknown demo user {user_ref!r}; use one of {list(self.users)}"
            logger.warning("launch rejected: %s", message)
            return _error_response(404, "not_found", message)
        if self._tool is None or self._issuer is None:
            message = (
                "the platform has no registered tool or no issuer yet; call "
                "register_tool() and start() before launching"
            )
            logger.warning("launch rejected: %s", message)
            return _error_response(409, "not_configured", message)

        message = request.args.get("message", "resource_link")
        if message not in ("resource_link", "deep_linking"):
            return _error_response(
                400,
                "invalid_request",
                f"message must be resource_link or deep_linking, got {message!r}",
            )
        login = FlaskOIDCLogin(FlaskPlatformRequest(), self._config)
        login.set_lti_message_hint(
            lti_message_hint=self._issue_message_hint(
                user, deep_linking=message == "deep_linking"
            )
        )
        logger.info("%s launch started for demo user %s", message, user.user_id)

        response = login.initiate_login(user.user_id)
        storage_target = request.args.get("storage_target")
        if storage_target:
            # LTI Platform Storage: tell the tool which frame keeps its data.
            response.headers["Location"] += "&" + urlencode(
                {"lti_storage_target": storage_target}
            )
        return response

    def _frame_view(self, user_ref: str):
        if self.find_user(user_ref) is None or self._tool is None:
            return _error_response(
                404, "not_found", "unknown demo user, or no tool registered yet"
            )
        message = request.args.get("message", "resource_link")
        src = (
            url_for("launch", user_ref=user_ref)
            + "?"
            + urlencode({"message": message, "storage_target": "_parent"})
        )
        # The frame's launch redirects through the tool's login URL.
        allow_frame_target(self._tool.login_url)
        return render_template_string(
            FRAME_TEMPLATE, src=src, tool_origin=_origin_of(self._tool.login_url)
        )

    def _deep_link_return_view(self):
        """Verify a Deep Linking response like a platform does, then keep its claims."""
        token = request.form.get("JWT")
        if not token or self._tool is None or not self._tool.jwks_url:
            return _error_response(
                400,
                "invalid_request",
                "post the response as form field JWT; the tool needs a jwks_url",
            )
        try:
            jwks = requests.get(self._tool.jwks_url, timeout=10).json()
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(jwt.PyJWK(jwk) for jwk in jwks["keys"] if jwk.get("kid") == kid)
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                audience=self.token_issuer,
                issuer=self.client_id,
                options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
            )
        except (
            StopIteration,
            ValueError,
            KeyError,
            requests.RequestException,
            jwt.PyJWTError,
        ) as error:
            logger.warning("deep linking response rejected: %s", error)
            return _error_response(400, "invalid_request", f"bad response JWT: {error}")

        message_type = claims.get(CLAIM + "message_type")
        deployment_id = claims.get(CLAIM + "deployment_id")
        data = claims.get(DL_CLAIM + "data")
        with self._lock:
            known_data = data in self._deep_link_data
        if (
            message_type != "LtiDeepLinkingResponse"
            or deployment_id != self.deployment_id
            or not known_data
        ):
            return _error_response(
                400,
                "invalid_request",
                f"message_type {message_type!r}, deployment_id {deployment_id!r} or "
                "data does not match the request",
            )
        with self._lock:
            self.deep_link_returns.append(claims)
        items = claims.get(DL_CLAIM + "content_items") or []
        return f"<p id='added'>Added {len(items)} item(s).</p>"

    def _auth_view(self):
        if self._tool is None:
            message = "the platform has no registered tool; call register_tool() first"
            logger.warning("authentication request rejected: %s", message)
            return _error_response(409, "not_configured", message)

        launch = _DemoMessageLaunch(FlaskPlatformRequest(), self._config, peer=self)
        try:
            return launch.lti_launch()
        except AuthRequestError as error:
            logger.warning("authentication request rejected: %s", error)
            return _error_response(400, error.error, str(error))


class _DemoMessageLaunch(FlaskMessageLaunch):
    """Fills the launch with the demo user, course and resource link."""

    def __init__(self, request: FlaskPlatformRequest, config, *, peer: PlatformPeer):
        super().__init__(request, config)
        self._peer = peer

    def prepare_launch(self, preflight_response: dict[str, t.Any]) -> None:
        peer = self._peer
        pending = peer._consume_message_hint(
            preflight_response.get("lti_message_hint", ""),
            preflight_response["login_hint"],
        )
        user = pending.user

        self.set_user_data(
            user.user_id,
            list(user.roles),
            full_name=user.name,
            email_address=user.email,
        )
        self.set_launch_context_claim(
            peer.course.context_id,
            context_types=[CONTEXT_TYPE_COURSE_OFFERING],
            context_title=peer.course.title,
            context_label=peer.course.label,
        )
        if pending.deep_linking:
            data = secrets.token_urlsafe(16)
            with peer._lock:
                peer._deep_link_data.add(data)
            self.set_dl(
                f"{peer.issuer}/deep-link/return",
                title="Add a badge",
                accept_types={"ltiResourceLink"},
                extra_data=data,
            )
        else:
            self.set_resource_link_claim(
                peer.resource_link.resource_link_id,
                description=peer.resource_link.description,
                title=peer.resource_link.title,
            )
            if peer.ags is not None:
                self.set_ags(
                    peer.ags.lineitems_url(peer.course.context_id),
                    allow_creating_lineitems=False,
                )
        self.set_custom_parameters_claim(
            {MOODLE_COURSE_ID_CUSTOM_KEY: str(peer.course.moodle_course_id)}
        )
        self.set_launch_presentation_claim(
            document_target="iframe", return_url=f"{peer.issuer}/"
        )

        # lti1p3platform 0.1.8 has no setters for these claims.
        self.set_extra_claims(
            {
                "given_name": user.given_name,
                "family_name": user.family_name,
                TOOL_PLATFORM_CLAIM: {
                    "guid": peer.issuer,
                    "name": "HPass demo platform",
                    "product_family_code": "hpass-demo-platform",
                },
            }
        )
        if peer.claim_set == "moodle":
            self.set_extra_claims(_moodle_claims(peer, user))
        elif peer.claim_set == "canvas":
            self.set_extra_claims(_canvas_claims(peer, user))
        logger.info(
            "id_token issued for demo user %s in context %s",
            user.user_id,
            peer.course.context_id,
        )


def _moodle_claims(peer: PlatformPeer, user: DemoUser) -> dict[str, t.Any]:
    """Return the claims that differ in a launch from Moodle 4.x.

    Moodle names its platform family "moodle", uses the short context type name
    "CourseSection", sends custom parameters as strings and adds its `lis` claim.
    """
    return {
        TOOL_PLATFORM_CLAIM: {
            "guid": "moodle.example.invalid",
            "name": "Humanitarian Academy Moodle",
            "product_family_code": "moodle",
            "version": "2024042200",
        },
        CLAIM + "context": {
            "id": peer.course.context_id,
            "label": peer.course.label,
            "title": peer.course.title,
            "type": ["CourseSection"],
        },
        CLAIM + "lis": {
            "person_sourcedid": "",
            "course_section_sourcedid": "",
        },
        CLAIM + "custom": {
            MOODLE_COURSE_ID_CUSTOM_KEY: str(peer.course.moodle_course_id),
            "lms_user_id": user.user_id,
        },
        CLAIM + "ext": {"user_username": user.key, "lms": "moodle-2"},
    }


def _canvas_claims(peer: PlatformPeer, user: DemoUser) -> dict[str, t.Any]:
    """Return the claims that differ in a launch from Canvas.

    Canvas signs with its shared issuer, adds institution and system roles, fills
    custom parameters from variable substitutions ($Canvas.course.id) and sends its
    own claims under https://canvas.instructure.com and https://www.instructure.com.
    """
    instructor = ROLE_INSTRUCTOR in user.roles
    roles = [
        ROLE_INSTRUCTOR if instructor else ROLE_LEARNER,
        ROLE_INSTITUTION_INSTRUCTOR if instructor else ROLE_STUDENT,
        ROLE_CANVAS_SYSTEM_USER,
    ]
    return {
        TOOL_PLATFORM_CLAIM: {
            "guid": "Xy9rN2qR5sT8vW1zA4bC7dE0fG3hJ6kL:canvas-lms",
            "name": "Humanitarian Academy Canvas",
            "product_family_code": "canvas",
            "version": "cloud",
        },
        CLAIM + "roles": roles,
        CLAIM + "custom": {
            "canvas_course_id": str(peer.course.moodle_course_id),
            "canvas_user_id": user.user_id,
        },
        CLAIM + "lti11_legacy_user_id": f"legacy-{user.user_id}",
        "https://www.instructure.com/placement": "course_navigation",
        "https://canvas.instructure.com/lti/account_id": "1",
    }


def _error_response(status: int, error: str, message: str):
    response = jsonify({"error": error, "error_description": message})
    response.status_code = status

    return response


def _reject_offhost_redirect(response: requests.Response, *args, **kwargs) -> None:
    # A requests response hook runs for every hop, so a redirect to another host
    # is stopped before it is followed.
    if response.is_redirect:
        target = urljoin(response.url, response.headers["Location"])
        require_loopback_url(target, "redirect target")


@dataclass
class _LaunchForm:
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)


class _LaunchFormParser(HTMLParser):
    """Reads the action and hidden inputs of the first form on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.form = _LaunchForm()
        self._in_form = False
        self._seen_form = False

    @classmethod
    def parse(cls, html: str) -> _LaunchForm:
        parser = cls()
        parser.feed(html)
        parser.close()

        return parser.form

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and not self._seen_form:
            self._in_form = self._seen_form = True
            self.form.action = attributes.get("action", "")
        elif tag == "input" and self._in_form and attributes.get("name"):
            self.form.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


INDEX_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Demo LTI platform</title></head>
<body>
<h1>Demo LTI platform</h1>
<p>Course: {{ peer.course.title }} ({{ peer.course.label }},
   context id {{ peer.course.context_id }})</p>
<ul>
{% for user in peer.users.values() %}
  <li><a href="{{ url_for('launch', user_ref=user.key) }}">Launch as {{ user.name }}</a>
      ({{ user.key }}, user id {{ user.user_id }})</li>
{% endfor %}
</ul>
<h2>Registration details for the tool</h2>
<dl>
  <dt>Issuer</dt><dd>{{ peer.issuer }}</dd>
  <dt>Client id</dt><dd>{{ peer.client_id }}</dd>
  <dt>Deployment id</dt><dd>{{ peer.deployment_id }}</dd>
  <dt>Authentication endpoint</dt><dd>{{ auth_url }}</dd>
  <dt>Key set (JWKS) URL</dt><dd>{{ jwks_url }}</dd>
{% if peer.tool %}
  <dt>Tool login initiation URL</dt><dd>{{ peer.tool.login_url }}</dd>
  <dt>Tool launch URL</dt><dd>{{ peer.tool.launch_url }}</dd>
  <dt>Tool redirect URIs</dt>
  <dd>{{ peer.tool.registered_redirect_uris() | join(", ") }}</dd>
{% else %}
  <dt>Tool</dt><dd>not registered yet</dd>
{% endif %}
</dl>
</body>
</html>
"""


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# The platform side of LTI Platform Storage: this window stores and returns values for
# the tool's frame, keyed per tool origin, and replies only to the tool's own origin.
FRAME_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Demo course</title></head>
<body>
<h1>Demo course</h1>
<iframe id="tool" title="Tool" src="{{ src }}" width="900" height="600"></iframe>
<script nonce="{{ csp_nonce() }}">
(function () {
  var toolOrigin = {{ tool_origin|tojson }};
  var store = {};
  window.platformStorageLog = [];
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    var frame = document.getElementById("tool").contentWindow;
    if (event.source !== frame || event.origin !== toolOrigin) { return; }
    window.platformStorageLog.push(data.subject);
    var reply = {message_id: data.message_id, key: data.key};
    if (data.subject === "lti.put_data") {
      store[event.origin + " " + data.key] = data.value;
      reply.subject = "lti.put_data.response";
      reply.value = data.value;
    } else if (data.subject === "lti.get_data") {
      reply.subject = "lti.get_data.response";
      var found = store[event.origin + " " + data.key];
      if (found === undefined) {
        reply.error = {code: "bad_request", message: "no such key"};
      } else {
        reply.value = found;
      }
    } else {
      return;
    }
    event.source.postMessage(reply, event.origin);
  });
})();
</script>
</body>
</html>
"""
