"""The demo portfolio's OAuth 2.0 endpoints, as the Open Badges 3.0 API requires of a host.

    GET  {base}/ims/ob/v3p0/discovery  Service Description Document
    POST {base}/oauth/register         dynamic client registration (RFC 7591)
    GET  {base}/oauth/authorize        consent page (authorization code, RFC 6749)
    POST {base}/oauth/authorize        the learner's decision: approve or deny
    POST {base}/oauth/token            code exchange with PKCE (RFC 7636), refresh

Errors follow RFC 6749 section 5.2 (`{"error": ..., "error_description": ...}`)
at the token endpoint and RFC 7591 section 3.2.2 at registration; authorization
errors go back to a registered redirect URI as `error` and `state` parameters,
or as a 400 page when the redirect URI itself is not trusted. Codes live ten
minutes and work once; refresh tokens rotate on each use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, jsonify, redirect, render_template_string, request

from lti_tool.demo.peers.page_policy import allow_form_target

SCOPE_UPSERT = "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert"
SCOPE_READ = "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.readonly"
CODE_SECONDS = 600


@dataclass
class RegisteredClient:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    scope: str


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class IssuedToken:
    client_id: str
    scope: str
    expires_at: float | None
    revoked: bool = False


@dataclass
class OAuthServer:
    """Clients, codes and tokens of the demo portfolio, kept in memory."""

    api_base_path: str
    title: str
    access_token_seconds: int = 3600
    # The scope an access token needs for the peer's write operation.
    required_scope: str = SCOPE_UPSERT
    serve_discovery: bool = True
    # Replaces fields of the discovery document, to test clients against bad ones.
    discovery_overrides: dict[str, t.Any] = field(default_factory=dict)
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    access_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    token_requests: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_routes(self, app: Flask) -> None:
        if self.serve_discovery:
            app.add_url_rule(
                f"{self.api_base_path}/discovery", "discovery", self._discovery
            )
        app.add_url_rule(
            "/oauth/register", "register", self._register, methods=["POST"]
        )
        app.add_url_rule(
            "/oauth/authorize", "authorize", self._authorize, methods=["GET", "POST"]
        )
        app.add_url_rule("/oauth/token", "token", self._token, methods=["POST"])

    def check_access_token(self, token: str) -> str | None:
        """Return None for a live access token with the required scope, else the problem."""
        with self._lock:
            issued = self.access_tokens.get(token)
        if issued is None:
            return "invalid bearer token; this portfolio does not know that token"
        if issued.revoked:
            return "the access token was revoked; ask the learner for consent again"
        if issued.expires_at is not None and issued.expires_at <= time.time():
            return "the access token expired; refresh it"
        if self.required_scope not in issued.scope.split():
            return f"the access token lacks the scope {self.required_scope}"

        return None

    def revoke_all(self) -> None:
        with self._lock:
            for issued in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
                issued.revoked = True

    def expire_access_tokens(self) -> None:
        with self._lock:
            for issued in self.access_tokens.values():
                issued.expires_at = time.time() - 1

    def refresh_count(self) -> int:
        with self._lock:
            return sum(
                1 for grant, _ in self.token_requests if grant == "refresh_token"
            )

    # Discovery

    def _discovery(self) -> Response:
        base = request.url_root.rstrip("/")
        flow = {
            "authorizationUrl": f"{base}/oauth/authorize",
            "tokenUrl": f"{base}/oauth/token",
            "refreshUrl": f"{base}/oauth/token",
            "scopes": {
                SCOPE_UPSERT: "Add badges to your portfolio",
                SCOPE_READ: "Read the badges in your portfolio",
            },
        }
        document = {
            "openapi": "3.0.1",
            "info": {
                "title": self.title,
                "version": "1.0",
                "termsOfService": f"{base}/terms",
                "x-imssf-privacyPolicyUrl": f"{base}/privacy",
            },
            "servers": [{"url": base + self.api_base_path}],
            "paths": {},
            "components": {
                "securitySchemes": {
                    "OAuth2ACG": {
                        "type": "oauth2",
                        "x-imssf-registrationUrl": f"{base}/oauth/register",
                        "flows": {"authorizationCode": flow},
                    }
                },
                "schemas": {},
            },
        }
        for key, value in self.discovery_overrides.items():
            if key in flow:
                flow[key] = value
            else:
                document[key] = value

        return jsonify(document)

    # Registration

    def _register(self) -> tuple[Response, int]:
        metadata = request.get_json(silent=True)
        if not isinstance(metadata, dict):
            return _registration_error(
                "invalid_client_metadata", "the body must be a JSON object"
            )
        redirect_uris = metadata.get("redirect_uris")
        if not isinstance(redirect_uris, list) or not redirect_uris:
            return _registration_error(
                "invalid_redirect_uri", "redirect_uris must be a non-empty list"
            )
        for uri in redirect_uris:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is None or parts.scheme not in ("http", "https") or parts.fragment:
                return _registration_error(
                    "invalid_redirect_uri",
                    f"{uri!r} is not an absolute http(s) URI without a fragment",
                )
        name = metadata.get("client_name")
        if not isinstance(name, str) or not name.strip():
            return _registration_error(
                "invalid_client_metadata", "client_name is required"
            )
        scope = metadata.get("scope") or SCOPE_UPSERT
        client = RegisteredClient(
            client_id=secrets.token_urlsafe(12),
            client_secret=secrets.token_urlsafe(24),
            name=name.strip()[:200],
            redirect_uris=list(redirect_uris),
            scope=scope,
        )
        with self._lock:
            self.clients[client.client_id] = client
        answer = {
            **metadata,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "client_id_issued_at": int(time.time()),
            "client_secret_expires_at": 0,
        }

        return jsonify(answer), 201

    # Authorization

    def _authorize(self) -> Response | tuple[str, int]:
        params = request.values
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            return _page_error("unknown client_id; the client must register first")
        if redirect_uri not in client.redirect_uris:
            return _page_error("redirect_uri is not one the client registered")

        state = params.get("state", "")
        problem = _authorization_problem(params)
        if problem is not None:
            return _redirect_error(redirect_uri, state, "invalid_request", problem)
        if request.method == "GET":
            # Approving redirects to the client, which the policy must allow.
            allow_form_target(redirect_uri)
            return render_template_string(
                CONSENT_TEMPLATE,
                client=client,
                params=params,
                title=self.title,
                scopes=params.get("scope", "").split(),
            )

        if request.form.get("decision") != "approve":
            return _redirect_error(
                redirect_uri, state, "access_denied", "the learner denied access"
            )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = IssuedCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                code_challenge=params["code_challenge"],
                scope=params.get("scope") or client.scope,
                expires_at=time.time() + CODE_SECONDS,
            )

        return redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    # Tokens

    def _token(self) -> tuple[Response, int]:
        grant_type = request.form.get("grant_type", "")
        response, status = self._token_answer(grant_type)
        with self._lock:
            self.token_requests.append((grant_type, status))
        response.headers["Cache-Control"] = "no-store"

        return response, status

    def _token_answer(self, grant_type: str) -> tuple[Response, int]:
        client = self._authenticate_client()
        if client is None:
            return _token_error("invalid_client", "client authentication failed", 401)
        if grant_type == "authorization_code":
            return self._exchange_code(client)
        if grant_type == "refresh_token":
            return self._refresh(client)

        return _token_error(
            "unsupported_grant_type",
            f"grant_type {grant_type!r} is not supported here; use "
            "authorization_code or refresh_token",
        )

    def _authenticate_client(self) -> RegisteredClient | None:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username or "", auth.password or ""
        else:
            client_id = request.form.get("client_id", "")
            secret = request.form.get("client_secret", "")
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            return None

        return client

    def _exchange_code(self, client: RegisteredClient) -> tuple[Response, int]:
        form = request.form
        with self._lock:
            code = self.codes.get(form.get("code", ""))
            if code is not None and not code.used:
                code.used = True
                fresh = True
            else:
                fresh = False
        if code is None or not fresh or code.expires_at < time.time():
            return _token_error("invalid_grant", "the code is unknown, used or expired")
        if code.client_id != client.client_id:
            return _token_error(
                "invalid_grant", "the code was issued to another client"
            )
        if form.get("redirect_uri") != code.redirect_uri:
            return _token_error(
                "invalid_grant", "redirect_uri differs from the request"
            )
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128:
            return _token_error(
                "invalid_grant", "code_verifier must be 43 to 128 characters long"
            )
        if not hmac.compare_digest(_s256(verifier), code.code_challenge):
            return _token_error(
                "invalid_grant", "code_verifier does not match the code_challenge"
            )

        return jsonify(self._issue_tokens(client.client_id, code.scope)), 200

    def _refresh(self, client: RegisteredClient) -> tuple[Response, int]:
        token = request.form.get("refresh_token", "")
        with self._lock:
            issued = self.refresh_tokens.get(token)
            valid = (
                issued is not None
                and not issued.revoked
                and issued.client_id == client.client_id
            )
            if valid:
                issued.revoked = True
        if not valid:
            return _token_error(
                "invalid_grant", "the refresh token is unknown or revoked"
            )

        return jsonify(self._issue_tokens(client.client_id, issued.scope)), 200

    def _issue_tokens(self, client_id: str, scope: str) -> dict[str, t.Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = time.time() + self.access_token_seconds
        with self._lock:
            self.access_tokens[access] = IssuedToken(client_id, scope, expires_at)
            self.refresh_tokens[refresh] = IssuedToken(client_id, scope, None)

        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_seconds,
            "refresh_token": refresh,
            "scope": scope,
        }


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorization_problem(params) -> str | None:
    if params.get("response_type") != "code":
        return "response_type must be code"
    if params.get("code_challenge_method") != "S256":
        return "PKCE is required: send code_challenge with code_challenge_method=S256"
    if not params.get("code_challenge"):
        return "PKCE is required: code_challenge is missing"

    return None


def _with_query(url: str, values: dict[str, str]) -> str:
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode(values)


def _redirect_error(redirect_uri: str, state: str, error: str, description: str):
    values = {"error": error, "error_description": description, "state": state}
    return redirect(_with_query(redirect_uri, values))


def _page_error(message: str) -> tuple[str, int]:
    return render_template_string(ERROR_TEMPLATE, message=message), 400


def _registration_error(error: str, description: str) -> tuple[Response, int]:
    return jsonify({"error": error, "error_description": description}), 400


def _token_error(error: str, description: str, status: int = 400):
    response = jsonify({"error": error, "error_description": description})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="token"'

    return response, status


CONSENT_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Allow access · {{ title }}</title></head>
<body>
<h1>{{ client.name }} wants to add badges to your portfolio</h1>
<ul>{% for scope in scopes %}<li>{{ scope }}</li>{% endfor %}</ul>
<form method="post">
  {% for key, value in params.items() %}
  <input type="hidden" name="{{ key }}" value="{{ value }}">
  {% endfor %}
  <button type="submit" name="decision" value="approve">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>
</body>
</html>
"""

ERROR_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorization error</title></head>
<body><h1>Authorization error</h1><p>{{ message }}</p></body>
</html>
"""
