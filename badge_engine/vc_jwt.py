"""VC-JWT proofs for Open Badges 3.0: a credential signed as a compact JWS.

The OB 3.0 JSON Web Token Proof Format (VC Data Model 2.0 edition) fixes these parts:

- JOSE header: `alg`, `kid` (a URL that dereferences to the public key) and `typ`
  "JWT". The format allows no other header parameter, so `jwk` is never written.
- JWT payload: the OpenBadgeCredential's own members, plus the registered claims
  `iss` (issuer.id), `jti` (id), `nbf` (validFrom), `sub` (credentialSubject.id) and
  `exp` (validUntil). The spec lists `sub` as required, but a subject identified
  only by `identifier` has no id, so `sub` is written only when there is one.

`sign_vc_jwt` writes that form with EdDSA (Ed25519) or RS256. `verify_vc_jwt` also
accepts the VC Data Model 1.1 form, where the credential is the `vc` claim, because
the spec's verification steps include that form. It rejects every other algorithm,
including `none` and the HMAC family, whose key would be public.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from badge_engine.data_integrity import RESOLVER_ERRORS, VerificationResult
from badge_engine.errors import SigningError

# Algorithm name to the key classes that may sign and verify with it.
ALGORITHMS: dict[str, tuple[type, type]] = {
    "EdDSA": (Ed25519PrivateKey, Ed25519PublicKey),
    "RS256": (RSAPrivateKey, RSAPublicKey),
}
ALLOWED_HEADER_PARAMETERS = frozenset({"alg", "kid", "jwk", "typ"})
REGISTERED_CLAIMS = ("iss", "jti", "nbf", "sub", "exp")


def sign_vc_jwt(
    credential: dict[str, Any], private_key: Any, kid: str, alg: str = "EdDSA"
) -> str:
    """Sign an OpenBadgeCredential as a VC-JWT and return the compact JWS.

    `private_key` is an Ed25519 key for "EdDSA" or an RSA key for "RS256". `kid` is
    the URL of the verification key, such as a did:web verification method id.
    Raises SigningError for another algorithm or key type, and for a credential
    without the id, issuer and validFrom that the claims are made from.
    """
    credential_id = credential.get("id") if isinstance(credential, dict) else None
    problem = _signing_problem(credential, private_key, kid, alg)
    if problem:
        raise SigningError(
            problem, credential_id=credential_id, verification_method=kid
        )

    payload = dict(credential)
    payload.update(_claims(credential))
    return jwt.encode(
        payload, private_key, algorithm=alg, headers={"kid": kid, "typ": "JWT"}
    )


def verify_vc_jwt(
    token: str,
    resolve_public_key: Callable[[str], Any],
    *,
    now: datetime | None = None,
) -> VerificationResult:
    """Verify a VC-JWT's signature and its registered claims against the credential.

    `resolve_public_key` receives the header's `kid` and returns an Ed25519 or RSA
    public key. It may raise any of RESOLVER_ERRORS, which the result reports. `now`
    (default: the current time) is compared with `nbf` and `exp`. Every problem is
    reported in the result as "<part>.<name>: <message>". Only a resolver error
    outside RESOLVER_ERRORS propagates.
    """
    result = VerificationResult(verified=False)
    header = _read_header(token, result)
    if header is None:
        return result

    kid = header["kid"]
    try:
        public_key = resolve_public_key(kid)
    except RESOLVER_ERRORS as error:
        result.errors.append(
            f"header.kid: the key {kid!r} could not be resolved: {error}"
        )
        return result

    payload = _decode(token, header["alg"], kid, public_key, result)
    if payload is None:
        return result

    result.checks.append(f"signature: {header['alg']} signature verified with {kid!r}.")
    _check_claims(payload, now or datetime.now(UTC), result)
    result.verified = not result.errors
    return result


def credential_from_vc_jwt(token: str) -> dict[str, Any]:
    """Return the credential inside a VC-JWT without verifying anything.

    The registered JWT claims are removed from a payload in the VC 2.0 form, and the
    `vc` claim is returned for the VC 1.1 form. Raises ValueError for a token that
    is not a JWT with a JSON object payload.
    """
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.exceptions.InvalidTokenError as error:
        raise ValueError(f"Invalid VC-JWT: {error}") from error

    return _credential_of(payload)


def _signing_problem(
    credential: Any, private_key: Any, kid: str, alg: str
) -> str | None:
    if alg not in ALGORITHMS:
        return f"alg must be one of {sorted(ALGORITHMS)}, received {alg!r}."
    if not isinstance(private_key, ALGORITHMS[alg][0]):
        return (
            f"alg {alg!r} needs a {ALGORITHMS[alg][0].__name__}, received "
            f"{type(private_key).__name__}."
        )
    if not isinstance(kid, str) or not kid:
        return f"kid must be the URL of the verification key, received {kid!r}."
    if not isinstance(credential, dict):
        return f"The credential must be a JSON object, received {type(credential)}."

    if not isinstance(credential.get("id"), str):
        return "The credential has no string id, which the jti claim repeats."
    if not isinstance(_id_of(credential.get("issuer")), str):
        return "The credential has no issuer id, which the iss claim repeats."
    if _numeric_date(credential.get("validFrom")) is None:
        return (
            "The credential has no validFrom date-time with a timezone, which the "
            f"nbf claim repeats. Received {credential.get('validFrom')!r}."
        )
    if "validUntil" in credential and _numeric_date(credential["validUntil"]) is None:
        return (
            "validUntil must be a date-time with a timezone, received "
            f"{credential['validUntil']!r}."
        )

    clashes = sorted(
        claim
        for claim, value in _claims(credential).items()
        if claim in credential and credential[claim] != value
    )
    if clashes:
        return (
            f"The credential has members {clashes} that clash with the registered "
            "JWT claims made from its id, issuer, subject and dates. Remove them."
        )
    return None


def _claims(credential: dict[str, Any]) -> dict[str, Any]:
    claims = {
        "iss": _id_of(credential.get("issuer")),
        "jti": credential.get("id"),
        "nbf": _numeric_date(credential.get("validFrom")),
    }
    subject_id = _id_of(credential.get("credentialSubject"))
    if subject_id is not None:
        claims["sub"] = subject_id
    if "validUntil" in credential:
        claims["exp"] = _numeric_date(credential["validUntil"])
    return claims


def _read_header(token: Any, result: VerificationResult) -> dict[str, Any] | None:
    if not isinstance(token, str):
        result.errors.append(
            f"token: expected a compact JWS string, received {type(token).__name__}."
        )
        return None

    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.InvalidTokenError as error:
        result.errors.append(f"token: not a compact JWS: {error}")
        return None

    alg = header.get("alg")
    if alg not in ALGORITHMS:
        result.errors.append(
            f"header.alg: expected one of {sorted(ALGORITHMS)}, received {alg!r}. "
            "Unsigned and HMAC tokens are never accepted."
        )
    unknown = sorted(set(header) - ALLOWED_HEADER_PARAMETERS)
    if unknown:
        result.errors.append(
            f"header: the parameters {unknown} are not allowed in an OB 3.0 VC-JWT."
        )
    if "typ" in header and header["typ"] != "JWT":
        result.errors.append(f"header.typ: expected 'JWT', received {header['typ']!r}.")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        result.errors.append(
            "header.kid: missing. The verifier resolves the issuer's key from kid "
            "and does not trust a key embedded in the token."
        )

    return None if result.errors else header


def _decode(
    token: str,
    alg: str,
    kid: str,
    public_key: Any,
    result: VerificationResult,
) -> dict[str, Any] | None:
    if not isinstance(public_key, ALGORITHMS[alg][1]):
        result.errors.append(
            f"header.alg: {alg!r} needs a {ALGORITHMS[alg][1].__name__}, but {kid!r} "
            f"resolved to a {type(public_key).__name__}."
        )
        return None

    try:
        # Dates are checked against `now` in _check_claims, not against the clock.
        return jwt.decode(
            token,
            public_key,
            algorithms=[alg],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.exceptions.InvalidSignatureError:
        result.errors.append(
            f"signature: the {alg} signature does not match the header and payload. "
            f"The token was changed after signing, or signed with a key other than "
            f"{kid!r}."
        )
    except jwt.exceptions.InvalidTokenError as error:
        result.errors.append(f"payload: invalid JWT: {error}")
    return None


def _check_claims(
    payload: dict[str, Any], now: datetime, result: VerificationResult
) -> None:
    credential = _credential_of(payload)
    # A VC 1.1 credential names its dates issuanceDate and expirationDate.
    starts = "validFrom" if "validFrom" in credential else "issuanceDate"
    ends = "validUntil" if "validUntil" in credential else "expirationDate"
    expected = {
        "iss": _id_of(credential.get("issuer")),
        "jti": credential.get("id"),
        "nbf": _numeric_date(credential.get(starts)),
        "sub": _id_of(credential.get("credentialSubject")),
        "exp": _numeric_date(credential.get(ends)),
    }
    sources = {
        "iss": "issuer.id",
        "jti": "id",
        "nbf": starts,
        "sub": "credentialSubject.id",
        "exp": ends,
    }
    for claim in REGISTERED_CLAIMS:
        optional = claim in ("sub", "exp") and expected[claim] is None
        if claim not in payload and optional:
            continue
        if payload.get(claim) != expected[claim]:
            result.errors.append(
                f"payload.{claim}: must equal the credential's {sources[claim]} "
                f"({expected[claim]!r}), received {payload.get(claim)!r}."
            )

    timestamp = now.timestamp()
    nbf = payload.get("nbf")
    if isinstance(nbf, int | float) and timestamp < nbf:
        result.errors.append(
            f"payload.nbf: the credential is not valid before "
            f"{datetime.fromtimestamp(nbf, UTC).isoformat()}."
        )
    exp = payload.get("exp")
    if isinstance(exp, int | float) and timestamp >= exp:
        result.errors.append(
            f"payload.exp: the credential expired at "
            f"{datetime.fromtimestamp(exp, UTC).isoformat()}."
        )


def _credential_of(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("Invalid VC-JWT: the payload is not a JSON object.")
    if isinstance(payload.get("vc"), dict):
        return payload["vc"]

    return {
        key: value for key, value in payload.items() if key not in REGISTERED_CLAIMS
    }


def _id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]

    return None


def _numeric_date(value: Any) -> int | None:
    # NumericDate is whole seconds since the epoch. A fraction of a second in the
    # credential's date-time is dropped.
    if not isinstance(value, str):
        return None

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None

    return int(moment.timestamp())
