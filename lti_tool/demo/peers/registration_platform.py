"""A stand-in LMS for LTI Dynamic Registration, shaped like Moodle or like Canvas.

It serves an OpenID configuration and a registration endpoint, written from the
LTI Dynamic Registration 1.0 spec and what Moodle 4.x and Canvas send:

- Moodle: issuer is the site's own URL, the response carries a `deployment_id`,
  errors are plain text.
- Canvas: issuer is the shared `https://canvas.instructure.com`, the response has no
  deployment id, a scope it does not list is rejected with 422, and errors are JSON
  `{"errors": [{"message": ...}]}`.

Start it with `RegistrationPlatform("moodle").start()` and read `registrations` to see
what tools registered.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import jsonify, request

from lti_tool.demo.peers.serving import RunningServer, peer_app, serve_in_thread

CANVAS_ISSUER = "https://canvas.instructure.com"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
MESSAGE_TYPES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")


class RegistrationPlatform:
    """One Moodle- or Canvas-shaped platform accepting dynamic registrations.

    `messages_as_strings` lists message types as plain strings (older Moodle);
    `extra_scopes` are advertised in `scopes_supported` but rejected at registration,
    which is how Canvas responds to a scope it does not grant. `client_id`, when given,
    is returned by every registration in place of a new one, as a platform run by
    anyone with a provider's registration URL may do.
    """

    def __init__(
        self,
        family: str,
        *,
        messages_as_strings: bool = False,
        extra_scopes: t.Sequence[str] = (),
        issuer: str | None = None,
        client_id: str | None = None,
    ) -> None:
        if family not in ("moodle", "canvas"):
            raise ValueError(f"family must be 'moodle' or 'canvas', got {family!r}")
        self.family = family
        self.messages_as_strings = messages_as_strings
        self.extra_scopes = tuple(extra_scopes)
        self.registration_token = secrets.token_urlsafe(16)
        self.registrations: list[dict] = []
        self._issuer = issuer
        self.fixed_client_id = client_id
        self.url = ""

    @property
    def issuer(self) -> str:
        if self._issuer:
            return self._issuer
        return CANVAS_ISSUER if self.family == "canvas" else self.url

    @property
    def configuration_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def start(self) -> RunningServer:
        app = peer_app(
            f"{self.family}_registration_platform", f"{self.family}_registration"
        )
        app.add_url_rule(
            "/.well-known/openid-configuration", "configuration", self._configuration
        )
        app.add_url_rule("/register", "register", self._register, methods=["POST"])
        server = serve_in_thread(app)
        self.url = server.url
        return server

    def _configuration(self):
        messages: list = list(MESSAGE_TYPES)
        if not self.messages_as_strings:
            messages = [{"type": message} for message in MESSAGE_TYPES]
        return jsonify(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/auth",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "registration_endpoint": f"{self.url}/register",
                "scopes_supported": [
                    "openid",
                    NRPS_SCOPE,
                    AGS_RESULT_SCOPE,
                    *self.extra_scopes,
                ],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": self.family,
                    "version": "4.3" if self.family == "moodle" else "cloud",
                    "messages_supported": messages,
                },
            }
        )

    def _register(self):
        if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
            return self._error(401, "invalid or expired registration token")

        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "initiate_login_uri" not in body:
            return self._error(
                400, "the registration request is not a client configuration"
            )
        scopes = str(body.get("scope") or "").split()
        refused = [scope for scope in scopes if scope in self.extra_scopes]
        if self.family == "canvas" and refused:
            return self._error(422, f"Invalid scope: {' '.join(refused)}")

        if self.fixed_client_id is not None:
            client_id = self.fixed_client_id
        elif self.family == "canvas":
            client_id = f"1000000{secrets.randbelow(10**8):08d}"
        else:
            client_id = secrets.token_urlsafe(10)
        response = dict(body, client_id=client_id)
        tool = dict(
            body.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
        )
        if self.family == "moodle":
            tool["deployment_id"] = str(len(self.registrations) + 1)
        response["https://purl.imsglobal.org/spec/lti-tool-configuration"] = tool
        self.registrations.append(response)
        return jsonify(response)

    def _error(self, status: int, message: str):
        if self.family == "canvas":
            response = jsonify({"errors": [{"message": message}]})
        else:
            response = app_text(message)
        response.status_code = status
        return response


def app_text(message: str):
    from flask import make_response

    response = make_response(message)
    response.mimetype = "text/plain"
    return response
