"""LTI 1.3 endpoints per registration: OIDC login, launch, deep linking and JWKS.

Each registration has its own URLs, so the registration is known before the id_token
is read. The validation itself is in `lti_tool.lti.launch`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy.exc import IntegrityError

from badge_engine.models import Provider
from lti_tool.bridge import current_bridge, db_session
from lti_tool.logs import get_logger
from lti_tool.lti import deep_linking, tool_keys
from lti_tool.lti import dynamic_registration as dynamic
from lti_tool.lti.errors import RegistrationFailed
from lti_tool.lti.proxy import TrustedProxyMiddleware
from lti_tool.lti.registration_links import (
    claim_registration_link,
    find_registration_link,
)
from lti_tool.lti.registrations import create_registration, provider_registration
from lti_tool.models import Registration
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url
from lti_tool.views import lti_launch

bp = Blueprint("lti", __name__, url_prefix="/lti")


def _nest_admin_pages() -> None:
    from lti_tool.views.lti_admin import bp as admin_bp

    bp.register_blueprint(admin_bp)


_nest_admin_pages()
log = get_logger(__name__)


@bp.record_once
def _install_proxy_middleware(state) -> None:
    # The proxy middleware goes outside the login and launch dispatcher that
    # create_app installs, so logins and launches see the browser's scheme and host.
    settings = state.app.extensions["hpass"].settings
    if settings.trusted_proxies:
        state.app.wsgi_app = TrustedProxyMiddleware(
            state.app.wsgi_app, settings.trusted_proxies
        )


def _registration_or_404(public_id: str) -> Registration:
    """Return the registration's row (read-only, with the model's attribute names)."""
    endpoints = lti_launch.current_endpoints(current_app)
    return endpoints.registration_or_404(db_session().connection(), public_id)


# `lti_launch.LaunchDispatcher` handles these two URLs ahead of Flask. The rules stay
# here so that Flask's URL map and `url_for` contain them.
@bp.route("/<public_id>/login", methods=["GET", "POST"])
def login(public_id: str):
    return lti_launch.current_endpoints(current_app).login(request, public_id)


@bp.post("/<public_id>/launch")
def launch(public_id: str):
    return lti_launch.current_endpoints(current_app).launch(request, public_id)


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


@bp.get("/register/<token>")
def dynamic_registration(token: str):
    """Run LTI Dynamic Registration with the provider's single-use link `token`."""
    bridge = current_bridge()
    settings = bridge.settings
    db = db_session()
    link = find_registration_link(db, settings.secret_key, token)
    provider_id = link.provider_id
    # The link's foreign key keeps its provider, and removing a provider deletes
    # its links.
    provider = db.get(Provider, provider_id)
    link_ids = dict(provider_id=provider_id, registration_link_id=link.id)

    configuration_url = request.args.get("openid_configuration")
    if not configuration_url:
        raise RegistrationFailed(
            "the request has no openid_configuration parameter",
            check="paste this URL into the platform's tool registration field "
            "(Moodle: Site administration > Plugins > Manage tools; Canvas: "
            "Developer Keys > LTI Registration); opening it directly does nothing",
            **link_ids,
        )
    exchange = dynamic.DynamicRegistration(
        policy=current_bridge().outbound_policy,
        timeout=settings.http_timeout_seconds,
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
    ids = dict(issuer=platform.issuer, client_id=client.client_id, **link_ids)

    if provider_registration(db, provider_id, platform.issuer, client.client_id):
        raise _already_registered(platform.issuer, client.client_id, provider, ids)
    # The link is marked used in the transaction that stores the registration, so
    # either both are saved or neither is, and a failed registration leaves the
    # link open for another try.
    claim_registration_link(db, link)
    try:
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
    except IntegrityError:
        # Another registration of the same pair in this provider was stored since
        # the check above, so the unique constraint rejected this one.
        db.rollback()
        if not provider_registration(
            db, provider_id, platform.issuer, client.client_id
        ):
            raise
        log.info("lti_dynamic_registration_lost_race", **ids)
        raise _already_registered(
            platform.issuer, client.client_id, db.get(Provider, provider_id), ids
        ) from None
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


def _already_registered(
    issuer: str, client_id: str, provider: Provider, ids: dict
) -> RegistrationFailed:
    return RegistrationFailed(
        f"issuer {issuer!r} with client_id {client_id!r} is already registered for "
        f"provider {provider.slug!r}",
        check="remove the old registration on the admin pages first, or use the "
        "one already there; the registration URL was not used up",
        **ids,
    )
