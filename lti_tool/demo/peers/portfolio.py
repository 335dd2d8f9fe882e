"""A demo portfolio (wallet) that receives badges through the Open Badges 3.0 API.

It implements the API's `upsertCredential` operation,
`POST {base}/ims/ob/v3p0/credentials`, and checks every request against the OB 3.0
API OpenAPI document shipped in `connectors/hpass/openapi/ob3-api.yaml`, using
openapi-core. The body is an AchievementCredential as `application/json` or a
VC-JWT in compact JWS form as `text/plain`. A new credential id gets 201 and a known
one 200 (replaced), both with the credential sent as the body. Errors use the
document's Imsx_StatusInfo shape.

The document secures the operation with OAuth 2.0, and the peer implements the
parts a client uses (see `lti_tool.demo.peers.portfolio_oauth`). These are the
Service Description Document at `{base}/ims/ob/v3p0/discovery`, dynamic client
registration (RFC 7591), a consent page that requires PKCE S256, and the token
endpoint with refresh. Upserts accept the
access tokens it issued and also one fixed bearer token configured at start.

On every upsert, as a wallet does, it reads the credential's revocation status
from the `BitstringStatusListEntry` in its `credentialStatus` and stores it with
the credential: `valid`, `revoked`, `unknown` (the list could not be read) or
`not_checked` (no status entry it understands). The OB 3.0 API has no revoke
operation, so an issuer that revokes a credential upserts it again and the
portfolio reads the status anew.

For tests it keeps a log of every upsert request and can fail, rate-limit or
delay the next requests (`fail_next`, `delay_next`) and revoke every token it
issued (`revoke_tokens`). `/` lists the received badges and their status as HTML,
with a link on each credential id that is an http(s) URL, and
`GET /api/credentials` returns them as JSON.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import functools
import hmac
import json
import logging
import threading
import time
import typing as t
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urlsplit

import requests
import yaml
from flask import Flask, Response, jsonify, render_template_string, request
from openapi_core import OpenAPI
from openapi_core.contrib.flask import FlaskOpenAPIRequest
from openapi_core.datatypes import RequestParameters

from badge_engine.status import (
    BITSTRING_ENTRY_TYPE,
    InvalidStatusList,
    status_bit,
)
from lti_tool.demo.peers.page_policy import add_page_policy
from lti_tool.demo.peers.portfolio_oauth import OAuthServer
from lti_tool.demo.peers.serving import (
    RunningServer,
    peer_app,
    require_loopback_url,
    serve_in_thread,
)

logger = logging.getLogger(__name__)

API_BASE_PATH = "/ims/ob/v3p0"
UPSERT_PATH = f"{API_BASE_PATH}/credentials"
DEFAULT_SYSTEM_NAME = "hpass-demo-portfolio"

# Imsx_CodeMinorField values for the HTTP error statuses this peer returns.
CODE_MINOR_BY_STATUS = {
    400: "invalid_data",
    401: "unauthorizedrequest",
    403: "forbidden",
    404: "not_found",
    405: "not_allowed",
    429: "server_busy",
    500: "internal_server_error",
    503: "server_busy",
}
MAX_REPORTED_SCHEMA_ERRORS = 5

# The revocation status stored with each credential.
STATUS_VALID = "valid"
STATUS_REVOKED = "revoked"
STATUS_UNKNOWN = "unknown"
STATUS_NOT_CHECKED = "not_checked"
STATUS_LIST_TIMEOUT_SECONDS = 5.0

# Fetches the JSON document at a URL; raises on any failure.
DocumentFetcher = t.Callable[[str], t.Any]


class _UnmountedRequest(FlaskOpenAPIRequest):
    """The request as the OpenAPI document sees it, without the path the peer is
    mounted under (the demo serves it at /demo/portfolio beside the bridge)."""

    def get_path(self, path: str) -> str:
        return path


@functools.lru_cache(maxsize=None)
def load_ob3_api() -> OpenAPI:
    """Load the OB 3.0 API document for request validation.

    Two changes to an in-memory copy make it usable here. The server URL becomes
    the relative base path, so a request to any loopback port matches. The
    operations' OAuth 2.0 security requirements are removed, because openapi-core
    cannot check OAuth 2.0 and the peer checks its bearer token itself.
    """
    document_path = resources.files("connectors") / "hpass/openapi/ob3-api.yaml"
    document = yaml.safe_load(document_path.read_text(encoding="utf-8"))
    document["servers"] = [{"url": API_BASE_PATH}]
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)

    return OpenAPI.from_dict(document)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request to the upsert endpoint and the status of its response."""

    content_type: str | None
    status: int
    credential_id: str | None
    received_at: float


