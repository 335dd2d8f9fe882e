"""Flask adapter for the `lti1p3platform` package (version 0.1.8).

`lti1p3platform` builds the platform side of an LTI 1.3 launch but ships adapters for
Django and FastAPI only. This module supplies the Flask pieces (request wrapper, login
redirect, launch form) and fixes two shortfalls of that version:

- `Registration.platform_encode_and_sign` parses the PEM private key twice for every
  id_token (once to compute the `kid`, once inside PyJWT). `PlatformRegistration`
  parses the key once and keeps the key object and its public JWK.
- `MessageLaunchAbstract.validate_preflight_response` checks only that nonce, state,
  redirect_uri and client_id are present. `FlaskMessageLaunch` also checks the OpenID
  Connect parameters an LTI 1.3 authentication request must carry, and rejects a
  redirect_uri the tool did not register.

The package's own `framework.templates` module needs `pkg_resources`, so the launch
form here is rendered with Flask's Jinja environment instead.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Response, make_response, redirect, render_template_string
from flask import request as flask_request
from jwcrypto.jwk import JWK
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest

from lti_tool.demo.peers.page_policy import allow_form_target

# Parameters whose values LTI 1.3 Core fixes for the authentication request, with
# the OAuth 2.0 error code returned for a wrong value.
FIXED_PARAMETERS = (
    ("response_type", "id_token", "unsupported_response_type"),
    ("response_mode", "form_post", "invalid_request"),
)
REQUIRED_SCOPE = "openid"

# The library itself requires state, although OpenID Connect only recommends it.
REQUIRED_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "nonce",
    "state",
    "login_hint",
)

LAUNCH_FORM_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Launching the tool</title></head>
<body>
<form id="lti-launch" method="post" action="{{ action }}">
  <input type="hidden" name="id_token" value="{{ id_token }}">
  {% if state %}<input type="hidden" name="state" value="{{ state }}">{% endif %}
  <noscript><button type="submit">Continue to the tool</button></noscript>
</form>
<script nonce="{{ csp_nonce() }}">document.getElementById("lti-launch").submit();</script>
</body>
</html>
"""


class AuthRequestError(ValueError):
    """An OpenID Connect authentication request that the platform rejects.

    `error` is the OAuth 2.0 error code (RFC 6749 error responses), and the message
    names the wrong parameter and what to do.
    """

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class PlatformRegistration(Registration):
    """A `Registration` that signs with a key object parsed once at construction.

    It also stores the redirect URIs the tool registered, which the library's
    `Registration` has no field for.
    """

    def __init__(self, private_key: RSAPrivateKey) -> None:
        self._signing_key = private_key

        public_key = private_key.public_key()
        public_jwk = json.loads(JWK.from_pyca(public_key).export_public())
        public_jwk["alg"] = "RS256"
        public_jwk["use"] = "sig"
        self._public_jwk: dict[str, t.Any] = public_jwk
        self._redirect_uris: tuple[str, ...] = ()

        # The library's own methods that still take PEM text (access-token
        # signing and validation) keep working with these.
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = public_key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        self.set_platform_private_key(private_pem.decode("ascii"))
        self.set_platform_public_key(public_pem.decode("ascii"))

    def get_kid(self) -> str:
        return t.cast(str, self._public_jwk["kid"])

    def get_jwks(self) -> list[dict[str, t.Any]]:
        return [dict(self._public_jwk)]

    def platform_encode_and_sign(
        self, payload: dict[str, t.Any], expiration: int | None = None
    ) -> str:
        # PyJWT accepts a cryptography key object, so nothing is parsed here.
        return Registration.encode_and_sign(
            payload,
            t.cast(str, self._signing_key),
            headers={"kid": self.get_kid()},
            expiration=expiration,
        )

    def get_redirect_uris(self) -> tuple[str, ...]:
        return self._redirect_uris

    def set_redirect_uris(self, redirect_uris: Sequence[str]) -> PlatformRegistration:
        self._redirect_uris = tuple(redirect_uris)

        return self


