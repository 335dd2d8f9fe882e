"""A demo backpack that receives OB 2.0 assertions through Badge Connect (OB 2.1).

    GET  {base}/.well-known/badgeconnect.json   the manifest
    POST {base}/bcv1/assertions                 add an assertion (bearer token)
    POST {base}/oauth/register, /oauth/authorize, /oauth/token
                                                OAuth as in the demo portfolio

An assertion is stored by its `id`: 201 for a new one, 200 for one already held.
Responses carry Badge Connect's `status` object (`error`, `statusCode`,
`statusText`). Like the other peers it can fail the next requests for tests.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

from lti_tool.demo.peers.portfolio_oauth import OAuthServer
from lti_tool.demo.peers.serving import RunningServer, peer_app, serve_in_thread

API_BASE_PATH = "/bcv1"
SCOPE_CREATE = "https://purl.imsglobal.org/spec/ob/v2p1/scope/assertion.create"
OB2_CONTEXT = "https://w3id.org/openbadges/v2"
REQUIRED_FIELDS = ("id", "type", "recipient", "badge", "issuedOn", "verification")


@dataclass
class BadgeConnectPeer:
    name: str = "hpass-demo-backpack"
    assertions: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    received_count: int = 0
    _fail: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.oauth = OAuthServer(
            api_base_path=API_BASE_PATH,
            title=self.name,
            required_scope=SCOPE_CREATE,
            serve_discovery=False,
        )

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        with self._lock:
            self._fail = [status] * n

    def create_app(self) -> Flask:
        app = peer_app(__name__, "badge_connect")
        app.add_url_rule("/.well-known/badgeconnect.json", "manifest", self._manifest)
        app.add_url_rule(
            f"{API_BASE_PATH}/assertions", "assertions", self._add, methods=["POST"]
        )
        self.oauth.add_routes(app)
        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        return serve_in_thread(self.create_app(), host=host, port=port)

    def _manifest(self) -> Response:
        base = request.url_root.rstrip("/")
        return jsonify(
            {
                "@context": "https://w3id.org/openbadges/badgeconnect/v1",
                "id": f"{base}/.well-known/badgeconnect.json",
                "badgeConnectAPI": [
                    {
                        "name": self.name,
                        "apiBase": base + API_BASE_PATH,
                        "version": "v1",
                        "termsOfServiceUrl": f"{base}/terms",
                        "privacyPolicyUrl": f"{base}/privacy",
                        "scopesOffered": [SCOPE_CREATE],
                        "registrationUrl": f"{base}/oauth/register",
                        "authorizationUrl": f"{base}/oauth/authorize",
                        "tokenUrl": f"{base}/oauth/token",
                    }
                ],
            }
        )

    def _add(self) -> tuple[Response, int]:
        with self._lock:
            self.received_count += 1
            status = self._fail.pop(0) if self._fail else None
        if status is not None:
            return _status(status, f"simulated failure (HTTP {status})")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        problem = self.oauth.check_access_token(token.strip())
        if scheme.lower() != "bearer" or problem is not None:
            return _status(401, problem or "missing bearer token")
        assertion = request.get_json(silent=True)
        problem = _assertion_problem(assertion)
        if problem is not None:
            return _status(400, problem)
        with self._lock:
            known = assertion["id"] in self.assertions
            self.assertions[assertion["id"]] = assertion

        return _status(200 if known else 201, "OK")


def _assertion_problem(assertion: t.Any) -> str | None:
    if not isinstance(assertion, dict):
        return "the body must be an OB 2.0 Assertion as a JSON object"
    if assertion.get("@context") != OB2_CONTEXT:
        return f"@context must be {OB2_CONTEXT}"
    missing = [name for name in REQUIRED_FIELDS if name not in assertion]
    if missing:
        return "the assertion lacks " + ", ".join(missing)

    return None


def _status(code: int, text: str) -> tuple[Response, int]:
    error = None if code < 400 else text
    return jsonify(
        {"status": {"error": error, "statusCode": code, "statusText": text}}
    ), code
