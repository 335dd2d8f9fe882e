"""LTI 1.3 endpoints per registration: OIDC login, launch, deep linking and JWKS.

Each registration has its own URLs, so the registration is known before the id_token
is read. The validation itself is in `lti_tool.lti.launch`.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import structlog
from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import bindparam, select

from badge_engine.identity import IdentityConflict, change_email
from badge_engine.models import Learner, Provider
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import NotFound
from lti_tool.logs import get_logger
from lti_tool.lti import ags, deep_linking, nonces, roles, tool_keys, upserts
from lti_tool.lti import dynamic_registration as dynamic
from lti_tool.lti.errors import (
    ClaimInvalid,
    DeploymentHeld,
    RegistrationFailed,
    RegistrationUnknown,
)
from lti_tool.lti.jwks import JwksCache
from lti_tool.lti.launch import (
    CLAIM,
    DEEP_LINKING,
    STATE_COOKIE_PREFIX,
    LaunchRequest,
    LaunchValidator,
    NeedsPlatformStorage,
    ValidatedLaunch,
)
from lti_tool.lti.proxy import TrustedProxyMiddleware
from lti_tool.lti.registrations import create_registration
from lti_tool.lti.serialize import database_writes
from lti_tool.models import Registration
from lti_tool.urls_for import launch_url_of, lti_jwks_url, lti_launch_url, lti_login_url

bp = Blueprint("lti", __name__, url_prefix="/lti")


def _nest_admin_pages() -> None:
    from lti_tool.views.lti_admin import bp as admin_bp

    bp.register_blueprint(admin_bp)


_nest_admin_pages()
log = get_logger(__name__)

MAX_LOGIN_PARAMETER = 2048
MAX_STORAGE_TARGET = 128

# Built once: constructing a statement costs more than running it on a launch. The
# launch path runs Core statements on the session's connection: a registration row is
# read-only here, and the ORM's identity map and unit of work cost more than the query.
_REGISTRATION = select(Registration.__table__).where(
    Registration.public_id == bindparam("public_id")
)


@bp.record_once
def _install_proxy_middleware(state) -> None:
    settings = state.app.extensions["hpass"].settings
    if settings.trusted_proxies:
        state.app.wsgi_app = TrustedProxyMiddleware(
            state.app.wsgi_app, settings.trusted_proxies
        )


def _jwks_cache() -> JwksCache:
    cache = current_app.extensions.get("hpass_lti_jwks")
    if cache is None:
        timeout = current_bridge().settings.http_timeout_seconds
        cache = current_app.extensions.setdefault(
            "hpass_lti_jwks", JwksCache(timeout=timeout)
        )
    return cache


def _registration_or_404(public_id: str) -> Registration:
    """Return the registration's row (read-only, with the model's attribute names)."""
    registration = (
        db_session().connection().execute(_REGISTRATION, {"public_id": public_id}).first()
    )
    if registration is None:
        raise NotFound(
            f"no LTI registration {public_id!r} exists on this bridge; check the tool "
            "URLs configured in the LMS against the provider admin page",
            registration=public_id,
        )
    return registration


def _cookie_flags() -> dict:
    # Launches arrive as cross-site POSTs inside an iframe, so the state cookie must
    # be SameSite=None, which browsers accept only with Secure. Loopback development
    # mode runs on plain HTTP, where Lax works because ports do not make sites differ.
    if current_bridge().settings.loopback_dev:
        return {"samesite": "Lax", "secure": False}
    return {"samesite": "None", "secure": True}


@bp.route("/<public_id>/login", methods=["GET", "POST"])
def login(public_id: str):
    registration = _registration_or_404(public_id)
    params = request.values
    issuer, client_id = params.get("iss"), params.get("client_id")
    ids = dict(
        registration=public_id,
        issuer=issuer,
        client_id=client_id,
        deployment_id=params.get("lti_deployment_id"),
    )
    if issuer != registration.issuer or (client_id and client_id != registration.client_id):
        raise RegistrationUnknown(
            f"this login URL belongs to issuer {registration.issuer!r} and client_id "
            f"{registration.client_id!r}, but the platform sent issuer {issuer!r} and "
            f"client_id {client_id!r}",
            check="the platform's tool settings must use the login URL of the "
            "matching registration",
            **ids,
        )
    for name, value in params.items():
        if len(value) > MAX_LOGIN_PARAMETER:
            raise ClaimInvalid(
                f"login parameter {name!r} is {len(value)} characters long, more than "
                f"{MAX_LOGIN_PARAMETER}",
                check="the platform must send standard login initiation parameters",
                **ids,
            )
    login_hint = params.get("login_hint")
    if not login_hint:
        raise ClaimInvalid(
            "the login initiation has no login_hint",
            check="the platform must send login_hint with the login initiation",
            **ids,
        )
    target = params.get("target_link_uri")
    base = current_bridge().settings.public_base_url
    if target and not _is_our_url(target, base):
        raise ClaimInvalid(
            f"the login's target_link_uri {target!r} is not a URL of this tool ({base})",
            check="the tool placement's target link URI must be this registration's "
            "launch URL",
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
    with database_writes(current_bridge().engine):
        row, binding = nonces.issue(
            db_session(), registration, storage_target=storage_target
        )
        db_session().commit()

    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": registration.client_id,
        "redirect_uri": launch_url_of(registration),
        "login_hint": login_hint,
        "state": row.state,
        "nonce": row.nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in registration.auth_login_url else "?"
    auth_url = registration.auth_login_url + separator + urlencode(query)

    if storage_target:
        response = make_response(
            render_template(
                "lti/storage_put.html",
                auth_url=auth_url,
                storage_target=storage_target,
                platform_origin=_origin(registration.auth_login_url),
                state=row.state,
                binding=binding,
            )
        )
    else:
        response = redirect(auth_url)
    response.set_cookie(
        STATE_COOKIE_PREFIX + row.state,
        row.state,
        max_age=int(nonces.LIFETIME.total_seconds()),
        path="/lti/",
        httponly=True,
        **_cookie_flags(),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<public_id>/launch")
def launch(public_id: str):
    registration = _registration_or_404(public_id)
    settings = current_bridge().settings
    state = request.form.get("state") or ""
    launch_request = LaunchRequest(
        id_token=request.form.get("id_token"),
        state=state,
        state_cookie=request.cookies.get(STATE_COOKIE_PREFIX + state),
        storage_binding=request.form.get("lti_storage_binding"),
        origin=request.headers.get("Origin"),
    )
    validator = LaunchValidator(
        db_session(),
        registration,
        jwks_cache=_jwks_cache(),
        tool_base_url=settings.public_base_url,
        leeway_seconds=settings.lti_clock_leeway_seconds,
        loopback_dev=settings.loopback_dev,
    )
    try:
        claims, message_type = validator.verify(launch_request)
    except NeedsPlatformStorage as needs:
        return render_template(
            "lti/storage_get.html",
            action=launch_url_of(registration),
            storage_target=needs.storage_target,
            id_token=launch_request.id_token,
            state=state,
            platform_origin=_origin(registration.auth_login_url),
        )

    with database_writes(current_bridge().engine):
        return _accept(validator, launch_request, claims, message_type)


def _accept(validator, launch_request: LaunchRequest, claims: dict, message_type: str):
    try:
        validated = validator.accept(launch_request, claims, message_type)
    except DeploymentHeld:
        # The held deployment is what the admin approves, and the nonce stays used.
        db_session().commit()
        raise
    except Exception:
        # Release SQLite's write lock before the error page renders.
        db_session().rollback()
        raise

    if validated.message_type == DEEP_LINKING:
        response = deep_linking.start(validated)
    else:
        response = _start_course_session(validated)
    response.delete_cookie(
        STATE_COOKIE_PREFIX + launch_request.state, path="/lti/", **_cookie_flags()
    )
    return response


def _start_course_session(validated: ValidatedLaunch):
    db = db_session()
    registration, data = validated.registration, validated.claims
    # The validator has checked that the context claim has an id.
    context = data[CLAIM + "context"]
    custom = data.get(CLAIM + "custom")
    custom = custom if isinstance(custom, dict) else {}
    lms_course_id = str(
        custom.get("lms_course_id") or custom.get("moodle_course_id")
        or custom.get("canvas_course_id") or context["id"]
    )
    lms_user_id = str(
        custom.get("lms_user_id") or custom.get("canvas_user_id") or data["sub"]
    )

    connection = db.connection()
    course_id = upserts.course(
        connection,
        provider_id=registration.provider_id,
        registration_id=registration.id,
        context_id=context["id"],
        title=context.get("title") or None,
        lms_course_id=lms_course_id,
        ags=ags.endpoint_or_none(data, validated.ids),
    )

    role = roles.map_roles(data.get(CLAIM + "roles") or [])
    learner_id = None
    if role == roles.LEARNER and registration.lms_connection_id is not None:
        learner_id, stored_email = upserts.learner(
            connection,
            provider_id=registration.provider_id,
            lms_connection_id=registration.lms_connection_id,
            lms_user_id=lms_user_id,
            name=data.get("name") or None,
            email=data.get("email") or None,
            lti_sub=data["sub"],
        )
        if data.get("email") and data["email"] != stored_email:
            _change_learner_email(db, learner_id, data["email"])
    db.commit()

    session.clear()
    session.update(
        provider_id=registration.provider_id,
        registration_id=registration.id,
        course_id=course_id,
        lms_user_id=lms_user_id,
        learner_id=learner_id,
        # The course pages know learners and instructors; an admin sees the
        # instructor's page and keeps the admin role for admin pages.
        role="learner" if role == roles.LEARNER else "instructor",
        lti_role=role,
        name=data.get("name") or data.get("given_name") or "",
        launch_locale=(data.get(CLAIM + "launch_presentation") or {}).get("locale"),
    )
    structlog.contextvars.bind_contextvars(
        provider_id=registration.provider_id, course_id=course_id
    )
    log.info("lti_launch_accepted", role=role, lms_user_id=lms_user_id, **validated.ids)
    return redirect(url_for("pages.course", course_id=course_id))


def _change_learner_email(db, learner_id: int, email: str) -> None:
    """Make the launch's email current; the old address stays, so its badges match."""
    learner = db.get(Learner, learner_id, populate_existing=True)
    try:
        change_email(db, learner, email)
    except IdentityConflict as error:
        log.warning("lti_launch_email_kept", learner_id=learner_id, error=str(error))