class PlatformConfig(LTI1P3PlatformConfAbstract):
    """Platform configuration holding a single tool registration."""

    def init_platform_config(self, **kwargs: t.Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        return t.cast(Registration, self._registration)


class FlaskPlatformRequest(Request):
    """The current Flask request in the shape `lti1p3platform` reads."""

    def __init__(self) -> None:
        super().__init__(flask_request)

    def build_metadata(self, request: t.Any) -> TRequest:
        return {
            "method": request.method,
            "form_data": request.form.to_dict(),
            "get_data": request.args.to_dict(),
            "headers": request.headers,
            "content_type": request.content_type,
            "path": request.path,
            "json": request.get_json(silent=True),
        }


class FlaskOIDCLogin(OIDCLoginAbstract):
    """Third-party login initiation, sent as a redirect to the tool's login URL."""

    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["lti_message_hint"]

    def get_redirect(self, url: str) -> Response:
        return redirect(url, code=302)


class FlaskMessageLaunch(LTIAdvantageMessageLaunchAbstract):
    """The authentication response: validates the request, then renders the form.

    Subclasses fill in the user, context and resource link claims in
    `prepare_launch`, which runs after the checks here have passed.
    """

    _registration: PlatformRegistration | None

    def validate_preflight_response(self, preflight_response: dict[str, t.Any]) -> None:
        registration = t.cast(PlatformRegistration, self._registration)
        self._require_parameters(preflight_response)

        client_id = preflight_response["client_id"]
        if client_id != registration.get_client_id():
            raise AuthRequestError(
                "unauthorized_client",
                f"client_id {client_id!r} is not registered on this platform; "
                f"the registered tool uses client_id {registration.get_client_id()!r}",
            )

        # Without this check, the id_token would be posted to any URL the
        # request names. OpenID Connect requires the value to equal one of the
        # client's pre-registered redirect URIs, compared as plain strings.
        redirect_uri = preflight_response["redirect_uri"]
        registered = registration.get_redirect_uris()
        if redirect_uri not in registered:
            raise AuthRequestError(
                "invalid_request",
                f"redirect_uri {redirect_uri!r} is not registered for client_id "
                f"{client_id!r}; registered redirect URIs: {list(registered)}. "
                "Send one of these, or register the URI with the platform.",
            )

        for name, expected, error in FIXED_PARAMETERS:
            value = preflight_response[name]
            if value != expected:
                raise AuthRequestError(
                    error,
                    f"{name} must be {expected!r} for an LTI launch, got {value!r}",
                )

        scopes = preflight_response["scope"].split()
        if REQUIRED_SCOPE not in scopes:
            raise AuthRequestError(
                "invalid_scope",
                f"scope must include {REQUIRED_SCOPE!r}, "
                f"got {preflight_response['scope']!r}",
            )

        # The library's own checks (nonce, state, redirect_uri, client_id) also
        # record the redirect_uri as the form's target.
        super().validate_preflight_response(preflight_response)

    def render_launch_form(
        self, launch_data: dict[str, t.Any], **kwargs: t.Any
    ) -> Response:
        allow_form_target(launch_data["launch_url"])
        html = render_template_string(
            LAUNCH_FORM_TEMPLATE,
            action=launch_data["launch_url"],
            id_token=launch_data["id_token"],
            state=launch_data.get("state", ""),
        )
        response = make_response(html)
        response.headers["Cache-Control"] = "no-store"

        return response

    @staticmethod
    def _require_parameters(preflight_response: dict[str, t.Any]) -> None:
        missing = [
            name for name in REQUIRED_PARAMETERS if not preflight_response.get(name)
        ]
        if missing:
            raise AuthRequestError(
                "invalid_request",
                f"missing required parameter(s) {', '.join(missing)} in the "
                "authentication request; this platform requires all of "
                f"{', '.join(REQUIRED_PARAMETERS)}",
            )
