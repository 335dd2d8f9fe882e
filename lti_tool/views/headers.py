"""Security headers of the HTML pages: who may frame them and what they may load.

Course pages run inside the LMS, so their `frame-ancestors` lists the origins of the
launching platform's registration. Sign-in and admin pages may never be framed, which
keeps a password form out of reach of clickjacking.

A view may choose its policy with `allow_framing_by` or `forbid_framing`; every other
HTML response gets one from `apply_default_headers`, which runs after all views. Every
response gets `X-Content-Type-Options: nosniff`, and `Strict-Transport-Security` when
the request came over HTTPS, directly or through a trusted proxy.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Flask, Response, g, has_app_context, request, session
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from lti_tool.bridge import current_bridge, db_session
from lti_tool.logs import get_logger
from lti_tool.models import Registration

log = get_logger(__name__)

# Pages load only their own stylesheet, script and images (uploaded badge images are
# served by the bridge) and `data:` images. No page has an inline script.
_BASE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
# Policy of every image the bridge serves, uploaded or baked (see `image_response`).
IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# One year. Subdomains are left out because the provider's other hosts under the
# same domain are not this bridge's to decide.
HSTS_VALUE = "max-age=31536000"
# Sign-in and admin pages, including their error pages (a 405 has no blueprint whose
# own hook could forbid framing), are never framed.
NEVER_FRAMED_PREFIXES = ("/account/", "/admin/")


def _base_policy(form_targets: list[str] | None = None) -> str:
    return " ".join([_BASE_POLICY, *(form_targets or [])])


def _origin(url: str | None) -> str | None:
    if not url or not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def platform_origins(registration: Registration | None) -> list[str]:
    """Return the origins a registration's platform serves its course pages from."""
    if registration is None:
        return []
    return platform_origins_of(registration.issuer, registration.auth_login_url)


def launch_frame_origins(
    origin_header: str | None, return_url: str | None
) -> list[str]:
    """Return the origins that framed an accepted launch, for the session to keep.

    Canvas signs every launch with one issuer (canvas.instructure.com) while each
    school's Canvas runs on its own host, which frames the tool. That host is the
    launch POST's Origin and the origin of `launch_presentation.return_url`; both
    are trusted only after the id_token validated.
    """
    found = [_origin(origin_header), _origin(return_url)]
    return sorted({origin for origin in found if origin})


def request_origin(origin_header: str | None) -> list[str]:
    """Return the request's Origin as a list, empty when absent or opaque ("null")."""
    origin = _origin(origin_header)
    return [origin] if origin else []


def platform_origins_of(issuer: str, auth_login_url: str) -> list[str]:
    origins = {_origin(issuer), _origin(auth_login_url)}
    return sorted(origin for origin in origins if origin)


def allow_framing_by(
    response: Response, origins: list[str], form_targets: list[str] | None = None
) -> Response:
    """Let the platform `origins` frame the page; forms may also post to `form_targets`,
    or by default to those `allow_form_redirects_to_other_sites` set for the page."""
    if form_targets is None and has_app_context():
        form_targets = g.get("csp_form_targets")
    ancestors = " ".join(["'self'", *origins])
    response.headers["Content-Security-Policy"] = (
        f"{_base_policy(form_targets)}; frame-ancestors {ancestors}"
    )
    response.headers.pop("X-Frame-Options", None)
    _add_common(response)
    return response


def allow_form_redirects_to_other_sites() -> None:
    """Let the forms of the page being rendered lead to another site.

    The portfolio link form posts to the bridge, which responds with a redirect to the
    sign-in page of the portfolio the learner typed in. Browsers check `form-action`
    against every redirect after a form's POST, so under `'self'` alone the browser
    stops there and nothing happens on the page. The portfolio can be any site,
    so its origin cannot be listed in advance: the page allows HTTPS addresses, and
    plain HTTP ones too in loopback development, as the LTI pages do.
    """
    g.csp_form_targets = _lti_form_targets(current_bridge().settings.loopback_dev)


