"""The Open Badge Factory route: issue the provider's OBF badge to the learner's email.

Open Badge Factory (OBF) REST API v1, as its documentation describes it:

    POST {api}/v1/client/oauth2/token            client credentials -> access token
    GET  {api}/v1/badge/{client_id}/{badge_id}   one badge of the client's account
    POST {api}/v1/badge/{client_id}/{badge_id}   issue: 201, Location = the new event
    GET  {api}/v1/event/{client_id}?badge_id=&recipient=
                                                 events, one JSON object per line
    GET  {api}/v1/event/{client_id}/{event_id}/assertion
                                                 the event's assertions, one per line
    DELETE {api}/v1/event/{client_id}/{event_id} revoke every assertion of an event

OBF keeps its own copy of the badge, so the bridge records the OBF event id and
assertion URL on the delivery and passes revocations on. Issuing is not
idempotent on OBF's side, so before each issue the route looks for an event it
made earlier for the same credential (tagged in `log_entry`) and reuses it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from badge_engine.db import utcnow
from badge_engine.models import Learner
from connectors.hpass.errors import (
    DeliveryError,
    DeliveryRejected,
    PortfolioSetupError,
    TokenExpired,
)
from connectors.hpass.http import HttpResult, PortfolioHttp, check_portfolio_url
from connectors.hpass.models import ObfBadgeMapping, ObfConnection, RouteName
from connectors.hpass.routes import DeliveryJob, RouteOutcome, register_route

TOKEN_PATH = "/v1/client/oauth2/token"  # noqa: S105 - a URL path, not a secret
LOG_ENTRY_KEY = "hpass_credential_id"
EXPIRY_MARGIN = timedelta(seconds=60)


def parse_json_lines(result: HttpResult, what: str) -> list[dict]:
    """Parse an OBF list response: one JSON object per line, blank lines skipped."""
    items = []
    for line in result.body.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise ValueError(f"{what} contains a line that is not JSON") from None
        if isinstance(item, dict):
            items.append(item)

    return items


class ObfClient:
    """Calls to one provider's OBF account; tokens are cached encrypted on the row."""

    def __init__(self, connection: ObfConnection, http: PortfolioHttp, vault) -> None:
        self.connection = connection
        self.http = http
        self.vault = vault
        self.base = connection.api_base_url.rstrip("/")

    def fetch_token(self) -> str:
        secret = self.vault.decrypt(
            self.connection.client_secret_encrypted, what="OBF client secret"
        ).decode()
        result = self.http.request(
            "POST",
            self.base + TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": self.connection.client_id,
                "client_secret": secret,
            },
        )
        body = _json_or_reject(result, "the OBF token response", self.http)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise DeliveryRejected(
                "the OBF token response has no access_token; check the client id and "
                "secret in the provider's OBF settings",
                portfolio_url=self.base,
                credential_id=self.http.credential_id,
            )
        expires_in = body.get("expires_in")
        self.connection.access_token_encrypted = self.vault.encrypt(token)
        self.connection.access_token_expires_at = (
            utcnow() + timedelta(seconds=int(expires_in))
            if isinstance(expires_in, (int, float))
            else None
        )

        return token

    def _token(self) -> str:
        connection = self.connection
        expires_at = connection.access_token_expires_at
        fresh = expires_at is None or expires_at - EXPIRY_MARGIN > utcnow()
        if connection.access_token_encrypted is not None and fresh:
            return self.vault.decrypt(
                connection.access_token_encrypted, what="OBF access token"
            ).decode()

        return self.fetch_token()

    def call(self, method: str, path: str, **kwargs) -> HttpResult:
        """Send one authorized request; a 401 fetches a new token once."""
        url = self.base + path
        try:
            return self._send(method, url, self._token(), **kwargs)
        except TokenExpired:
            pass
        try:
            return self._send(method, url, self.fetch_token(), **kwargs)
        except TokenExpired as error:
            raise DeliveryRejected(
                f"OBF rejected a new access token ({error}); check the provider's "
                "OBF client credentials",
                portfolio_url=self.base,
                credential_id=self.http.credential_id,
                http_status=401,
            ) from None

    def _send(self, method: str, url: str, token: str, **kwargs) -> HttpResult:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def find_event(self, badge_id: str, email: str, credential_id: str) -> str | None:
        """Return the id of an event issued earlier for `credential_id`, if any."""
        client_id = self.connection.client_id
        result = self.call(
            "GET",
            f"/v1/event/{client_id}",
            params={"badge_id": badge_id, "recipient": email},
        )
        try:
            events = parse_json_lines(result, "the OBF event list")
        except ValueError as error:
            raise DeliveryRejected(
                str(error), portfolio_url=self.base, credential_id=credential_id
            ) from None
        for event in events:
            log_entry = event.get("log_entry") or {}
            if not isinstance(log_entry, dict):
                continue
            if log_entry.get(LOG_ENTRY_KEY) == credential_id:
                return str(event.get("id"))

        return None

    def issue(self, badge_id: str, email: str, credential) -> str:
        """Issue the badge to `email`; return the new event's id from `Location`."""
        client_id = self.connection.client_id
        body = {
            "recipient": [email],
            "issued_on": int(credential.awarded_at.timestamp()),
            "log_entry": {LOG_ENTRY_KEY: credential.public_id},
            "api_consumer_id": "hpass-bridge",
            "send_email": 0,
        }
        result = self.call("POST", f"/v1/badge/{client_id}/{badge_id}", json=body)
        location = result.headers.get("Location", "")
        event_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if not location or not event_id:
            raise DeliveryRejected(
                f"OBF responded {result.status} to the issue request without a "
                "Location header naming the new event",
                portfolio_url=self.base,
                credential_id=credential.public_id,
                http_status=result.status,
            )

        return event_id

    def assertion_url(self, event_id: str, email: str) -> str | None:
        client_id = self.connection.client_id
        result = self.call("GET", f"/v1/event/{client_id}/{event_id}/assertion")
        try:
            assertions = parse_json_lines(result, "the OBF assertion list")
        except ValueError:
            return None
        for assertion in assertions:
            if assertion.get("email") in (None, email):
                return assertion.get("url") or assertion.get("id")

        return None

    def revoke_event(self, event_id: str) -> int:
        """Revoke an OBF event; return OBF's HTTP status."""
        result = self.call(
            "DELETE", f"/v1/event/{self.connection.client_id}/{event_id}"
        )
        return result.status


