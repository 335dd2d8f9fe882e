"""OAuth 2.0 for portfolios that speak the Open Badges 3.0 API.

The OB 3.0 API (1EdTech) requires a client to:

1. read the portfolio's Service Description Document at
   `{portfolio}/ims/ob/v3p0/discovery` (the `getServiceDescription` operation);
2. register itself by OAuth 2.0 Dynamic Client Registration (RFC 7591) at the
   `x-imssf-registrationUrl` the document names;
3. get the learner's consent by the authorization code grant with PKCE
   (RFC 7636, method S256);
4. refresh the access token with the refresh token (RFC 6749, section 6).

Every URL the document names must be on the portfolio's own origin: a document
that points elsewhere is rejected before anything is stored.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, TypeVar
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.vault import Vault
from connectors.hpass.errors import (
    DeliveryError,
    DeliveryNeedsConsent,
    DeliveryRejected,
    DeliveryRetryable,
    PortfolioSetupError,
    TokenExpired,
)
from connectors.hpass.http import PortfolioHttp, same_origin
from connectors.hpass.models import (
    AccountState,
    PortfolioAccount,
    PortfolioClient,
    RouteName,
)

DISCOVERY_PATH = "/ims/ob/v3p0/discovery"
SCOPE_UPSERT = "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert"
# Tokens that expire within this margin are refreshed before use.
EXPIRY_MARGIN = timedelta(seconds=60)

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceDescription:
    """The parts of a discovery document (or Badge Connect manifest) the bridge uses."""

    name: str
    api_base_url: str
    registration_url: str
    authorization_url: str
    token_url: str
    scope: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int | None


def _setup_error(
    portfolio_url: str, message: str, unreachable: bool = False
) -> PortfolioSetupError:
    return PortfolioSetupError(
        message, portfolio_url=portfolio_url, unreachable=unreachable
    )


def _json_object(http: PortfolioHttp, method: str, url: str, what: str, **kwargs):
    try:
        result = http.request(method, url, **kwargs)
        body = result.json(what)
    except (DeliveryError, ValueError) as error:
        raise _setup_error(
            http.portfolio_url,
            f"{what} failed: {error}",
            unreachable=isinstance(error, DeliveryRetryable),
        ) from None
    if not isinstance(body, dict):
        raise _setup_error(http.portfolio_url, f"{what} is not a JSON object")

    return body


def _require_same_origin(portfolio_url: str, url: Any, field: str) -> str:
    if not isinstance(url, str) or not url:
        raise _setup_error(portfolio_url, f"the discovery document has no {field}")
    if not same_origin(url, portfolio_url):
        raise _setup_error(
            portfolio_url,
            f"the discovery document names {field} {url}, which is not on "
            f"{portfolio_url}; the bridge calls only the portfolio's own host",
        )

    return url


def discover_ob3(http: PortfolioHttp) -> ServiceDescription:
    """Read and check the OB 3.0 Service Description Document of `http.portfolio_url`."""
    portfolio_url = http.portfolio_url.rstrip("/")
    document = _json_object(
        http, "GET", portfolio_url + DISCOVERY_PATH, "reading the discovery document"
    )
    try:
        scheme = document["components"]["securitySchemes"]["OAuth2ACG"]
        flow = scheme["flows"]["authorizationCode"]
        if not isinstance(scheme, dict) or not isinstance(flow, dict):
            raise TypeError("the OAuth2ACG scheme and its flow must be JSON objects")
        servers = document.get("servers") or [{"url": portfolio_url + "/ims/ob/v3p0"}]
        api_url = servers[0]["url"]
        name = document["info"]["title"]
    except (KeyError, TypeError, IndexError):
        raise _setup_error(
            portfolio_url,
            "the discovery document lacks components.securitySchemes.OAuth2ACG with "
            "an authorizationCode flow, or info.title; it is not an OB 3.0 "
            "Service Description Document",
        ) from None
    scopes = flow.get("scopes") or {}
    if SCOPE_UPSERT not in scopes:
        raise _setup_error(
            portfolio_url,
            f"the portfolio does not offer the scope {SCOPE_UPSERT}, so the bridge "
            "cannot send credentials to it",
        )

    api_base = _require_same_origin(portfolio_url, api_url, "the API server")
    # The API base is the server URL without the version path the client adds.
    api_base = api_base.rstrip("/").removesuffix("/ims/ob/v3p0")

    return ServiceDescription(
        name=str(name)[:200],
        api_base_url=api_base,
        registration_url=_require_same_origin(
            portfolio_url, scheme.get("x-imssf-registrationUrl"), "registrationUrl"
        ),
        authorization_url=_require_same_origin(
            portfolio_url, flow.get("authorizationUrl"), "authorizationUrl"
        ),
        token_url=_require_same_origin(portfolio_url, flow.get("tokenUrl"), "tokenUrl"),
        scope=SCOPE_UPSERT,
    )


def register_client(
    http: PortfolioHttp,
    description: ServiceDescription,
    *,
    client_name: str,
    client_uri: str,
    redirect_uri: str,
) -> tuple[str, str | None]:
    """Register the bridge by RFC 7591; return (client_id, client_secret or None)."""
    metadata = {
        "client_name": client_name,
        "client_uri": client_uri,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": description.scope,
        "software_id": "hpass-bridge",
    }
    answer = _json_object(
        http,
        "POST",
        description.registration_url,
        "registering the bridge as an OAuth client",
        json=metadata,
    )
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise _setup_error(
            http.portfolio_url, "the client registration response has no client_id"
        )

    return client_id, answer.get("client_secret")


def find_or_register_client(
    session: Session,
    vault: Vault,
    http: PortfolioHttp,
    *,
    provider_id: int,
    provider_name: str,
    client_uri: str,
    redirect_uri: str,
    route: str = RouteName.OB3_API.value,
    discover: Callable[[PortfolioHttp], ServiceDescription] = discover_ob3,
) -> PortfolioClient:
    """Return this provider's client at the portfolio, registering it the first time."""
    portfolio_url = http.portfolio_url.rstrip("/")
    client = session.scalar(
        select(PortfolioClient).where(
            PortfolioClient.provider_id == provider_id,
            PortfolioClient.route == route,
            PortfolioClient.portfolio_url == portfolio_url,
        )
    )
    if client is not None:
        return client

    description = discover(http)
    client_id, client_secret = register_client(
        http,
        description,
        client_name=provider_name,
        client_uri=client_uri,
        redirect_uri=redirect_uri,
    )
    client = PortfolioClient(
        provider_id=provider_id,
        route=route,
        portfolio_url=portfolio_url,
        name=description.name,
        api_base_url=description.api_base_url,
        authorization_url=description.authorization_url,
        token_url=description.token_url,
        scope=description.scope,
        client_id=client_id,
        client_secret_encrypted=vault.encrypt(client_secret) if client_secret else None,
    )
    session.add(client)
    session.flush()

    return client


