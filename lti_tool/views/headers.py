"""Security headers of the HTML pages: who may frame them and what they may load.

Course pages run inside the LMS, so their `frame-ancestors` lists the origins of the
launching platform's registration. Sign-in and admin pages may never be framed, which
keeps a password form out of reach of clickjacking.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response

from lti_tool.models import Registration

# Pages load only their own stylesheet, script and images (uploaded badge images are
# served by the bridge) and `data:` images.
_BASE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def platform_origins(registration: Registration | None) -> list[str]:
    """Return the origins a registration's platform serves its course pages from."""
    if registration is None:
        return []
    origins = {_origin(registration.issuer), _origin(registration.auth_login_url)}
    return sorted(origin for origin in origins if origin)


def allow_framing_by(response: Response, origins: list[str]) -> Response:
    ancestors = " ".join(["'self'", *origins])
    response.headers["Content-Security-Policy"] = (
        f"{_BASE_POLICY}; frame-ancestors {ancestors}"
    )
    response.headers.pop("X-Frame-Options", None)
    _add_common(response)
    return response


def forbid_framing(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = f"{_BASE_POLICY}; frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    _add_common(response)
    return response


def _add_common(response: Response) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