def _json_or_reject(result: HttpResult, what: str, http: PortfolioHttp):
    try:
        return result.json(what)
    except ValueError as error:
        raise DeliveryRejected(
            str(error),
            portfolio_url=http.portfolio_url,
            credential_id=http.credential_id,
        ) from None


class ObfRoute:
    name = RouteName.OBF.value

    def _setup(self, job: DeliveryJob) -> tuple[ObfClient, str, str]:
        credential = job.credential
        ids = {"portfolio_url": "", "credential_id": credential.public_id}
        connection = job.session.scalar(
            select(ObfConnection).where(
                ObfConnection.provider_id == credential.provider_id
            )
        )
        if connection is None:
            raise DeliveryRejected(
                "the provider has no Open Badge Factory connection; an admin adds "
                "the OBF client id and secret, then retries",
                **ids,
            )
        mapping = job.session.scalar(
            select(ObfBadgeMapping).where(
                ObfBadgeMapping.provider_id == credential.provider_id,
                ObfBadgeMapping.achievement_id == credential.achievement_id,
            )
        )
        if mapping is None:
            raise DeliveryRejected(
                f"achievement {credential.achievement_id} is not mapped to an OBF "
                "badge; an admin maps it, then retries",
                **ids,
            )
        learner = job.session.scalar(
            select(Learner).where(
                Learner.id == credential.learner_id,
                Learner.provider_id == credential.provider_id,
            )
        )
        if learner is None or not learner.email:
            raise DeliveryRejected(
                "OBF issues badges to an email address and the LMS gave none for "
                "this learner; the learner's email must be shared by the LMS",
                **ids,
            )
        http = PortfolioHttp(
            job.policy,
            portfolio_url=connection.api_base_url,
            credential_id=credential.public_id,
            timeout=(3.05, job.timeout_seconds),
        )

        client = ObfClient(connection, http, job.vault)

        return client, mapping.obf_badge_id, learner.email

    def deliver(self, job: DeliveryJob) -> RouteOutcome:
        client, badge_id, email = self._setup(job)
        credential = job.credential
        event_id = job.delivery.remote_id or client.find_event(
            badge_id, email, credential.public_id
        )
        status = 200
        if event_id is None:
            event_id = client.issue(badge_id, email, credential)
            status = 201
        # NOTE: the assertion URL is taken from the event's assertion list; when
        # OBF lists none yet, the delivery records the event URL instead.
        assertion = client.assertion_url(event_id, email)
        event_url = f"{client.base}/v1/event/{client.connection.client_id}/{event_id}"

        return RouteOutcome(
            http_status=status, remote_id=event_id, remote_url=assertion or event_url
        )

    def revoke(self, job: DeliveryJob) -> RouteOutcome | None:
        if not job.delivery.remote_id:
            return None
        client, _badge_id, _email = self._setup(job)
        status = client.revoke_event(job.delivery.remote_id)

        return RouteOutcome(http_status=status, remote_id=job.delivery.remote_id)


