"""A platform's Assignment and Grade Services 2.0, in memory, for loopback tests and the demo.

Written from the AGS 2.0 and LTI Advantage security documents:

- `POST /ags/token` grants client credentials tokens for a JWT client assertion
  whose `iss` and `sub` are the tool's client id and whose `aud` is the token URL.
  A requested scope the platform has not granted gets 400 `invalid_scope`. Tokens
  last `token_lifetime` seconds; `expire_tokens()` ends every issued one at once.
- `GET .../lineitems` and `GET .../lineitems/<n>/lineitem` return line items as
  `application/vnd.ims.lis.v2.lineitemcontainer+json` and `...lineitem+json`;
  `GET .../lineitem/results` returns results as `...resultcontainer+json`, of one
  learner with `user_id`. Lists page by `limit` (default `page_size`) with a `Link`
  header whose `rel` is spelled "Next", as some platforms capitalise it. A `limit`
  or `offset` that is not a whole number in ASCII digits, a `limit` outside 1 to
  `PAGE_LIMIT_MAX` or an `offset` over `ROW_ID_MAX` gets 400 with a message that
  names the parameter and the accepted range.
- Line item URLs carry a `type_id` query parameter, as Moodle's do, so a client
  must keep the query when it builds the results URL.
- A token without the scope an endpoint needs gets 403; a missing, unknown or
  expired token gets 401.
- `POST .../lineitem/scores` takes an `application/vnd.ims.lis.v1.score+json` score
  and updates the learner's result, scaled to the line item's `scoreMaximum`.
- `fail_next(kind, status, ...)` makes the next request of a kind (`token`,
  `lineitems`, `lineitem`, `results`) return a chosen status, headers and body,
  for 429 with Retry-After, 503 and malformed JSON.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from flask import Flask, Response, jsonify, request

from lti_tool.row_ids import ROW_ID_MAX, parse_row_id, shortened

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
)
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
ALL_SCOPES = (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
)
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULT_CONTAINER_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The largest `limit` a list request may ask for. The bound is this stand-in's own
# choice, so that a client's request for a huge page is rejected in the tests.
PAGE_LIMIT_MAX = 1000


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class _LineItem:
    number: int
    context_id: str
    label: str
    score_maximum: float
    resource_link_id: str | None
    tag: str | None
    # The latest result of each learner, by their LTI user id (`sub`).
    results: dict[str, tuple[float, float]] = field(default_factory=dict)


class AgsService:
    """The AGS side of one platform for one tool (`client_id`)."""

    def __init__(
        self,
        client_id: str,
        *,
        granted_scopes: tuple[str, ...] = (
            SCOPE_LINEITEM_READONLY,
            SCOPE_RESULT_READONLY,
            SCOPE_SCORE,
        ),
        page_size: int = 2,
        token_lifetime: int = 3600,
    ) -> None:
        self.client_id = client_id
        self.granted_scopes = granted_scopes
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.base_url = ""
        self.token_requests = 0
        # (kind, Accept header) of each service request, oldest first.
        self.requests: list[tuple[str, str]] = []
        self._line_items: dict[int, _LineItem] = {}
        self._tokens: dict[str, tuple[frozenset[str], float]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # Platform side: what a teacher or another tool does in the gradebook.

    def token_url(self) -> str:
        return f"{self.base_url}/ags/token"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.base_url}/ags/{context_id}/lineitems?type_id=1"

    def add_line_item(
        self,
        context_id: str,
        label: str,
        score_maximum: float = 100,
        *,
        resource_link_id: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Add a gradebook column to the course; return its line item URL."""
        with self._lock:
            number = next(self._numbers)
            self._line_items[number] = _LineItem(
                number, context_id, label, score_maximum, resource_link_id, tag
            )
        return self._item_url(context_id, number)

    def set_result(self, lineitem_url: str, user_id: str, score: float) -> None:
        """Record a learner's score on the line item's own scale."""
        item = self._item_by_url(lineitem_url)
        with self._lock:
            item.results[user_id] = (float(score), float(item.score_maximum))

    def expire_tokens(self) -> None:
        """End every token issued so far, as when a platform's signing key rotates."""
        with self._lock:
            self._tokens.clear()

    def fail_next(
        self,
        kind: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: str = '{"error": "scripted failure"}',
    ) -> None:
        """Return this status, headers and body for the next request of `kind`."""
        with self._lock:
            self._faults.setdefault(kind, []).append(
                _Fault(status, dict(headers or {}), body)
            )

    # HTTP side.

    def register_routes(self, app: Flask) -> None:
        """Add the token and AGS endpoints to `app`; the caller sets `base_url`."""
        app.add_url_rule("/ags/token", "ags_token", self._token_view, methods=["POST"])
        app.add_url_rule(
            "/ags/<context_id>/lineitems", "ags_lineitems", self._lineitems_view
        )
        app.add_url_rule(
            "/ags/<context_id>/lineitems/<int:number>/lineitem",
            "ags_lineitem",
            self._lineitem_view,
        )
        app.add_url_rule(
            "/ags/<context_id>/lineitems/<int:number>/lineitem/results",
            "ags_results",
            self._results_view,
        )
        app.add_url_rule(
            "/ags/<context_id>/lineitems/<int:number>/lineitem/scores",
            "ags_scores",
            self._scores_view,
            methods=["POST"],
        )

    def _token_view(self):
        fault = self._take_fault("token")
        if fault is not None:
            return fault

        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        if form.get("client_assertion_type") != JWT_BEARER:
            return _oauth_error(400, "invalid_request")

        try:
            # NOTE: the assertion's signature is not verified, because this
            # stand-in is given no tool public key.
            claims = jwt.decode(
                form.get("client_assertion", ""), options={"verify_signature": False}
            )
        except jwt.InvalidTokenError:
            return _oauth_error(400, "invalid_client")
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return _oauth_error(401, "invalid_client")
        if claims.get("aud") != self.token_url():
            return _oauth_error(401, "invalid_client")

        requested = set(form.get("scope", "").split())
        if not requested or not requested <= set(self.granted_scopes):
            return _oauth_error(400, "invalid_scope")

        token = secrets.token_urlsafe(16)
        with self._lock:
            self.token_requests += 1
            self._tokens[token] = (
                frozenset(requested),
                time.time() + self.token_lifetime,
            )
        return jsonify(
            access_token=token,
            token_type="Bearer",  # noqa: S106 - the OAuth token type, not a token
            expires_in=self.token_lifetime,
            scope=" ".join(sorted(requested)),
        )

    def _lineitems_view(self, context_id: str):
        denied = self._authorize("lineitems", (SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM))
        if denied is not None:
            return denied

        with self._lock:
            items = [
                self._item_json(item)
                for item in self._line_items.values()
                if item.context_id == context_id
            ]
        return self._page(items, LINEITEM_CONTAINER_TYPE)

    def _lineitem_view(self, context_id: str, number: int):
        denied = self._authorize("lineitem", (SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM))
        if denied is not None:
            return denied

        item = self._line_items.get(number)
        if item is None or item.context_id != context_id:
            return jsonify(error="line item not found"), 404
        response = jsonify(self._item_json(item))
        response.content_type = LINEITEM_TYPE
        return response

    def _results_view(self, context_id: str, number: int):
        denied = self._authorize("results", (SCOPE_RESULT_READONLY,))
        if denied is not None:
            return denied

        item = self._line_items.get(number)
        if item is None or item.context_id != context_id:
            return jsonify(error="line item not found"), 404
        user_filter = request.args.get("user_id")
        item_url = self._item_url(context_id, number)
        with self._lock:
            results = [
                {
                    "id": f"{item_url.split('?')[0]}/results/{user_id}",
                    "scoreOf": item_url,
                    "userId": user_id,
                    "resultScore": score,
                    "resultMaximum": maximum,
                }
                for user_id, (score, maximum) in sorted(item.results.items())
                if user_filter is None or user_id == user_filter
            ]
        return self._page(results, RESULT_CONTAINER_TYPE)

    def _scores_view(self, context_id: str, number: int):
        denied = self._authorize("scores", (SCOPE_SCORE,))
        if denied is not None:
            return denied

        item = self._line_items.get(number)
        if item is None or item.context_id != context_id:
            return jsonify(error="line item not found"), 404
        if request.mimetype != SCORE_TYPE:
            return jsonify(error=f"Content-Type must be {SCORE_TYPE}"), 415
        score = request.get_json(silent=True) or {}
        given, maximum = score.get("scoreGiven"), score.get("scoreMaximum")
        user_id = score.get("userId")
        if not isinstance(user_id, str) or not isinstance(maximum, (int, float)):
            return jsonify(error="userId and scoreMaximum are required"), 400
        if isinstance(given, (int, float)) and maximum > 0:
            with self._lock:
                item.results[user_id] = (
                    given / maximum * item.score_maximum,
                    float(item.score_maximum),
                )
        return Response(status=204)

    def _authorize(self, kind: str, scopes: tuple[str, ...]):
        with self._lock:
            self.requests.append((kind, request.headers.get("Accept", "")))
        fault = self._take_fault(kind)
        if fault is not None:
            return fault

        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            granted = self._tokens.get(token)
        if granted is None or granted[1] < time.time():
            return jsonify(error="invalid_token"), 401
        if not any(scope in granted[0] for scope in scopes):
            return jsonify(error="insufficient_scope"), 403
        return None

    def _take_fault(self, kind: str):
        with self._lock:
            queue = self._faults.get(kind) or []
            fault = queue.pop(0) if queue else None
        if fault is None:
            return None
        return Response(
            fault.body,
            status=fault.status,
            headers=fault.headers,
            content_type="application/json",
        )

    def _page(self, items: list[dict], media_type: str):
        try:
            limit = _paging_number("limit", self.page_size, 1, PAGE_LIMIT_MAX)
            offset = _paging_number("offset", 0, 0, ROW_ID_MAX)
        except ValueError as error:
            return jsonify(error=str(error)), 400
        response = jsonify(items[offset : offset + limit])
        response.content_type = media_type
        if offset + limit < len(items):
            query = request.args.to_dict()
            query.update(limit=str(limit), offset=str(offset + limit))
            following = f"{request.base_url}?{urlencode(query)}"
            response.headers["Link"] = f'<{following}>; rel="Next"'
        return response

    def _item_url(self, context_id: str, number: int) -> str:
        return f"{self.base_url}/ags/{context_id}/lineitems/{number}/lineitem?type_id=1"

    def _item_by_url(self, lineitem_url: str) -> _LineItem:
        for item in self._line_items.values():
            if self._item_url(item.context_id, item.number) == lineitem_url:
                return item
        raise KeyError(f"no line item has the URL {lineitem_url!r}")

    def _item_json(self, item: _LineItem) -> dict:
        body = {
            "id": self._item_url(item.context_id, item.number),
            "label": item.label,
            "scoreMaximum": item.score_maximum,
        }
        if item.resource_link_id:
            body["resourceLinkId"] = item.resource_link_id
        if item.tag:
            body["tag"] = item.tag
        return body


def _paging_number(name: str, default: int, minimum: int, maximum: int) -> int:
    """Read the query parameter `name` as a whole number from `minimum` to `maximum`,
    or return `default` when the request has no such parameter.

    Raises ValueError, with a message for the client, for a sign, a fraction, any
    other text or a number out of range.
    """
    text = request.args.get(name)
    if text is None:
        return default
    number = parse_row_id(text)
    if number is None or not minimum <= number <= maximum:
        raise ValueError(
            f"invalid {name} {shortened(text)!r}: "
            f"expected a whole number from {minimum} to {maximum}"
        )
    return number


def _oauth_error(status: int, error: str):
    return jsonify(error=error), status