def make_pkce_pair() -> tuple[str, str]:
    """Return (code_verifier, S256 code_challenge) as RFC 7636 defines them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    return verifier, challenge


def authorization_url(
    client: PortfolioClient, *, state: str, code_challenge: str, redirect_uri: str
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": client.scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in client.authorization_url else "?"

    return client.authorization_url + separator + query


def _token_request(
    http: PortfolioHttp, client: PortfolioClient, vault: Vault, form: dict[str, str]
) -> TokenSet:
    """POST to the token endpoint; errors propagate as DeliveryError subclasses."""
    auth = None
    if client.client_secret_encrypted:
        secret = vault.decrypt(
            client.client_secret_encrypted, what="OAuth client secret"
        )
        auth = (client.client_id, secret.decode())
    else:
        form = {**form, "client_id": client.client_id}
    result = http.request("POST", client.token_url, data=form, auth=auth)
    try:
        body = result.json("the token endpoint's response")
    except ValueError as error:
        raise DeliveryRejected(
            str(error), portfolio_url=http.portfolio_url, credential_id=""
        ) from None
    access_token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access_token, str) or not access_token:
        raise DeliveryRejected(
            "the token endpoint's response has no access_token",
            portfolio_url=http.portfolio_url,
            credential_id="",
        )
    expires_in = body.get("expires_in")

    return TokenSet(
        access_token=access_token,
        refresh_token=body.get("refresh_token"),
        expires_in=(
            int(expires_in)
            if isinstance(expires_in, (int, float)) and math.isfinite(expires_in)
            else None
        ),
    )


def exchange_code(
    http: PortfolioHttp,
    client: PortfolioClient,
    vault: Vault,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
) -> TokenSet:
    """Trade an authorization code for tokens; raise PortfolioSetupError on failure."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    try:
        return _token_request(http, client, vault, form)
    except DeliveryError as error:
        raise _setup_error(
            http.portfolio_url, f"exchanging the authorization code failed: {error}"
        ) from None