@dataclass
class StoredCredential:
    """A stored credential, with the compact JWS it arrived as, if any."""

    credential_id: str
    credential: dict[str, t.Any]
    compact_jws: str | None
    received_at: float
    replaced_count: int = 0
    # The revocation status read at the last upsert, and why when it is unknown.
    status: str = STATUS_NOT_CHECKED
    status_detail: str = ""


@dataclass
class _Faults:
    fail_remaining: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    delay_remaining: int = 0
    delay_seconds: float = 0.0
    wake: threading.Event = field(default_factory=threading.Event)


class UpsertError(Exception):
    """A rejected upsert, returned as Imsx_StatusInfo with HTTP `status`."""

    def __init__(
        self, status: int, description: str, retry_after: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


@dataclass
class _JsonBodyRequest:
    """A synthetic upsert request, used to check a VC-JWT's decoded payload.

    It follows openapi-core's request protocol, so the payload is validated
    against the same AchievementCredential schema as a JSON body.
    """

    body: bytes
    host_url: str = "http://127.0.0.1"
    path: str = UPSERT_PATH
    method: str = "post"
    content_type: str = "application/json"
    parameters: RequestParameters = field(default_factory=RequestParameters)


class PortfolioPeer:
    """A wallet that accepts OB 3.0 upserts authorized by `bearer_token`."""

    def __init__(
        self,
        bearer_token: str,
        *,
        system_name: str = DEFAULT_SYSTEM_NAME,
        fetch_document: DocumentFetcher | None = None,
        page_links: t.Sequence[tuple[str, str]] = (),
    ) -> None:
        """`fetch_document` reads status lists; the default is an HTTP GET that
        accepts only loopback URLs. `page_links` (label, URL) head the index page."""
        if not bearer_token:
            raise ValueError("bearer_token must be a non-empty string")

        self.bearer_token = bearer_token
        self.system_name = system_name
        self.page_links = tuple(page_links)
        self._fetch_document = fetch_document or fetch_loopback_json
        self._api = load_ob3_api()
        self._lock = threading.Lock()
        self._credentials: dict[str, StoredCredential] = {}
        self._log: list[ReceivedRequest] = []
        self._faults = _Faults()
        self.oauth = OAuthServer(api_base_path=API_BASE_PATH, title=system_name)

    @property
    def received_count(self) -> int:
        """Number of upsert requests received, whatever their response status."""
        with self._lock:
            return len(self._log)

    @property
    def request_log(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._log)

    def credentials(self) -> list[dict[str, t.Any]]:
        """Return copies of the stored credentials, oldest first."""
        with self._lock:
            stored = list(self._credentials.values())

        return [copy.deepcopy(item.credential) for item in stored]

    def stored_credential(self, credential_id: str) -> StoredCredential | None:
        with self._lock:
            return self._credentials.get(credential_id)

    def statuses(self) -> dict[str, str]:
        """Return the revocation status of each stored credential, by credential id."""
        with self._lock:
            return {key: item.status for key, item in self._credentials.items()}

    def revoke_tokens(self) -> None:
        """Revoke every access and refresh token issued so far, as a learner would."""
        self.oauth.revoke_all()

    def fail_next(
        self, n: int = 1, status: int = 500, retry_after: str | None = None
    ) -> None:
        """Respond to the next `n` upserts with `status` and store nothing.

        `retry_after` is sent as the Retry-After header (seconds or an HTTP date).
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status}")

        with self._lock:
            self._faults.fail_remaining = n
            self._faults.fail_status = status
            self._faults.retry_after = retry_after

    def delay_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """Hold each of the next `n` upserts for `seconds` before handling it.

        A client with a shorter timeout gets a timeout error. The request is still
        handled afterwards, as on a slow real server, so the credential may be
        stored anyway.
        """
        if n < 0 or seconds < 0:
            raise ValueError(
                f"n and seconds must be 0 or more, got n={n}, seconds={seconds}"
            )

        with self._lock:
            self._faults.delay_remaining = n
            self._faults.delay_seconds = seconds

    def reset(self) -> None:
        """Forget credentials, the request log and pending faults; end any delay."""
        with self._lock:
            self._faults.wake.set()
            self._faults = _Faults()
            self._credentials.clear()
            self._log.clear()
        self.oauth.revoke_all()

    def snapshot(self) -> dict[str, t.Any]:
        """Return the stored credentials as JSON-ready data, for `restore` later."""
        with self._lock:
            return {
                "credentials": [
                    dataclasses.asdict(item) for item in self._credentials.values()
                ]
            }

    def restore(self, state: dict[str, t.Any]) -> None:
        """Take back the credentials a `snapshot` returned."""
        with self._lock:
            for item in state["credentials"]:
                stored = StoredCredential(**item)
                self._credentials[stored.credential_id] = stored

    def create_app(self) -> Flask:
        """Build the portfolio's Flask app; it reads this object's state per request."""
        app = peer_app(__name__, "portfolio")
        app.add_url_rule(UPSERT_PATH, "upsert", self._upsert_view, methods=["POST"])
        app.add_url_rule("/", "index", self._index_view)
        app.add_url_rule("/api/credentials", "list_credentials", self._list_view)
        self.oauth.add_routes(app)
        # English-only gettext, so the index page's {% trans %} blocks choose the
        # singular or the plural form by count.
        app.jinja_env.add_extension("jinja2.ext.i18n")
        app.jinja_env.install_null_translations(newstyle=True)
        app.register_error_handler(404, self._http_error)
        app.register_error_handler(405, self._http_error)
        add_page_policy(app)

        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve the portfolio in a background thread.

        The upsert endpoint is the returned server's `url` + UPSERT_PATH.
        """
        return serve_in_thread(self.create_app(), host=host, port=port)

    def imsx_status(self, status: int, description: str) -> dict[str, t.Any]:
        """Build an Imsx_StatusInfo object for an error response."""
        code_minor = CODE_MINOR_BY_STATUS.get(status, "unknown")

        return {
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": description,
            "imsx_codeMinor": {
                "imsx_codeMinorField": [
                    {
                        "imsx_codeMinorFieldName": self.system_name,
                        "imsx_codeMinorFieldValue": code_minor,
                    }
                ]
            },
        }

    def _upsert_view(self) -> Response:
        received_at = time.time()
        fail_status, retry_after = self._take_faults()
        credential_id = None

        try:
            if fail_status is not None:
                raise UpsertError(
                    fail_status,
                    f"simulated failure (HTTP {fail_status}) for testing",
                    retry_after,
                )
            self._check_bearer_token()
            credential, compact_jws = self._read_credential()
            credential_id = credential["id"]
            revocation_status, detail = self.read_status(credential)
            created = self._store(
                credential,
                compact_jws,
                received_at,
                status=revocation_status,
                detail=detail,
            )
        except UpsertError as error:
            self._record(error.status, credential_id, received_at)
            logger.info("upsert rejected with HTTP %s: %s", error.status, error)

            response = self._error_response(error.status, error.description)
            if error.retry_after is not None:
                response.headers["Retry-After"] = error.retry_after
            return response

        status = 201 if created else 200
        self._record(status, credential_id, received_at)
        logger.info(
            "credential %s %s, status %s",
            credential_id,
            "created" if created else "replaced",
            revocation_status,
        )
        if compact_jws is not None:
            return Response(compact_jws, status=status, mimetype="text/plain")

        return Response(request.get_data(), status=status, mimetype="application/json")

    def _take_faults(self) -> tuple[int | None, str | None]:
        """Apply a pending delay, then return a pending failure and its Retry-After."""
        with self._lock:
            faults = self._faults
            delay = 0.0
            if faults.delay_remaining > 0:
                faults.delay_remaining -= 1
                delay = faults.delay_seconds
            fail_status = None
            if faults.fail_remaining > 0:
                faults.fail_remaining -= 1
                fail_status = faults.fail_status

        if delay:
            faults.wake.wait(delay)

        return fail_status, faults.retry_after

    def _check_bearer_token(self) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UpsertError(
                401,
                "missing bearer token; send 'Authorization: Bearer <access token>'",
            )
        token = token.strip()
        if hmac.compare_digest(token.encode(), self.bearer_token.encode()):
            return
        problem = self.oauth.check_access_token(token)
        if problem is not None:
            raise UpsertError(401, problem)

    def _read_credential(self) -> tuple[dict[str, t.Any], str | None]:
        """Validate the request against the OpenAPI document; return the credential.

        Returns (credential, compact JWS or None). A VC-JWT's payload is decoded
        and validated as an AchievementCredential too.
        """
        self._validate(_UnmountedRequest(request))

        if request.mimetype == "text/plain":
            compact_jws = request.get_data(as_text=True).strip()
            credential = _decode_vc_jwt(compact_jws)
            self._validate(_JsonBodyRequest(body=json.dumps(credential).encode()))

            return credential, compact_jws

        return json.loads(request.get_data()), None

    def _validate(self, openapi_request: t.Any) -> None:
        result = self._api.unmarshal_request(openapi_request)
        if result.errors:
            raise UpsertError(400, _describe_errors(result.errors))

    def read_status(self, credential: dict[str, t.Any]) -> tuple[str, str]:
        """Read the credential's revocation status from its bitstring status list.

        Returns the status and, unless it is valid, why. The first
        `BitstringStatusListEntry` for revocation decides.

        NOTE: the status list's signature is not verified, as the credential's
        is not, because the demo portfolio cannot resolve the issuer's keys.
        """
        entries = credential.get("credentialStatus")
        entries = entries if isinstance(entries, list) else [entries]
        entry = next(
            (
                item
                for item in entries
                if isinstance(item, dict)
                and item.get("type") == BITSTRING_ENTRY_TYPE
                and item.get("statusPurpose") == "revocation"
            ),
            None,
        )
        if entry is None:
            return STATUS_NOT_CHECKED, "no BitstringStatusListEntry for revocation"

        list_url = entry.get("statusListCredential")
        index = entry.get("statusListIndex")
        if not isinstance(list_url, str) or not (
            isinstance(index, str) and index.isdigit()
        ):
            return STATUS_UNKNOWN, "the status entry has no list URL or index"
        try:
            status_list = self._fetch_document(list_url)
            subject = status_list.get("credentialSubject") or {}
            revoked = status_bit(subject.get("encodedList"), int(index))
        except (InvalidStatusList, requests.RequestException, ValueError) as error:
            logger.warning("reading status list %s failed: %s", list_url, error)
            return STATUS_UNKNOWN, f"reading {list_url} failed: {error}"
        except AttributeError:
            return STATUS_UNKNOWN, f"{list_url} is not a status list credential"

        if revoked:
            return STATUS_REVOKED, f"bit {index} of {list_url} is set"
        return STATUS_VALID, ""

    def _store(
        self,
        credential: dict[str, t.Any],
        compact_jws: str | None,
        received_at: float,
        *,
        status: str,
        detail: str,
    ) -> bool:
        """Store by credential id; return True for a new id, False for a replacement."""
        credential_id = credential["id"]
        with self._lock:
            existing = self._credentials.get(credential_id)
            if existing is None:
                self._credentials[credential_id] = StoredCredential(
                    credential_id,
                    credential,
                    compact_jws,
                    received_at,
                    status=status,
                    status_detail=detail,
                )
                return True

            existing.credential = credential
            existing.compact_jws = compact_jws
            existing.replaced_count += 1
            existing.status = status
            existing.status_detail = detail

            return False

    def _record(
        self, status: int, credential_id: str | None, received_at: float
    ) -> None:
        entry = ReceivedRequest(
            content_type=request.content_type,
            status=status,
            credential_id=credential_id,
            received_at=received_at,
        )
        with self._lock:
            self._log.append(entry)

    def _error_response(self, status: int, description: str) -> Response:
        response = jsonify(self.imsx_status(status, description))
        response.status_code = status
        if status == 401:
            challenge = f'Bearer realm="{self.system_name}"'
            response.headers["WWW-Authenticate"] = challenge

        return response

    def _http_error(self, error: t.Any) -> Response:
        description = f"{error.name}: {request.method} {request.path}"
        if error.code == 405 and request.path == UPSERT_PATH:
            description = (
                f"{request.method} is not implemented here; this portfolio "
                "implements only POST (upsertCredential)"
            )

        logger.info("request rejected with HTTP %s: %s", error.code, description)

        return self._error_response(error.code, description)

    def _list_view(self) -> Response:
        credentials = self.credentials()

        return jsonify(
            {
                "count": len(credentials),
                "credentials": credentials,
                "statuses": self.statuses(),
            }
        )

    def _index_view(self) -> str:
        statuses = self.statuses()
        rows = []
        for credential in self.credentials():
            row = _summarize(credential)
            row["status"] = STATUS_LABELS.get(statuses.get(row["id"], ""), "")
            rows.append(row)

        return render_template_string(
            INDEX_TEMPLATE,
            rows=rows,
            received_count=self.received_count,
            page_links=self.page_links,
        )


def fetch_loopback_json(url: str) -> t.Any:
    """GET a JSON document from a loopback URL, following no redirects.

    Raises ValueError for another host or a non-JSON body, and
    requests.RequestException for a failed request or an error status.
    """
    require_loopback_url(url, "statusListCredential")
    response = requests.get(
        url,
        timeout=STATUS_LIST_TIMEOUT_SECONDS,
        allow_redirects=False,
        headers={"Accept": "application/json"},
    )
    response.raise_for_status()

    return response.json()


def _decode_vc_jwt(compact_jws: str) -> dict[str, t.Any]:
    """Return the credential in a VC-JWT payload.

    NOTE: the signature is not verified, because the demo portfolio has no way
    to resolve the issuer's keys; it checks the payload's shape only.
    """
    payload_part = compact_jws.split(".")[1]
    try:
        padded = payload_part + "=" * (-len(payload_part) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as error:
        raise UpsertError(
            400, f"the compact JWS payload is not base64url-encoded JSON: {error}"
        ) from None
    if not isinstance(payload, dict):
        raise UpsertError(400, "the compact JWS payload must be a JSON object")

    # OB 3.0 puts the credential's properties at the top level of the payload;
    # the older VC 1.1 JWT encoding nests them in a "vc" claim.
    credential = payload.get("vc") if isinstance(payload.get("vc"), dict) else payload
    credential = dict(credential)
    if "id" not in credential and isinstance(payload.get("jti"), str):
        credential["id"] = payload["jti"]

    return credential


def _describe_errors(errors: t.Iterable[Exception]) -> str:
    """Build one message from openapi-core errors, naming each failing JSON path."""
    messages = []
    for error in errors:
        messages.extend(_error_messages(error))

    reported = messages[:MAX_REPORTED_SCHEMA_ERRORS]
    summary = "; ".join(reported)
    if len(messages) > len(reported):
        summary += f"; and {len(messages) - len(reported)} more"

    return (
        f"the request does not match the OB 3.0 upsertCredential operation: {summary}"
    )


def _error_messages(error: BaseException) -> list[str]:
    # openapi-core wraps the jsonschema errors (with their paths) a few causes
    # deep; without any, the innermost cause names the problem best.
    messages = []
    innermost = error
    cause: BaseException | None = error
    while cause is not None:
        for schema_error in getattr(cause, "schema_errors", None) or ():
            path = ".".join(str(part) for part in schema_error.absolute_path)
            messages.append(f"{schema_error.message} at {path or 'the top level'}")
        innermost = cause
        cause = cause.__cause__

    return messages or [str(innermost)]


def _summarize(credential: dict[str, t.Any]) -> dict[str, str | None]:
    subject = credential.get("credentialSubject") or {}
    achievement = subject.get("achievement") or {}
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer_name = issuer.get("name") or issuer.get("id", "")
    else:
        issuer_name = str(issuer or "")

    recipient = subject.get("id") or subject.get("name") or ""
    identifiers = subject.get("identifier") or []
    if not recipient and identifiers:
        recipient = identifiers[0].get("identityHash", "")

    credential_id = str(credential.get("id", ""))

    return {
        "id": credential_id,
        "url": _public_url(credential_id),
        "name": achievement.get("name") or credential.get("name", ""),
        "recipient": str(recipient),
        "issuer": str(issuer_name),
    }


def _public_url(credential_id: str) -> str | None:
    # A credential id that is an http(s) URL, as the bridge issues them, opens the
    # credential's public page. Other ids, such as urn:uuid:..., and any other scheme
    # (javascript: among them) get no link.
    parts = urlsplit(credential_id)
    if parts.scheme in ("http", "https") and parts.netloc:
        return credential_id

    return None


STATUS_LABELS = {
    STATUS_VALID: "Valid",
    STATUS_REVOKED: "Revoked by its issuer",
    STATUS_UNKNOWN: "Status unknown",
    STATUS_NOT_CHECKED: "Status not checked",
}

# The page stays in English under any ?lang=, like the Moodle stand-in and the demo
# platform, because it imitates a wallet whose language the bridge does not choose.
INDEX_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo portfolio</title></head>
<body>
{% if page_links %}<nav aria-label="Demo"><ul>
{% for label, url in page_links %}<li><a href="{{ url }}">{{ label }}</a></li>{% endfor %}
</ul></nav>{% endif %}
<h1>Demo portfolio</h1>
{% set badge_count = rows | length %}
<p>{% trans count=badge_count %}{{ count }} badge held;{% pluralize %}{{ count }} badges held;{% endtrans %}
   {% trans count=received_count %}{{ count }} upsert request received.{% pluralize %}{{ count }} upsert requests received.{% endtrans %}</p>
{% if rows %}
<table>
  <thead>
    <tr><th>Badge</th><th>Status</th><th>Recipient</th><th>Issuer</th>
        <th>Credential id</th></tr>
  </thead>
  <tbody>
  {% for row in rows %}
    <tr><td dir="auto">{{ row.name }}</td><td>{{ row.status }}</td>
        <td dir="auto">{{ row.recipient }}</td><td dir="auto">{{ row.issuer }}</td>
        <td>{% if row.url %}<a href="{{ row.url }}">{{ row.id }}</a>{% else %}{{ row.id }}{% endif %}</td></tr>
  {% endfor %}
  </tbody>
</table>
{% else %}
<p>No badges yet.</p>
{% endif %}
</body>
</html>
"""