register_route(ObfRoute())


class ObfSetupError(ValueError):
    """The OBF settings an admin entered are invalid; the message names the fix."""


def connect_obf(
    session,
    vault,
    policy,
    *,
    provider_id: int,
    api_base_url: str,
    client_id: str,
    client_secret: str,
) -> ObfConnection:
    """Store a provider's OBF client after checking it gets a token; the caller commits.

    A second call replaces the provider's earlier client id and secret.
    """
    api_base_url = api_base_url.strip().rstrip("/")
    client_id, client_secret = client_id.strip(), client_secret.strip()
    if not client_id or not client_secret:
        raise ObfSetupError("the OBF client id and client secret are both required")
    try:
        check_portfolio_url(policy, api_base_url)
    except PortfolioSetupError as error:
        raise ObfSetupError(str(error)) from None

    # Check the client on an unsaved row first, so a failure writes nothing.
    candidate = ObfConnection(
        provider_id=provider_id,
        api_base_url=api_base_url,
        client_id=client_id,
        client_secret_encrypted=vault.encrypt(client_secret),
    )
    client = ObfClient(
        candidate, PortfolioHttp(policy, portfolio_url=api_base_url), vault
    )
    try:
        client.fetch_token()
    except DeliveryError as error:
        raise ObfSetupError(f"OBF did not accept the client: {error}") from None

    connection = session.scalar(
        select(ObfConnection).where(ObfConnection.provider_id == provider_id)
    )
    if connection is None:
        connection = ObfConnection(provider_id=provider_id)
        session.add(connection)
    for name in (
        "api_base_url",
        "client_id",
        "client_secret_encrypted",
        "access_token_encrypted",
        "access_token_expires_at",
    ):
        setattr(connection, name, getattr(candidate, name))
    session.flush()

    return connection


def map_obf_badge(
    session, vault, policy, *, provider_id: int, achievement_id: int, obf_badge_id: str
) -> ObfBadgeMapping:
    """Map an achievement to an OBF badge after checking OBF has that badge."""
    connection = session.scalar(
        select(ObfConnection).where(ObfConnection.provider_id == provider_id)
    )
    if connection is None:
        raise ObfSetupError("connect the provider's OBF client before mapping badges")
    obf_badge_id = obf_badge_id.strip()
    client = ObfClient(
        connection, PortfolioHttp(policy, portfolio_url=connection.api_base_url), vault
    )
    try:
        client.call("GET", f"/v1/badge/{connection.client_id}/{obf_badge_id}")
    except DeliveryError as error:
        raise ObfSetupError(
            f"OBF badge {obf_badge_id!r} could not be read: {error}"
        ) from None

    mapping = session.scalar(
        select(ObfBadgeMapping).where(
            ObfBadgeMapping.provider_id == provider_id,
            ObfBadgeMapping.achievement_id == achievement_id,
        )
    )
    if mapping is None:
        mapping = ObfBadgeMapping(
            provider_id=provider_id, achievement_id=achievement_id
        )
        session.add(mapping)
    mapping.obf_badge_id = obf_badge_id
    session.flush()

    return mapping