def store_tokens(
    account: PortfolioAccount, vault: Vault, tokens: TokenSet, now: datetime
) -> None:
    account.access_token_encrypted = vault.encrypt(tokens.access_token)
    if tokens.refresh_token:
        account.refresh_token_encrypted = vault.encrypt(tokens.refresh_token)
    account.access_token_expires_at = (
        now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None
    )
    account.state = AccountState.LINKED.value
    account.state_detail = None


def delete_tokens(account: PortfolioAccount, detail: str, state: AccountState) -> None:
    account.access_token_encrypted = None
    account.refresh_token_encrypted = None
    account.access_token_expires_at = None
    account.state = state.value
    account.state_detail = detail


class AccountTokens:
    """The access token of one linked account, refreshed when it expires or fails.

    `call_with_token` refreshes at most once per call, so a revoked grant costs
    one refresh request, not a storm.
    """

    def __init__(
        self,
        session: Session,
        vault: Vault,
        http: PortfolioHttp,
        account: PortfolioAccount,
    ) -> None:
        self.session = session
        self.vault = vault
        self.http = http
        self.account = account

    def _needs_consent(self, reason: str) -> DeliveryNeedsConsent:
        delete_tokens(self.account, reason, AccountState.NEEDS_CONSENT)

        return DeliveryNeedsConsent(
            f"{reason}; the learner must link the portfolio again",
            portfolio_url=self.account.api_base_url,
            credential_id=self.http.credential_id,
        )

    def current(self) -> tuple[str, bool]:
        """Return the access token, refreshed first when it is about to expire.

        The flag is True when this call refreshed the token.
        """
        account = self.account
        if account.access_token_encrypted is None:
            raise DeliveryNeedsConsent(
                f"the portfolio link is {account.state}; the learner must link the "
                "portfolio again",
                portfolio_url=account.api_base_url,
                credential_id=self.http.credential_id,
            )
        expires_at = account.access_token_expires_at
        if expires_at is not None and expires_at - EXPIRY_MARGIN <= utcnow():
            return self.refresh(), True

        token = self.vault.decrypt(
            account.access_token_encrypted, what="portfolio access token"
        ).decode()

        return token, False

    def refresh(self) -> str:
        account = self.account
        client = self.session.get(PortfolioClient, account.client_id)
        if account.refresh_token_encrypted is None or client is None:
            raise self._needs_consent(
                "the access token expired and cannot be refreshed"
            )
        refresh_token = self.vault.decrypt(
            account.refresh_token_encrypted, what="portfolio refresh token"
        ).decode()
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            tokens = _token_request(self.http, client, self.vault, form)
        except (DeliveryRejected, TokenExpired) as error:
            raise self._needs_consent(
                f"the portfolio rejected the token refresh ({error})"
            ) from None
        store_tokens(account, self.vault, tokens, utcnow())

        return tokens.access_token

    def call_with_token(self, call: Callable[[str], T]) -> T:
        token, refreshed = self.current()
        if not refreshed:
            try:
                return call(token)
            except TokenExpired:
                token = self.refresh()
        try:
            return call(token)
        except TokenExpired as error:
            raise self._needs_consent(
                f"the portfolio rejected a freshly refreshed token ({error})"
            ) from None
