"""A strict Content-Security-Policy for the HTML pages of the demo peers.

The peers' pages load nothing: no stylesheet, image, font or script file. So the
policy starts from `default-src 'none'`. An inline script runs only when it carries
the nonce of its response (`csp_nonce()` in a template). Forms may post to the page's
own origin and to the origins a view adds with `allow_form_target`, such as the
tool's launch URL. A browser may also check `form-action` on the redirects after a
form post, so a consent form lists the client's redirect URI too. Frames may load the
page's own origin and the origins a view adds with `allow_frame_target`. Only the
peer's own origin may frame a page, as the demo platform frames the tool's launch.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g


def add_page_policy(app: Flask) -> None:
    """Send the policy with every HTML response of `app`, with a fresh nonce each."""
    app.jinja_env.globals["csp_nonce"] = _nonce
    app.after_request(_set_policy)


def allow_form_target(url: str) -> None:
    """Let this response's forms post, or be redirected after posting, to `url`'s origin."""
    _add_origin("csp_form_targets", url)


def allow_frame_target(url: str) -> None:
    """Let this response's frames load pages of `url`'s origin."""
    _add_origin("csp_frame_targets", url)


def page_policy(nonce: str, form_targets: list[str], frame_targets: list[str]) -> str:
    """Return the policy text for one page."""
    forms = " ".join(["'self'", *sorted(set(form_targets))])
    frames = " ".join(["'self'", *sorted(set(frame_targets))])
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; form-action {forms}; "
        f"frame-src {frames}; frame-ancestors 'self'; base-uri 'none'"
    )


def _nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _add_origin(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return
    origins = g.setdefault(name, [])
    origins.append(f"{parts.scheme}://{parts.netloc}")


def _set_policy(response: Response) -> Response:
    if response.mimetype != "text/html":
        return response
    response.headers["Content-Security-Policy"] = page_policy(
        _nonce(), g.get("csp_form_targets", []), g.get("csp_frame_targets", [])
    )
    return response
