"""Verification of Open Badges 2.0 assertions, hosted and signed.

Hosted: the assertion is fetched again from its own id, which is the authority.
A baked copy that differs from it in any field is reported. HTTP 410 at the id
means the issuer revoked it. Signed: the compact JWS verifies with the
CryptographicKey named in `verification.creator`, whose `owner` is the badge's
issuer, and the assertion is not in the issuer's RevocationList. Both then check
the BadgeClass and Issuer, the dates and the recipient.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jwt

from badge_engine.errors import InvalidCredential
from badge_engine.outbound import OutboundError
from badge_engine.ob2 import OB2_JWS_ALGORITHM, public_key_from_pem
from badge_engine.verify_context import (
    RESOLUTION_ERRORS,
    UnreadableDocument,
    VerifyContext,
    is_unreachable,
    parse_json_object,
)
from badge_engine.verify_report import VerificationReport


def verify_hosted_assertion(
    supplied: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Verify an OB 2.0 hosted assertion, given as JSON, against its hosted copy."""
    report.version, report.format = "2.0", _with_container(report, "ob2-hosted")
    assertion_id = supplied.get("id")
    if not isinstance(assertion_id, str):
        report.error("invalid_type", "A hosted assertion needs its URL in id.", "$.id")
        return

    hosted = _fetch_hosted(assertion_id, context, report)
    if hosted is None:
        return

    for key in sorted(set(supplied) | set(hosted)):
        if supplied.get(key) != hosted.get(key):
            report.error(
                "hosted_mismatch",
                f"{key!r} differs from the hosted assertion at {assertion_id}; the "
                "copy was changed after it was issued.",
                f"$.{key}",
            )
    report.credential = hosted
    _check_assertion(hosted, context, report)


def verify_hosted_url(
    url: str, context: VerifyContext, report: VerificationReport
) -> None:
    """Verify an OB 2.0 assertion known only by its URL (as baked by older tools)."""
    report.version, report.format = "2.0", _with_container(report, "ob2-hosted")
    hosted = _fetch_hosted(url, context, report)
    if hosted is not None:
        report.credential = hosted
        _check_assertion(hosted, context, report)


def verify_signed_assertion(
    token: str, context: VerifyContext, report: VerificationReport
) -> None:
    """Verify an OB 2.0 signed assertion given as a compact JWS."""
    report.version, report.format = "2.0", _with_container(report, "ob2-signed")
    try:
        header = jwt.get_unverified_header(token)
        assertion = parse_json_object(
            jwt.api_jws.decode_complete(token, options={"verify_signature": False})[
                "payload"
            ]
        )
    except (jwt.InvalidTokenError, UnreadableDocument) as error:
        report.error("invalid_proof", f"The JWS cannot be decoded: {error}")
        return

    report.credential = assertion
    if header.get("alg") != OB2_JWS_ALGORITHM:
        report.error(
            "unknown_proof_suite",
            f"The JWS algorithm {header.get('alg')!r} is not supported; signed "
            f"assertions are verified with {OB2_JWS_ALGORITHM} only.",
            "$.header.alg",
        )
        return

    verification = assertion.get("verification")
    creator = verification.get("creator") if isinstance(verification, dict) else None
    if not isinstance(creator, str):
        report.error(
            "invalid_proof",
            "A signed assertion names its key in verification.creator.",
            "$.verification.creator",
        )
        return

    try:
        key_document = context.fetch_json(creator)
        public_key = public_key_from_pem(key_document.get("publicKeyPem"))
        jwt.api_jws.decode(token, public_key, algorithms=[OB2_JWS_ALGORITHM])
    except RESOLUTION_ERRORS + (InvalidCredential,) as error:
        if isinstance(error, OutboundError) and is_unreachable(error):
            report.error(
                "key_unreachable",
                f"The issuer's key could not be fetched from {error.url}: "
                f"{error.message}. The signature was not checked.",
                "$.verification.creator",
            )
        else:
            report.error("key_not_resolved", str(error), "$.verification.creator")
        return
    except jwt.InvalidSignatureError:
        report.error(
            "invalid_signature",
            f"The JWS signature does not verify with the key {creator}.",
            "$",
        )
        return
    except jwt.InvalidTokenError as error:
        report.error("invalid_proof", f"The JWS is invalid: {error}")
        return

    report.checks.append(f"signature: verified with {creator}.")
    issuer = _check_assertion(assertion, context, report)
    if issuer is None:
        return

    if key_document.get("owner") != issuer.get("id"):
        report.error(
            "issuer_mismatch",
            f"The key {creator} is owned by {key_document.get('owner')!r}, not by the "
            f"issuer {issuer.get('id')!r}.",
            "$.verification.creator",
        )
    _check_revocation_list(assertion, issuer, context, report)


def _fetch_hosted(
    url: str, context: VerifyContext, report: VerificationReport
) -> dict[str, Any] | None:
    try:
        return context.fetch_json(url, accept="application/ld+json")
    except OutboundError as error:
        if error.code == "http_410":
            report.error("revoked", f"The issuer revoked this assertion ({url}).")
        else:
            report.error("fetch_failed", str(error), "$.id")
    except UnreadableDocument as error:
        report.error(error.code, str(error), "$.id")

    return None


