"""The Flask application factory."""

from __future__ import annotations

import gc

from flask import Flask
from werkzeug.routing import IntegerConverter

from lti_tool import __version__, backfill, intake, metrics
from lti_tool.bridge import Bridge, close_db_session
from lti_tool.celery_app import make_celery
from lti_tool.config import Settings, ensure_secret_files, load_settings
from lti_tool.errors import register_error_handlers
from lti_tool.logs import configure_logging
from lti_tool.rate_limit_page import session_locale_reader
from lti_tool.ratelimit import RateLimitMiddleware
from lti_tool.request_body import BridgeRequest
from lti_tool.row_ids import ROW_ID_MAX
from lti_tool.views import account_session, headers, lti_launch
from lti_tool.webhook_fast_path import WebhookFastPath


class DatabaseIdConverter(IntegerConverter):
    """An `<int:...>` URL segment that fits a database id (a signed 64-bit integer).

    A larger number matches no route, so it gets a 404 instead of an overflow in
    the database driver.
    """

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", ROW_ID_MAX)
        super().__init__(url_map, *args, **kwargs)


class BridgeFlask(Flask):
    """Flask whose WSGI entry point applies the rate limits before `wsgi_app`.

    Limiting here rather than by wrapping `wsgi_app` keeps the limiter outermost
    even when a fast path or ProxyFix wraps `wsgi_app` after the app is built.
    Its requests reject a chunked body over MAX_CONTENT_LENGTH with 413 (see
    `lti_tool.request_body`).
    """

    request_class = BridgeRequest
    rate_limiter: RateLimitMiddleware | None = None

    def __call__(self, environ, start_response):
        if self.rate_limiter is None:
            return self.wsgi_app(environ, start_response)
        return self.rate_limiter(environ, start_response)


def create_server_app() -> Flask:
    """Build the app for a web server process from environment settings.

    The factory for production servers (`granian --factory
    lti_tool.app:create_server_app`). It calls `freeze_startup_objects` after
    `create_app`.
    """
    app = create_app()
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Keep the objects alive at start-up out of the garbage collector's full passes.

    The modules, the app and its engines live as long as a server process, yet
    every full collection walked them all again. `gc.freeze` moves them to the
    permanent generation. In the intake bench on PostgreSQL (two granian
    workers, 2 cores) the bridge's p99 latency fell from 20-26 ms to 10-12 ms.
    Call it once, in a server process: objects created before the call are
    never collected, so a process that builds many apps (a test run) must not.
    """
    gc.freeze()


def create_app(
    settings: Settings | None = None, *, overrides: dict | None = None
) -> Flask:
    """Build the app from environment settings, or from `settings` given by a caller.

    The secret key and the at-rest encryption key are created in the instance folder on
    first start, readable by their owner only.
    """
    if settings is None:
        settings = load_settings(overrides=overrides)
    if not settings.secret_key or not settings.encryption_keys:
        ensure_secret_files(settings)
    configure_logging(settings.log_format, settings.log_level)

    app = BridgeFlask(__name__, instance_path=str(settings.instance_path))
    app.url_map.converters["int"] = DatabaseIdConverter
    app.config.update(
        SECRET_KEY=settings.secret_key,
        HPASS_VERSION=__version__,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_NAME="hpass_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Launches arrive as cross-site POSTs from the LMS inside an iframe, so the
        # session cookie must be SameSite=None, which browsers accept only with Secure.
        # Over plain HTTP on loopback (development mode) Lax works instead, because
        # ports do not make two loopback origins different sites.
        SESSION_COOKIE_SAMESITE="Lax" if settings.loopback_dev else "None",
        SESSION_COOKIE_SECURE=not settings.loopback_dev,
    )
    app.extensions["hpass"] = Bridge.from_settings(settings)
    app.teardown_appcontext(close_db_session)
    register_error_handlers(app)
    make_celery(app)
    intake.register(app)
    # Both fast paths are installed before the blueprints, so the trusted-proxy
    # middleware that the LTI blueprint adds wraps them and they see the client's
    # scheme.
    lti_launch.install(app)
    app.wsgi_app = WebhookFastPath(app, app.wsgi_app)
    _register_blueprints(app, settings)
    metrics.register(app)
    backfill.register(app)
    headers.register(app)
    account_session.register(app)
    if settings.rate_limits_enabled:
        # The lambda reads `wsgi_app` per request, so later wrappers stay inside.
        app.rate_limiter = RateLimitMiddleware(
            lambda environ, start_response: app.wsgi_app(environ, start_response),
            settings,
            session_locales=session_locale_reader(app),
        )

    return app


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from lti_tool.api.views import bp as api_bp

    # These modules add their routes to the admin blueprint when imported.
    from lti_tool.views import (  # noqa: F401
        admin_audit,
        admin_canvas,
        admin_registration_links,
        admin_registrations,
    )
    from lti_tool.views.admin import bp as admin_bp
    from lti_tool.views.admin_accounts import bp as accounts_bp
    from lti_tool.views.auth import bp as auth_bp
    from lti_tool.views.canvas_webhooks import bp as canvas_webhooks_bp
    from lti_tool.views.explain import bp as explain_bp
    from lti_tool.views.health import bp as health_bp
    from lti_tool.views.lti import bp as lti_bp
    from lti_tool.views.pages import bp as pages_bp
    from lti_tool.views.portfolio import bp as portfolio_bp
    from lti_tool.views.public import bp as public_bp
    from lti_tool.views.webhooks import bp as webhooks_bp

    for blueprint in (
        health_bp,
        lti_bp,
        pages_bp,
        public_bp,
        webhooks_bp,
        admin_bp,
        auth_bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(portfolio_bp)
    app.register_blueprint(canvas_webhooks_bp)
    app.register_blueprint(explain_bp)
    app.register_blueprint(api_bp)

    if settings.demo:
        from lti_tool.demo.views import bp as demo_bp

        app.register_blueprint(demo_bp)
