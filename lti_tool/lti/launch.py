"""Validation of an LTI 1.3 launch (the id_token posted to the launch URL).

The checks run in a fixed order, cheapest and most telling first, so a broken launch
is named by its first real fault:

    1. request shape      id_token present, at most 16 KiB, three JWT segments
    2. header             alg is an asymmetric algorithm (never none or HS*)
    3. registration       iss and aud (and azp) name this registration
    4. signature, times   key from the platform's JWKS, exp/iat/nbf with leeway
    5. claims             LTI version, message type, deployment id, sub, roles,
                          resource link, target_link_uri on this tool
    6. state binding      state cookie, or LTI Platform Storage binding
    7. nonce              signed by this tool, unexpired, single-use: recorded
                          in lti_used_nonces
    8. deployment         known, new (policy accept) or held for an admin

pylti1p3 checks most of 2 to 5 too, but fetches the key set on every launch, accepts
a used nonce again until its cache entry expires, and reports every failure as one exception
type; this chain carries the LTI ids in every error.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from sqlalchemy.orm import Session

from badge_engine.models import Learner
from lti_tool.lti import identity_text, nonces, roles
from lti_tool.lti.errors import (
    ClaimInvalid,
    DeploymentHeld,
    MalformedRequest,
    MessageNotSupported,
    PlatformUnreachable,
    RegistrationUnknown,
    StateInvalid,
    TokenInvalid,
    TokenTooLarge,
)
from lti_tool.lti.jwks import JwksCache, JwksUnavailable
from lti_tool.lti.row_cache import LaunchRowCache
from lti_tool.lti.transaction import LaunchTransaction
from lti_tool.models import Deployment, DeploymentStatus, LtiCourse, Registration

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
MAX_ID_TOKEN_BYTES = 16 * 1024
LTI_VERSION = "1.3.0"

RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
SUPPORTED_MESSAGES = (RESOURCE_LINK, DEEP_LINKING)

# Asymmetric algorithms only: HS* would let anyone holding the platform's public key
# sign tokens, and "none" signs nothing.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)
_KEY_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_ALGORITHM_OBJECTS = {
    name: jwt.get_algorithm_by_name(name) for name in ALLOWED_ALGORITHMS
}
# RFC 7515 base64url without padding; PyJWT also accepts up to two '=' at the end.
_BASE64URL_SEGMENT = re.compile(r"[A-Za-z0-9_-]*={0,2}\Z")
# Claims every LTI 1.3 id_token carries; a missing one rejects the launch.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "nonce")

STATE_COOKIE_PREFIX = "hpass_lti_state_"

# Custom parameters, in order of precedence, that name the LMS's own course and
# user ids when the context id or sub is not that id.
COURSE_ID_PARAMETERS = ("lms_course_id", "moodle_course_id", "canvas_course_id")
USER_ID_PARAMETERS = ("lms_user_id", "canvas_user_id")


def _column_length(column) -> int:
    return column.type.length


# The lengths of the columns that store launch claims, so a longer value gets a
# launch error instead of a failed database write.
DEPLOYMENT_ID_MAX = _column_length(Deployment.deployment_id)
CONTEXT_ID_MAX = _column_length(LtiCourse.lti_context_id)
CONTEXT_TITLE_MAX = _column_length(LtiCourse.title)
LMS_COURSE_ID_MAX = _column_length(LtiCourse.lms_course_id)
LMS_USER_ID_MAX = _column_length(Learner.lms_user_id)
LEARNER_NAME_MAX = _column_length(Learner.name)
LEARNER_EMAIL_MAX = _column_length(Learner.email)


def lms_id(claims: dict, parameters: tuple[str, ...], default: str) -> tuple[str, str]:
    """Return an LMS id of a launch and the claim it came from.

    The first of `parameters` set in the custom claim wins, and `default` names
    the claim used without one (`context.id` or `sub`).
    """
    custom = claims.get(CLAIM + "custom")
    custom = custom if isinstance(custom, dict) else {}
    for name in parameters:
        if custom.get(name):
            return str(custom[name]), f"custom {name}"

    if default == "sub":
        return str(claims["sub"]), "sub"
    return str(claims[CLAIM + "context"]["id"]), "context.id"


@dataclass
class LaunchRequest:
    """Launch request data, read from the form, cookies and headers."""

    id_token: str | None
    state: str | None
    state_cookie: str | None
    storage_binding: str | None = None
    origin: str | None = None


@dataclass
class ValidatedLaunch:
    registration: Registration
    claims: dict
    message_type: str
    deployment: Deployment

    @property
    def ids(self) -> dict:
        return {
            "registration": self.registration.public_id,
            "issuer": self.claims.get("iss"),
            "client_id": self.registration.client_id,
            "deployment_id": self.deployment.deployment_id,
        }


class NeedsPlatformStorage(Exception):
    """The state cookie is missing but the login used LTI Platform Storage.

    The view returns a page that reads the binding from platform storage and
    posts the launch again.
    """

    def __init__(self, storage_target: str) -> None:
        super().__init__(storage_target)
        self.storage_target = storage_target


class LaunchValidator:
    """Runs the ordered checks for one registration; `validate` returns the launch."""

    def __init__(
        self,
        session: Session | LaunchTransaction,
        registration: Registration,
        *,
        jwks_cache: JwksCache,
        row_cache: LaunchRowCache,
        state_signer: nonces.StateSigner,
        tool_base_url: str,
        leeway_seconds: float,
    ) -> None:
        self.session = session
        self.registration = registration
        self.state_signer = state_signer
        self.jwks_cache = jwks_cache
        self.row_cache = row_cache
        self.tool_base_url = tool_base_url.rstrip("/")
        self.leeway = leeway_seconds
        self.ids: dict = {"registration": registration.public_id}

    def validate(self, request: LaunchRequest) -> ValidatedLaunch:
        """Run every check; see `verify` and `accept` for the two halves."""
        claims, message_type = self.verify(request)
        return self.accept(request, claims, message_type)

    def verify(self, request: LaunchRequest) -> tuple[dict, str]:
        """Run checks 1 to 6, which read but never write the database.

        This half may fetch the platform's key set, so callers run it outside any
        database write lock.
        """
        token = self._check_shape(request.id_token)
        header, unverified = self._decode_unverified(token)
        self._check_header(header)
        self._check_registration(unverified)
        claims = self._verify(token, header, unverified)
        message_type = self._check_claims(claims)
        self._check_state_binding(request)

        return claims, message_type

    def accept(
        self, request: LaunchRequest, claims: dict, message_type: str
    ) -> ValidatedLaunch:
        """Run checks 7 and 8: use the nonce and resolve the deployment."""
        self.use_nonce(request, claims)
        return self.resolve(claims, message_type)

    def use_nonce(self, request: LaunchRequest, claims: dict) -> None:
        """Run check 7: record the launch's nonce as used, or reject a replay.

        The insert joins the session's transaction, and the caller commits it.
        """
        nonces.consume(
            self.session.connection(),
            self.state_signer,
            self.registration,
            request.state,
            claims.get("nonce", ""),
            **self.ids,
        )

    def resolve(self, claims: dict, message_type: str) -> ValidatedLaunch:
        """Run check 8: resolve the deployment, adding it when it is new."""
        deployment = self._resolve_deployment(claims[CLAIM + "deployment_id"])
        return ValidatedLaunch(self.registration, claims, message_type, deployment)

    def _check_shape(self, id_token: str | None) -> str:
        if not id_token:
            raise MalformedRequest(
                "the launch has no id_token",
                check="the tool's redirect URI (launch URL) in the platform must be "
                "the launch URL shown for this registration, and the platform must "
                "post the launch form to it",
                **self.ids,
            )
        if len(id_token) > MAX_ID_TOKEN_BYTES:
            raise TokenTooLarge(
                f"the id_token is {len(id_token)} bytes long, more than the "
                f"{MAX_ID_TOKEN_BYTES} this tool accepts",
                check="remove large custom parameters from the tool placement",
                **self.ids,
            )
        if id_token.count(".") != 2:
            raise MalformedRequest(
                "the id_token is not a JWT (three dot-separated parts)",
                check="the platform must post its signed id_token unchanged",
                **self.ids,
            )
        return id_token

    def _decode_unverified(self, token: str) -> tuple[dict, dict]:
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            for segment in (header_b64, payload_b64, signature_b64):
                if _BASE64URL_SEGMENT.match(segment) is None:
                    raise ValueError("not base64url")
            header = json.loads(_b64decode(header_b64))
            payload = json.loads(_b64decode(payload_b64))
        except (ValueError, UnicodeDecodeError):
            raise MalformedRequest(
                "the id_token's header or payload is not base64url-encoded JSON",
                check="the platform must post its signed id_token unchanged",
                **self.ids,
            ) from None
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise MalformedRequest(
                "the id_token's header and payload must be JSON objects",
                check="the platform must post its signed id_token unchanged",
                **self.ids,
            )

        self.ids["issuer"] = _text(payload.get("iss"))
        aud = payload.get("aud")
        self.ids["client_id"] = _text(aud) if isinstance(aud, str) else None
        self.ids["deployment_id"] = _text(payload.get(CLAIM + "deployment_id"))
        return header, payload

    def _check_header(self, header: dict) -> None:
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenInvalid(
                f"the id_token is signed with algorithm {alg!r}, which this tool does "
                f"not accept; allowed: {', '.join(ALLOWED_ALGORITHMS)}",
                check="the platform's signing key must be an RSA or EC key; a forged "
                "or tampered launch also ends here",
                **self.ids,
            )

    def _check_registration(self, payload: dict) -> None:
        registration = self.registration
        issuer = payload.get("iss")
        if issuer != registration.issuer:
            raise RegistrationUnknown(
                f"the id_token's issuer {_claim_text(issuer)} is not the issuer "
                f"{registration.issuer!r} of this registration",
                check="the registration's issuer must equal the platform's issuer "
                "exactly (scheme, host, no trailing slash); each platform uses its "
                "own login and launch URLs",
                **self.ids,
            )

        aud = payload.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or registration.client_id not in audiences:
            raise RegistrationUnknown(
                f"the id_token's audience {_claim_text(aud)} does not include this "
                f"registration's client_id {registration.client_id!r}",
                check="the client_id registered in the bridge must be the one the "
                "platform assigned to this tool",
                **self.ids,
            )
        self.ids["client_id"] = registration.client_id

        # OpenID Connect Core 3.1.3.7: with several audiences, azp names the client.
        azp = payload.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != registration.client_id:
            if azp is None:
                found = "lists several audiences but has no azp claim"
            else:
                found = f"names {_text(azp)!r} as its azp"
            raise RegistrationUnknown(
                f"the id_token {found}, where this registration's client_id "
                f"{registration.client_id!r} was expected",
                check="the platform must set azp to the client_id of this tool",
                **self.ids,
            )

    def _verify(self, token: str, header: dict, payload: dict) -> dict:
        """Verify the signature, then the registered claims, as PyJWT's decode would.

        The checks and their order are those of `jwt.decode` (PyJWT 2.15) with an
        algorithm allow-list, audience, issuer, leeway and the required claims below.
        They run here on the header and payload that `_decode_unverified` has parsed
        already: parsing them a second time in PyJWT took two thirds of this step.
        """
        key = self._platform_key(header)
        try:
            _check_jose_header(header)
            signing_input, _, signature = token.rpartition(".")
            algorithm = _ALGORITHM_OBJECTS[header["alg"]]
            verified = algorithm.verify(
                signing_input.encode("ascii"),
                algorithm.prepare_key(key.key),
                _b64decode(signature),
            )
            if not verified:
                raise jwt.InvalidSignatureError("Signature verification failed")
            _check_registered_claims(
                payload,
                audience=self.registration.client_id,
                issuer=self.registration.issuer,
                leeway=self.leeway,
            )
            return payload
        except jwt.ExpiredSignatureError:
            problem = "the id_token has expired"
            check = (
                "start the launch again; if every launch fails, the clocks of the "
                "platform and the bridge differ by more than the leeway"
            )
        except jwt.ImmatureSignatureError:
            problem = (
                "the id_token is issued in the future (iat or nbf), beyond the leeway"
            )
            check = (
                "the platform's clock is ahead; the platform host must sync its clock"
            )
        except jwt.InvalidSignatureError:
            problem = "the id_token's signature does not verify with the platform's key"
            check = (
                "the registration's key set URL must be the platform's JWKS URL; "
                "a forged or tampered launch also ends here"
            )
        except jwt.MissingRequiredClaimError as error:
            problem = f"the id_token has no {error.claim!r} claim"
            check = "the platform must send every claim LTI 1.3 requires"
        except (jwt.InvalidTokenError, jwt.InvalidKeyError, ValueError) as error:
            problem = f"the id_token is invalid ({error})"
            check = "the platform must send an id_token as LTI 1.3 defines it"
        raise TokenInvalid(problem, check=check, **self.ids)

    def _platform_key(self, header: dict) -> jwt.PyJWK:
        kid = header.get("kid")
        url = self.registration.key_set_url
        try:
            key = self.jwks_cache.key(url, kid)
        except JwksUnavailable as error:
            raise PlatformUnreachable(
                f"the platform's key set could not be read to verify key id "
                f"{_claim_text(kid)}: {error}",
                check=f"the registration's key set URL {url!r} must be reachable "
                "from the bridge and return the platform's JWKS",
                **self.ids,
            ) from None

        if key is None:
            what = (
                "has no key id (kid)" if kid is None else f"uses key id {_text(kid)!r}"
            )
            raise TokenInvalid(
                f"the id_token {what}, and no such key is in the platform's key set",
                check=f"the registration's key set URL {url!r} must be the JWKS of "
                "the platform that signs these launches",
                **self.ids,
            )

        family = _KEY_FAMILY[header["alg"][:2]]
        declared = key._jwk_data.get("alg")
        if key.key_type != family or (declared and declared != header["alg"]):
            raise TokenInvalid(
                f"the id_token's algorithm {header['alg']} does not fit the platform "
                f"key {_text(kid)!r} (type {key.key_type}, alg {declared})",
                check="a forged or tampered launch ends here; the platform signs "
                "with the algorithm its key declares",
                **self.ids,
            )
        return key

    def _check_claims(self, claims: dict) -> str:
        version = claims.get(CLAIM + "version")
        if version != LTI_VERSION:
            raise ClaimInvalid(
                f"the launch declares LTI version {_claim_text(version)}, but this tool "
                f"supports {LTI_VERSION!r} only",
                check="add the tool to the platform as an LTI 1.3 tool",
                **self.ids,
            )
        if not isinstance(claims.get("nonce"), str):
            raise ClaimInvalid(
                "the id_token's nonce claim is missing or not a string",
                check="the platform must send the nonce from the login request",
                **self.ids,
            )
        deployment_id = claims.get(CLAIM + "deployment_id")
        if deployment_id is not None and not isinstance(deployment_id, str):
            raise ClaimInvalid(
                "the deployment_id claim is not a string",
                check="the platform must send the deployment id as a string",
                **self.ids,
            )
        if not deployment_id:
            raise ClaimInvalid(
                "the launch has no deployment_id claim",
                check="the platform must send the deployment id of the tool placement",
                **self.ids,
            )
        self._check_length("deployment_id", deployment_id, DEPLOYMENT_ID_MAX)

        message_type = claims.get(CLAIM + "message_type")
        if message_type not in SUPPORTED_MESSAGES:
            raise MessageNotSupported(
                f"message type {_text(message_type)!r} is not supported by this tool; "
                f"it handles {' and '.join(SUPPORTED_MESSAGES)}",
                check="add the tool as a resource link or through the content "
                "selection (Deep Linking) placement",
                **self.ids,
            )
        if not isinstance(claims.get(CLAIM + "roles"), list):
            raise ClaimInvalid(
                "the launch has no roles claim (a list, possibly empty)",
                check="the platform must send the user's roles",
                **self.ids,
            )

        if message_type == RESOURCE_LINK:
            link = claims.get(CLAIM + "resource_link")
            if not isinstance(link, dict) or not link.get("id"):
                raise ClaimInvalid(
                    "the resource link launch has no resource_link id",
                    check="the platform must send the resource link claim",
                    **self.ids,
                )
            context = claims.get(CLAIM + "context")
            if not isinstance(context, dict) or not context.get("id"):
                raise ClaimInvalid(
                    "the launch has no course (context claim)",
                    check="place the tool inside a course, not on the site's front page",
                    **self.ids,
                )
            self._check_target_link_uri(claims.get(CLAIM + "target_link_uri"))
            self._check_claim_types(claims, context, link)
            self._check_stored_lengths(claims, context)
            self._check_moodle_ids(claims, context)
        else:
            settings = claims.get(DL_CLAIM + "deep_linking_settings")
            if not isinstance(settings, dict) or not settings.get(
                "deep_link_return_url"
            ):
                raise ClaimInvalid(
                    "the deep linking launch has no deep_link_return_url",
                    check="the platform must send deep_linking_settings",
                    **self.ids,
                )
            self._check_deep_linking_course(claims)
        return message_type

    def _check_deep_linking_course(self, claims: dict) -> None:
        """Check the course that a deep linking launch's badge picker lists.

        The context claim is optional here, but a custom course id needs it,
        because the id is confirmed against `context.id` (see `_check_moodle_ids`
        and `lti_tool.lti.canvas_identity`).
        """
        custom = claims.get(CLAIM + "custom")
        if custom is not None and not isinstance(custom, dict):
            raise ClaimInvalid(
                f"the custom claim is a JSON {type(custom).__name__}, not an object",
                check="the platform must send LTI 1.3 claims with their standard types",
                **self.ids,
            )
        context = claims.get(CLAIM + "context")
        context_id = context.get("id") if isinstance(context, dict) else None
        if context_id is not None and not isinstance(context_id, str):
            raise ClaimInvalid(
                f"the context.id claim is a JSON {type(context_id).__name__}, not a "
                "string",
                check="the platform must send LTI 1.3 claims with their standard types",
                **self.ids,
            )
        if context_id:
            self._check_moodle_ids(claims, context)
            return

        for name in COURSE_ID_PARAMETERS:
            if (custom or {}).get(name):
                raise ClaimInvalid(
                    f"the deep linking launch names a course in the custom parameter "
                    f"{name} but has no course (context claim) to check it against",
                    check="add the tool's content from inside a course",
                    page_detail=functools.partial(
                        identity_text.course_without_context, name
                    ),
                    **self.ids,
                )

    def _check_claim_types(self, claims: dict, context: dict, link: dict) -> None:
        """Reject claims the session and the database store that are not strings.

        The signature proves who sent the token, not that each value has the type
        the LTI specification gives it.
        """
        values = {
            "sub": claims.get("sub"),
            "name": claims.get("name"),
            "given_name": claims.get("given_name"),
            "email": claims.get("email"),
            "context.id": context.get("id"),
            "context.title": context.get("title"),
            "resource_link.id": link.get("id"),
        }
        for name, value in values.items():
            if value is not None and not isinstance(value, str):
                raise ClaimInvalid(
                    f"the {name} claim is a JSON {type(value).__name__}, not a string",
                    check="the platform must send LTI 1.3 claims with their standard types",
                    **self.ids,
                )
        for name in ("custom", "launch_presentation"):
            value = claims.get(CLAIM + name)
            if value is not None and not isinstance(value, dict):
                raise ClaimInvalid(
                    f"the {name} claim is a JSON {type(value).__name__}, not an object",
                    check="the platform must send LTI 1.3 claims with their standard types",
                    **self.ids,
                )

    def _check_stored_lengths(self, claims: dict, context: dict) -> None:
        """Reject resource link claims longer than the columns that store them."""
        self._check_length("context.id", context["id"], CONTEXT_ID_MAX)
        self._check_length("context.title", context.get("title"), CONTEXT_TITLE_MAX)
        course_id, source = lms_id(claims, COURSE_ID_PARAMETERS, "context.id")
        self._check_length(
            source,
            course_id,
            LMS_COURSE_ID_MAX,
            "set the custom parameter lms_course_id of the tool placement to the "
            "LMS's own course id",
        )

        # Only a learner's launch stores a learner row.
        if roles.map_roles(claims[CLAIM + "roles"]) != roles.LEARNER:
            return
        user_id, source = lms_id(claims, USER_ID_PARAMETERS, "sub")
        self._check_length(
            source,
            user_id,
            LMS_USER_ID_MAX,
            "set the custom parameter lms_user_id of the tool placement to the "
            "LMS's own user id",
        )
        self._check_length("name", claims.get("name"), LEARNER_NAME_MAX)
        self._check_length("email", claims.get("email"), LEARNER_EMAIL_MAX)

    def _check_moodle_ids(self, claims: dict, context: dict) -> None:
        """Reject a Moodle launch whose custom parameters name another user or course.

        Moodle sends its own user id as `sub` and its course id as `context.id`,
        and a teacher can add custom parameters to one activity. Custom parameters
        that differ from those claims would make the launch act as another learner
        or in another course, so only equal values are accepted.
        """
        platform = claims.get(CLAIM + "tool_platform")
        family = (
            platform.get("product_family_code") if isinstance(platform, dict) else None
        )
        if "moodle" not in (self.registration.platform_family, family):
            return
        custom = claims.get(CLAIM + "custom") or {}
        for parameters, claim, own in (
            (COURSE_ID_PARAMETERS, "context.id", context["id"]),
            (USER_ID_PARAMETERS, "sub", claims["sub"]),
        ):
            for name in parameters:
                value = custom.get(name)
                if value and str(value) != own:
                    raise ClaimInvalid(
                        f"the custom parameter {name} ({str(value)[:64]!r}) differs "
                        f"from the launch's {claim} ({own[:64]!r}), which Moodle "
                        "fills with its own id",
                        check=f"remove {name} from the activity's custom parameters "
                        "in Moodle; the tool reads the id from the launch itself",
                        page_detail=functools.partial(
                            identity_text.moodle_id_differs,
                            name,
                            str(value),
                            claim,
                            own,
                        ),
                        **self.ids,
                    )

    def _check_length(
        self, name: str, value: str | None, limit: int, check: str | None = None
    ) -> None:
        if value is None or len(value) <= limit:
            return
        raise ClaimInvalid(
            f"the {name} claim is {len(value)} characters long, more than the "
            f"{limit} this tool stores",
            check=check
            or f"the platform must send a {name} of at most {limit} characters",
            **self.ids,
        )

    def _check_target_link_uri(self, target: object) -> None:
        if not isinstance(target, str) or not target:
            raise ClaimInvalid(
                "the launch has no target_link_uri claim",
                check="the tool placement's target link URI must be the launch URL",
                **self.ids,
            )
        ours = urlsplit(self.tool_base_url)
        theirs = urlsplit(target)
        same_origin = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
        if not same_origin or not theirs.path.startswith(ours.path):
            raise ClaimInvalid(
                f"the launch's target_link_uri {target!r} is not a URL of this tool "
                f"({self.tool_base_url})",
                check="the tool placement's target link URI must be this "
                "registration's launch URL",
                **self.ids,
            )

    def _check_state_binding(self, request: LaunchRequest) -> None:
        state = request.state
        if not state or len(state) > nonces.MAX_STATE_LENGTH:
            raise StateInvalid(
                "the launch has no valid state parameter",
                check="the platform must post the state it received at login back "
                "with the id_token",
                **self.ids,
            )
        # With the cookie present, `nonces.consume` checks the state.
        if request.state_cookie == state:
            return

        # Without the cookie, a used state is named as such: the accepted launch
        # deleted the cookie, so a replay from the same browser arrives without it.
        login = self.state_signer.verify(self.registration, state)
        if login is None or nonces.is_used(self.session.connection(), login):
            raise nonces.state_unknown(**self.ids)
        if login.uses_platform_storage:
            if request.storage_binding is None:
                raise NeedsPlatformStorage(login.storage_target)
            if request.origin != _origin(
                self.tool_base_url
            ) or not self.state_signer.binding_matches(state, request.storage_binding):
                raise StateInvalid(
                    "the state kept in the platform's storage does not match this "
                    "launch",
                    check="start the launch again from the course in the same browser",
                    **self.ids,
                )
            return

        raise StateInvalid(
            "the browser did not send the state cookie that this tool set at login, "
            "or sent a different one",
            check="start the launch again in the same browser; a browser that blocks "
            "third-party cookies needs a platform with LTI Platform Storage, or the "
            "tool opened in a new window",
            **self.ids,
        )

    def _resolve_deployment(self, deployment_id: str) -> Deployment:
        registration = self.registration
        # A Core row: a known deployment is only read here.
        deployment = self.row_cache.deployment(
            self.session.connection(), registration, deployment_id
        )
        if deployment is None:
            status = (
                DeploymentStatus.HELD.value
                if registration.new_deployment_policy == "hold"
                else DeploymentStatus.ACTIVE.value
            )
            deployment = Deployment(
                provider_id=registration.provider_id,
                registration_id=registration.id,
                deployment_id=deployment_id,
                status=status,
            )
            self.session.add(deployment)
            self.session.flush()

        if deployment.status != DeploymentStatus.ACTIVE.value:
            raise DeploymentHeld(
                f"deployment {deployment_id!r} is waiting for a provider admin to "
                "approve it",
                check="a provider admin approves the deployment on the registration "
                "page (or with `hpass-bridge platform approve`), then the launch "
                "works",
                **self.ids,
            )
        return deployment


def _check_jose_header(header: dict) -> None:
    """Reject the header parameters PyJWT's decode rejects (RFC 7515 and 7797)."""
    kid = header.get("kid")
    if "kid" in header and not isinstance(kid, str):
        raise jwt.InvalidTokenError("Key ID header parameter must be a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise jwt.InvalidTokenError(
                "Invalid 'crit' header: must be a non-empty list"
            )
        for extension in crit:
            if extension != "b64":
                raise jwt.InvalidTokenError(
                    f"Unsupported critical extension: {_text(extension)}"
                )
    # An unencoded payload (RFC 7797) needs a detached payload, which LTI never sends.
    if header.get("b64", True) is False:
        raise jwt.InvalidTokenError("The 'b64' header parameter false is not supported")