def forbid_framing(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = (
        f"{_base_policy()}; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    _add_common(response)
    return response


def image_response(content: bytes, media_type: str) -> Response:
    """Build a response serving an image under a policy that lets it load and run nothing.

    An SVG opened on its own is a document that could run scripts, so even an image
    whose check missed a trick stays inert. Inline styles stay allowed because SVG
    files draw with them.
    """
    response = Response(content, mimetype=media_type)
    response.headers["Content-Security-Policy"] = IMAGE_POLICY
    return response


def _add_common(response: Response) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")


def session_registration() -> Registration | None:
    """Return the registration of the LTI launch this session came from, if any."""
    registration_id = session.get("registration_id")
    provider_id = session.get("provider_id")
    if registration_id is None or provider_id is None:
        return None
    return db_session().scalar(
        select(Registration).where(
            Registration.id == registration_id, Registration.provider_id == provider_id
        )
    )


def session_frame_origins(registration: Registration | None) -> list[str]:
    """Return the origins that may frame this session's course pages."""
    stored = session.get("frame_origins") or []
    launch_origins = [origin for origin in stored if isinstance(origin, str)]
    return sorted({*platform_origins(registration), *launch_origins})


def _path_registration() -> Registration | None:
    public_id = (request.view_args or {}).get("public_id")
    if not isinstance(public_id, str):
        return None
    return db_session().scalar(
        select(Registration).where(Registration.public_id == public_id)
    )


def _lti_page_policy(response: Response) -> Response:
    """Frame an /lti/ page (launch error, storage or deep-linking page) in its platform.

    These pages respond to a request from inside the platform's frame, often before a
    session exists, so the platform comes from the URL's registration. A Dynamic
    Registration page is framed by the platform named in `openid_configuration`. A
    deep-linking page posts its result to a return URL on the platform, whose host may
    differ from the registration's, so forms may post to any HTTPS address there.
    """
    if request.path.startswith("/lti/register/"):
        origin = _origin(request.args.get("openid_configuration"))
        origins = [origin] if origin else []
    else:
        registration = _path_registration() or session_registration()
        origins = platform_origins(registration)
        if registration is not None:
            # The platform's own host (a school's Canvas) posts the login and the
            # launch, so it frames the pages that respond to them.
            origins = sorted({*origins, *request_origin(request.headers.get("Origin"))})
    form_targets = _lti_form_targets(current_bridge().settings.loopback_dev)

    return allow_framing_by(response, origins, form_targets)


def _lti_form_targets(loopback_dev: bool) -> list[str]:
    return ["https:", "http:"] if loopback_dev else ["https:"]


def apply_lti_headers(
    response: Response,
    registration,
    *,
    secure: bool,
    loopback_dev: bool,
    extra_origins: tuple[str, ...] = (),
) -> Response:
    """Add the headers `apply_default_headers` gives an /lti/ response of `registration`.

    The login and launch dispatcher builds its responses without a Flask request
    context, so it calls this instead of the after-request function.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS_VALUE)
    if (
        response.mimetype != "text/html"
        or "Content-Security-Policy" in response.headers
    ):
        return response

    response.headers["Content-Security-Policy"] = _lti_framing_policy(
        registration.issuer, registration.auth_login_url, loopback_dev, extra_origins
    )
    response.headers.pop("X-Frame-Options", None)
    _add_common(response)
    return response


def lti_redirect_headers(
    registration,
    *,
    secure: bool,
    loopback_dev: bool,
    extra_origins: tuple[str, ...] = (),
) -> list[tuple[str, str]]:
    """Return the headers `apply_lti_headers` adds to an /lti/ redirect, in its order.

    For an HTML response with no policy, no X-Content-Type-Options and no
    Strict-Transport-Security yet, as werkzeug's `redirect` makes it. A
    Cache-Control header is left to the caller.
    """
    added = [("X-Content-Type-Options", "nosniff")]
    if secure:
        added.append(("Strict-Transport-Security", HSTS_VALUE))
    policy = _lti_framing_policy(
        registration.issuer, registration.auth_login_url, loopback_dev, extra_origins
    )
    added.append(("Content-Security-Policy", policy))
    added.append(("Referrer-Policy", "same-origin"))
    return added


@functools.lru_cache(maxsize=1024)
def _lti_framing_policy(
    issuer: str, auth_login_url: str, loopback_dev: bool, extra_origins: tuple = ()
) -> str:
    """Return the policy `allow_framing_by` sets for a registration's /lti/ pages.

    Cached because every login and launch sends it and it depends only on these.
    """
    origins = sorted({*platform_origins_of(issuer, auth_login_url), *extra_origins})
    ancestors = " ".join(["'self'", *origins])
    return (
        f"{_base_policy(_lti_form_targets(loopback_dev))}; frame-ancestors {ancestors}"
    )


def apply_default_headers(response: Response) -> Response:
    """Add nosniff and HSTS to every response and a policy to HTML pages without one.

    An HTML page whose view chose no policy may be framed only by the platform of the
    session's LTI launch, because it is a course page opened inside the LMS. Without a
    launch, no one may frame it.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS_VALUE)
    if (
        response.mimetype != "text/html"
        or "Content-Security-Policy" in response.headers
    ):
        return response

    if request.path.startswith(NEVER_FRAMED_PREFIXES):
        return forbid_framing(response)
    try:
        if request.path.startswith("/lti/"):
            return _lti_page_policy(response)
        registration = session_registration()
    except SQLAlchemyError as error:
        # The error page of a failing database must still get a policy.
        log.error(
            "security_headers_lookup_failed", error=repr(error), path=request.path
        )
        registration = None
    if registration is not None:
        return allow_framing_by(response, session_frame_origins(registration))

    return forbid_framing(response)


def register(app: Flask) -> None:
    app.after_request(apply_default_headers)