@bp.get("/<public_id>/jwks")
def jwks(public_id: str):
    registration = _registration_or_404(public_id)
    response = jsonify(tool_keys.jwks_of(registration))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.route("/<public_id>/deep-link", methods=["GET", "POST"])
def deep_link(public_id: str):
    registration = _registration_or_404(public_id)
    if request.method == "POST":
        return deep_linking.respond(registration)
    return deep_linking.picker(registration)


def _is_our_url(url: str, base: str) -> bool:
    ours, theirs = urlsplit(base), urlsplit(url)
    same_origin = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
    return same_origin and theirs.path.startswith(ours.path)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/register/<token>")
def dynamic_registration(token: str):
    """Run LTI Dynamic Registration for the provider signed into `token`."""
    bridge = current_bridge()
    settings = bridge.settings
    provider_id = dynamic.provider_of(settings.secret_key, token)
    db = db_session()
    provider = db.get(Provider, provider_id)
    if provider is None:
        raise NotFound(
            "the provider of this registration URL no longer exists; ask HPass for a "
            "new registration URL",
            provider_id=provider_id,
        )

    configuration_url = request.args.get("openid_configuration")
    if not configuration_url:
        raise RegistrationFailed(
            "the request has no openid_configuration parameter",
            check="paste this URL into the platform's tool registration field "
            "(Moodle: Site administration > Plugins > Manage tools; Canvas: "
            "Developer Keys > LTI Registration); opening it directly does nothing",
            provider_id=provider_id,
        )
    exchange = dynamic.DynamicRegistration(
        loopback_dev=settings.loopback_dev, timeout=settings.http_timeout_seconds
    )
    platform = exchange.fetch_configuration(
        configuration_url, request.args.get("registration_token")
    )
    public_id = dynamic.new_public_id()
    base = settings.public_base_url
    configuration = exchange.tool_configuration(
        platform,
        base_url=base,
        login_url=lti_login_url(base, public_id),
        launch_url=lti_launch_url(base, public_id),
        jwks_url=lti_jwks_url(base, public_id),
    )
    client = exchange.register(
        platform, request.args.get("registration_token"), configuration
    )
    ids = dict(issuer=platform.issuer, client_id=client.client_id, provider_id=provider_id)

    existing = db.scalar(
        select(Registration.id).where(
            Registration.issuer == platform.issuer,
            Registration.client_id == client.client_id,
        )
    )
    if existing is not None:
        raise RegistrationFailed(
            f"issuer {platform.issuer!r} with client_id {client.client_id!r} is already "
            "registered on this bridge",
            check="remove the old registration first, or use the one already there",
            **ids,
        )
    registration = create_registration(
        db,
        bridge.vault,
        provider,
        issuer=platform.issuer,
        client_id=client.client_id,
        auth_login_url=platform.authorization_endpoint,
        auth_token_url=platform.token_endpoint,
        key_set_url=platform.jwks_uri,
        deployment_ids=(client.deployment_id,) if client.deployment_id else (),
    )
    registration.public_id = public_id
    registration.platform_family = platform.family
    db.commit()
    log.info("lti_dynamic_registration_done", family=platform.family, **ids)

    return render_template(
        "lti/registered.html",
        platform=platform,
        client=client,
        provider=provider,
    )