def _check_assertion(
    assertion: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> dict[str, Any] | None:
    """Check type, revocation flag, dates, recipient, BadgeClass and Issuer.

    Returns the Issuer document, or None when it could not be read.
    """
    if assertion.get("type") not in ("Assertion", ["Assertion"]):
        report.error("invalid_type", "Expected type 'Assertion'.", "$.type")
    if assertion.get("revoked") is True:
        reason = assertion.get("revocationReason") or "no reason given"
        report.error("revoked", f"The issuer revoked this assertion: {reason}")

    _check_dates(assertion, context, report)
    _check_recipient(assertion.get("recipient"), context, report)

    badge = _document_or_fetch(assertion.get("badge"), "$.badge", context, report)
    if badge is None:
        return None
    issuer = _document_or_fetch(badge.get("issuer"), "$.badge.issuer", context, report)
    if issuer is None:
        return None

    verification = assertion.get("verification")
    if isinstance(verification, dict) and verification.get("type") == "hosted":
        _check_hosted_origin(assertion, issuer, report)
    return issuer


def _check_hosted_origin(
    assertion: dict[str, Any], issuer: dict[str, Any], report: VerificationReport
) -> None:
    # OB 2.0: without verification.allowedOrigins, a hosted assertion must be served
    # from the origin of its issuer's id, so nobody else can host one for them.
    assertion_origin = _origin(assertion.get("id"))
    if assertion_origin != _origin(issuer.get("id")):
        report.error(
            "issuer_mismatch",
            f"The assertion is hosted at {assertion_origin}, not at the issuer's "
            f"origin {_origin(issuer.get('id'))}.",
            "$.id",
        )


def _check_revocation_list(
    assertion: dict[str, Any],
    issuer: dict[str, Any],
    context: VerifyContext,
    report: VerificationReport,
) -> None:
    list_url = issuer.get("revocationList")
    if not isinstance(list_url, str):
        report.warn(
            "status_not_checked",
            "The issuer publishes no revocationList.",
            "$.badge.issuer.revocationList",
        )
        return

    try:
        revocation_list = context.fetch_json(list_url)
    except RESOLUTION_ERRORS as error:
        report.error("status_unavailable", str(error), "$.badge.issuer.revocationList")
        return

    for item in revocation_list.get("revokedAssertions") or []:
        item_id = item.get("id") if isinstance(item, dict) else item
        if item_id == assertion.get("id"):
            reason = item.get("revocationReason") if isinstance(item, dict) else None
            report.error(
                "revoked",
                f"The issuer revoked this assertion: {reason or 'no reason given'}",
            )
            return

    report.checks.append(f"status: not listed in {list_url}.")


def _document_or_fetch(
    value: Any, path: str, context: VerifyContext, report: VerificationReport
) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        report.error("invalid_type", "Expected a URL or an embedded object.", path)
        return None

    try:
        return context.fetch_json(value, accept="application/ld+json")
    except RESOLUTION_ERRORS as error:
        report.error("fetch_failed", str(error), path)
        return None


def _check_dates(
    assertion: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    issued_on = _parse_date(assertion.get("issuedOn"))
    if issued_on is None:
        report.error(
            "invalid_date",
            f"issuedOn must be an ISO 8601 date-time, received "
            f"{assertion.get('issuedOn')!r}.",
            "$.issuedOn",
        )
    elif issued_on > context.now:
        report.error("not_yet_valid", "issuedOn is in the future.", "$.issuedOn")

    if "expires" in assertion:
        expires = _parse_date(assertion["expires"])
        if expires is None:
            report.error("invalid_date", "expires is not a date-time.", "$.expires")
        elif expires <= context.now:
            report.error(
                "expired",
                f"The assertion expired at {assertion['expires']}.",
                "$.expires",
            )


def _check_recipient(
    recipient: Any, context: VerifyContext, report: VerificationReport
) -> None:
    if not isinstance(recipient, dict) or not isinstance(
        recipient.get("identity"), str
    ):
        report.error(
            "missing_recipient",
            "The assertion needs a recipient with an identity.",
            "$.recipient",
        )
        return

    if context.recipient is None:
        return
    if not context.recipient_matches(
        recipient["identity"], recipient.get("hashed") is True, recipient.get("salt")
    ):
        report.error(
            "recipient_mismatch",
            "The assertion was not issued to the expected recipient.",
            "$.recipient",
        )
    else:
        report.checks.append("recipient: matches the expected recipient.")


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None

    return parsed if parsed.tzinfo is not None else None


def _origin(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_container(report: VerificationReport, name: str) -> str:
    if report.format and report.format.endswith(":"):
        return report.format + name
    return name


def is_ob2_assertion(document: dict[str, Any]) -> bool:
    """Tell an OB 2.0 assertion from an OB 3.0 credential by context and type."""
    contexts = document.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    if any(isinstance(c, str) and "w3id.org/openbadges/v" in c for c in contexts):
        return True
    return document.get("type") == "Assertion"


def jws_payload(token: str) -> dict[str, Any] | None:
    """Return the JSON payload of a compact JWS without verifying it, or None."""
    try:
        payload = jwt.api_jws.decode_complete(
            token, options={"verify_signature": False}
        )["payload"]
        value = json.loads(payload)
    except (jwt.InvalidTokenError, ValueError, RecursionError):
        return None

    return value if isinstance(value, dict) else None