def _check_registered_claims(
    payload: dict, *, audience: str, issuer: str, leeway: float
) -> None:
    """Check the required claims, iat, nbf, exp, iss, aud, sub and jti in PyJWT's order.

    Raises PyJWT's exceptions with PyJWT's messages, so `_verify` reports them the
    same way. Times are compared with `leeway` seconds of tolerance.
    """
    for claim in REQUIRED_CLAIMS:
        if payload.get(claim) is None:
            raise jwt.MissingRequiredClaimError(claim)

    now = time.time()
    iat = _numeric_date(
        payload["iat"], jwt.InvalidIssuedAtError, "Issued At claim (iat)"
    )
    if iat > now + leeway:
        raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in payload:
        nbf = _numeric_date(payload["nbf"], jwt.DecodeError, "Not Before claim (nbf)")
        if nbf > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    exp = _numeric_date(payload["exp"], jwt.DecodeError, "Expiration Time claim (exp)")
    if exp <= now - leeway:
        raise jwt.ExpiredSignatureError("Signature has expired")

    if not isinstance(payload["iss"], str):
        raise jwt.InvalidIssuerError("Payload Issuer (iss) must be a string")
    if payload["iss"] != issuer:
        raise jwt.InvalidIssuerError("Invalid issuer")

    audiences = payload["aud"]
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or not all(
        isinstance(a, str) for a in audiences
    ):
        raise jwt.InvalidAudienceError("Invalid claim format in token")
    if audience not in audiences:
        raise jwt.InvalidAudienceError("Audience doesn't match")

    if not isinstance(payload["sub"], str):
        raise jwt.exceptions.InvalidSubjectError("Subject must be a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise jwt.exceptions.InvalidJTIError("JWT ID must be a string")


def _numeric_date(value: object, error: type[Exception], name: str) -> int:
    # PyJWT converts with int(), so "1700000000" and 1.7e9 pass as they do there.
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise error(f"{name} must be an integer.") from None


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _claim_text(value: object) -> str:
    """Return a claim value quoted for a message, or "(missing)" when it is absent."""
    if value is None:
        return "(missing)"
    return repr(_text(value))


def _text(value: object, limit: int = 200) -> str | None:
    """Return a claim value as short text for messages and logs."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:limit]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
