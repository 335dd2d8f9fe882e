"""An in-memory Open Badge Factory, for tests and the demo.

It follows the parts of the OBF REST API v1 the bridge calls, as OBF documents
them. Tokens come from an OAuth 2.0 client credentials endpoint, and badges
belong to one API client. Issuing to email recipients returns 201 with a
`Location` naming the new event. Event and assertion lists are one JSON object
per line, and DELETE revokes an event. Errors are JSON objects with an `error` message. Every call
other than the token call needs `Authorization: Bearer <token>` for the client
id in its path.

For tests it can fail the next requests with any status and a `Retry-After`,
and revoke every token it issued.
"""

from __future__ import annotations

import hmac
import itertools
import json
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

from lti_tool.demo.peers.serving import RunningServer, peer_app, serve_in_thread

TOKEN_SECONDS = 3600


@dataclass
class ObfEvent:
    id: str
    client_id: str
    badge_id: str
    recipients: list[str]
    issued_on: int
    log_entry: dict[str, t.Any]
    revoked: bool = False


@dataclass
class ObfPeer:
    """One OBF API client account with its badges, events and tokens."""

    client_id: str
    client_secret: str
    badges: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    events: dict[str, ObfEvent] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    issue_requests: int = 0
    token_requests: int = 0
    _fail: list[tuple[int, str | None]] = field(default_factory=list)
    _ids: t.Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_badge(self, name: str) -> str:
        badge_id = f"B{next(self._ids):04d}"
        self.badges[badge_id] = {
            "id": badge_id,
            "name": name,
            "client_id": self.client_id,
        }
        return badge_id

    def fail_next(self, n: int = 1, status: int = 503, retry_after: str | None = None):
        """Fail the next `n` API calls (token calls included) with `status`."""
        with self._lock:
            self._fail = [(status, retry_after)] * n

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def live_events(self) -> list[ObfEvent]:
        with self._lock:
            return [event for event in self.events.values() if not event.revoked]

    def create_app(self) -> Flask:
        app = peer_app(__name__, "obf")
        app.before_request(self._maybe_fail)
        app.add_url_rule(
            "/v1/client/oauth2/token", "token", self._token, methods=["POST"]
        )
        app.add_url_rule(
            "/v1/badge/<client_id>/<badge_id>",
            "badge",
            self._badge,
            methods=["GET", "POST"],
        )
        app.add_url_rule("/v1/event/<client_id>", "events", self._events)
        app.add_url_rule(
            "/v1/event/<client_id>/<event_id>",
            "event",
            self._event,
            methods=["GET", "DELETE"],
        )
        app.add_url_rule(
            "/v1/event/<client_id>/<event_id>/assertion", "assertions", self._assertions
        )
        app.register_error_handler(404, lambda error: _error(404, "not found"))
        app.register_error_handler(
            405, lambda error: _error(405, f"{request.method} is not allowed here")
        )
        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        return serve_in_thread(self.create_app(), host=host, port=port)

    def _maybe_fail(self) -> Response | None:
        with self._lock:
            if not self._fail:
                return None
            status, retry_after = self._fail.pop(0)
        response = _error(status, f"simulated failure (HTTP {status})")
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    def _token(self) -> Response:
        with self._lock:
            self.token_requests += 1
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type: use client_credentials")
        same_secret = hmac.compare_digest(
            form.get("client_secret", "").encode(), self.client_secret.encode()
        )
        if form.get("client_id") != self.client_id or not same_secret:
            return _error(401, "invalid_client: unknown client id or wrong secret")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + TOKEN_SECONDS

        return jsonify(
            {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS}
        )

    def _authorize(self, client_id: str) -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            expires_at = self.tokens.get(token.strip())
        if scheme.lower() != "bearer" or expires_at is None or expires_at < time.time():
            return _error(401, "invalid or expired access token")
        if client_id != self.client_id:
            return _error(403, f"this token does not belong to client {client_id}")

        return None

    def _badge(self, client_id: str, badge_id: str) -> Response | tuple[Response, int]:
        denied = self._authorize(client_id)
        if denied is not None:
            return denied
        badge = self.badges.get(badge_id)
        if badge is None:
            return _error(404, f"badge {badge_id} not found")
        if request.method == "GET":
            return jsonify(badge)

        with self._lock:
            self.issue_requests += 1
        body = request.get_json(silent=True)
        problem = _issue_problem(body)
        if problem is not None:
            return _error(400, problem)
        event = ObfEvent(
            id=f"E{next(self._ids):06d}",
            client_id=client_id,
            badge_id=badge_id,
            recipients=list(body["recipient"]),
            issued_on=int(body.get("issued_on") or time.time()),
            log_entry=dict(body.get("log_entry") or {}),
        )
        with self._lock:
            self.events[event.id] = event
        response = Response(status=201)
        response.headers["Location"] = (
            f"{request.url_root.rstrip('/')}/v1/event/{client_id}/{event.id}"
        )

        return response

    def _events(self, client_id: str) -> Response:
        denied = self._authorize(client_id)
        if denied is not None:
            return denied
        badge_id = request.args.get("badge_id")
        recipient = request.args.get("recipient")
        lines = []
        with self._lock:
            for event in self.events.values():
                if badge_id and event.badge_id != badge_id:
                    continue
                if recipient and recipient not in event.recipients:
                    continue
                lines.append(json.dumps(_event_json(event)))

        return Response("\n".join(lines), mimetype="application/json")

    def _event(self, client_id: str, event_id: str) -> Response:
        denied = self._authorize(client_id)
        if denied is not None:
            return denied
        event = self.events.get(event_id)
        if event is None or event.client_id != client_id:
            return _error(404, f"event {event_id} not found")
        if request.method == "DELETE":
            event.revoked = True
            return Response(status=204)

        return jsonify(_event_json(event))

    def _assertions(self, client_id: str, event_id: str) -> Response:
        denied = self._authorize(client_id)
        if denied is not None:
            return denied
        event = self.events.get(event_id)
        if event is None:
            return _error(404, f"event {event_id} not found")
        base = request.url_root.rstrip("/")
        lines = [
            json.dumps(
                {
                    "id": f"{event.id}-{index}",
                    "email": email,
                    "url": f"{base}/v1/assertion/{event.id}-{index}",
                    "revoked": event.revoked,
                }
            )
            for index, email in enumerate(event.recipients)
        ]

        return Response("\n".join(lines), mimetype="application/json")


def _issue_problem(body: t.Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    recipients = body.get("recipient")
    if not isinstance(recipients, list) or not recipients:
        return "recipient must be a non-empty list of email addresses"
    for email in recipients:
        if not isinstance(email, str) or "@" not in email:
            return f"recipient {email!r} is not an email address"
    issued_on = body.get("issued_on")
    if issued_on is not None and not isinstance(issued_on, int):
        return "issued_on must be a Unix timestamp in seconds"

    return None


def _event_json(event: ObfEvent) -> dict[str, t.Any]:
    return {
        "id": event.id,
        "badge_id": event.badge_id,
        "recipient": event.recipients,
        "issued_on": event.issued_on,
        "log_entry": event.log_entry,
        "revoked": event.revoked,
    }


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response
