"""Verification of signed Open Badges 3.0 credentials.

A credential passes four checks. It matches the OB 3.0 JSON schema. Every
eddsa-rdfc-2022 proof verifies with a key that the issuer's DID authorises for
assertionMethod. The current time is inside its validFrom/validUntil window. The
issuer is the DID that controls the signing key. did:key DIDs resolve locally.
Every other DID goes to the caller's resolver, so nothing here touches the network.

`verify_open_badge_credential` checks no credentialStatus, because reading a status
list needs a fetch. `verify_target` and `verify_bytes` check every format the bridge
issues: OB 3.0 with eddsa-rdfc-2022 or as a VC-JWT, and OB 2.0 hosted or signed, each
also baked into a PNG or SVG. They check status, dates and recipient too, and fetch
only through the guarded client in the `VerifyContext`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badge_engine.archive import is_archive
from badge_engine.baking import (
    MAX_IMAGE_BYTES,
    BakingError,
    extract,
    is_png,
    looks_like_svg,
)
from badge_engine.data_integrity import (
    CRYPTOSUITE,
    PROOF_TYPE,
    VerificationResult,
    verify_eddsa_rdfc_2022,
)
from badge_engine.did import (
    find_verification_method,
    public_key_from_did_document,
    resolve_did_key,
)
from badge_engine.errors import InvalidDid, VerificationError
from badge_engine.outbound import OutboundError, OutboundStatusError
from badge_engine.jsonld import CONTEXT_FILES
from badge_engine.ob3 import format_timestamp
from badge_engine.schema import validate_open_badge_credential
from badge_engine.vc_jwt import credential_from_vc_jwt, verify_vc_jwt
from badge_engine.verify_context import (
    RESOLUTION_ERRORS,
    UnreadableDocument,
    UnsupportedDidMethod,
    VerifyContext,
    is_unreachable,
    parse_json_object,
)
from badge_engine.verify_ob2 import (
    is_ob2_assertion,
    jws_payload,
    verify_hosted_assertion,
    verify_hosted_url,
    verify_signed_assertion,
)
from badge_engine.verify_report import Problem, VerificationReport
from badge_engine.verify_archive import verify_archive
from badge_engine.verify_status import check_credential_status
from badge_engine.verify_versions import check_supersession


def verify_open_badge_credential(
    document: Any,
    resolve_did_document: Callable[[str], dict[str, Any]],
    *,
    now: datetime | None = None,
) -> VerificationResult:
    """Verify a signed OpenBadgeCredential and report every check that failed.

    `resolve_did_document` receives a DID without fragment, such as
    `did:web:example.org:issuers:acme`, and returns its DID document. It may raise
    VerificationError, LookupError, ValueError or OSError, which the result reports.
    `now` (default: the current time) is compared with validFrom and validUntil. An
    invalid credential is a result, never an exception.
    """
    if not isinstance(document, dict):
        return VerificationResult(
            verified=False,
            errors=[f"$: expected a JSON object, received {type(document).__name__}."],
        )

    now = now or datetime.now(UTC)
    result = VerificationResult(verified=False)

    schema_errors = validate_open_badge_credential(document)
    if schema_errors:
        result.errors.extend(f"schema: {error}" for error in schema_errors)
    else:
        result.checks.append("schema: matches the OB 3.0 AchievementCredential schema.")

    did_documents: dict[str, dict[str, Any]] = {}

    def resolve_public_key(verification_method: str) -> Ed25519PublicKey:
        return _resolve_key(verification_method, resolve_did_document, did_documents)

    proof_result = verify_eddsa_rdfc_2022(document, resolve_public_key, now=now)
    result.checks.extend(proof_result.checks)
    result.errors.extend(proof_result.errors)

    _check_validity_window(document, now, result)
    _check_issuer(document, did_documents, result)

    result.verified = not result.errors
    return result


def _resolve_key(
    verification_method: str,
    resolve_did_document: Callable[[str], dict[str, Any]],
    did_documents: dict[str, dict[str, Any]],
) -> Ed25519PublicKey:
    if verification_method.startswith("did:key:"):
        return resolve_did_key(verification_method)

    if not verification_method.startswith("did:") or "#" not in verification_method:
        raise VerificationError(
            "Expected a DID URL with a fragment, such as did:web:example.org#key-1, "
            "because only keys in a DID document or a did:key can be verified.",
            verification_method=verification_method,
        )

    did = verification_method.partition("#")[0]
    did_document = resolve_did_document(did)
    if not isinstance(did_document, dict):
        raise InvalidDid(
            "The DID resolver returned no DID document (expected a JSON object).",
            did=did,
        )

    public_key = public_key_from_did_document(did_document, verification_method)
    # Kept only once the key is found, for the issuer check that follows.
    did_documents[did] = did_document
    return public_key


def _check_validity_window(
    document: dict[str, Any], now: datetime, result: VerificationResult
) -> None:
    errors_before = len(result.errors)
    valid_from = _parse_timestamp(document.get("validFrom"), "validFrom", result)
    if valid_from is not None and now < valid_from:
        result.errors.append(
            f"validFrom: the credential is not valid before {document['validFrom']}."
        )

    valid_until = _parse_timestamp(document.get("validUntil"), "validUntil", result)
    if valid_until is not None and now >= valid_until:
        result.errors.append(
            f"validUntil: the credential expired at {document['validUntil']}."
        )

    if valid_from is not None and len(result.errors) == errors_before:
        result.checks.append(
            f"validity: the credential is valid at {format_timestamp(now)}."
        )


def _check_issuer(
    document: dict[str, Any],
    did_documents: dict[str, dict[str, Any]],
    result: VerificationResult,
) -> None:
    issuer = document.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str):
        result.errors.append("issuer: missing the issuer's id.")
        return

    proofs = document.get("proof")
    proofs = proofs if isinstance(proofs, list) else [proofs]
    methods = [
        proof["verificationMethod"]
        for proof in proofs
        if isinstance(proof, dict) and isinstance(proof.get("verificationMethod"), str)
    ]
    for method in methods:
        _check_issuer_controls(issuer_id, method, did_documents, result)


def _check_issuer_controls(
    issuer_id: str,
    verification_method: str,
    did_documents: dict[str, dict[str, Any]],
    result: VerificationResult,
) -> None:
    did = verification_method.partition("#")[0]
    if did != issuer_id:
        result.errors.append(
            f"issuer: the issuer {issuer_id!r} is not the DID {did!r} of the signing "
            f"key {verification_method!r}."
        )
        return

    # did:key methods are controlled by their own DID. A did:web method names its
    # controller, which must be the issuer too.
    did_document = did_documents.get(did)
    if did_document is not None:
        method = find_verification_method(did_document, verification_method)
        if method.get("controller") != issuer_id:
            result.errors.append(
                f"issuer: the signing key {verification_method!r} is controlled by "
                f"{method.get('controller')!r}, not by the issuer {issuer_id!r}."
            )
            return

    result.checks.append(
        f"issuer: {issuer_id!r} controls the signing key {verification_method!r}."
    )


def _parse_timestamp(
    value: Any, name: str, result: VerificationResult
) -> datetime | None:
    if value is None:
        return None

    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        result.errors.append(
            f"{name}: expected a date-time with timezone such as "
            f"2024-01-31T12:00:00Z, received {value!r}."
        )
        return None

    return parsed


# Verification of any input, with a report of coded problems.

MAX_INPUT_BYTES = MAX_IMAGE_BYTES
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$")
_OB3_TYPES = ("OpenBadgeCredential", "AchievementCredential", "EndorsementCredential")


def verify_target(target: str, context: VerifyContext) -> VerificationReport:
    """Verify a credential given as a URL or a path to a JSON, JWT, PNG or SVG file.

    Raises FileNotFoundError or IsADirectoryError for a path that is not a readable
    file, because that is a usage error rather than a verification result.
    """
    if target.startswith(("https://", "http://")):
        report = VerificationReport()
        try:
            fetched = context.fetcher.get(
                target, accept="application/ld+json, application/json;q=0.9, */*;q=0.5"
            )
        except OutboundError as error:
            if is_unreachable(error):
                report.error(
                    "credential_unreachable",
                    f"The server at {target} cannot be reached ({error}), so there "
                    "was nothing to check. Verify again once it answers, or verify "
                    "the credential's file instead.",
                )
            elif error.code == "http_410":
                report.version, report.format = "2.0", "ob2-hosted"
                report.error(
                    "revoked", f"The issuer revoked the credential at {target}."
                )
            elif isinstance(error, OutboundStatusError):
                report.error(
                    "no_credential",
                    f"{target} serves no credential: the server returned HTTP "
                    f"{error.status}. Check the address, which is the credential's "
                    "id, or verify the credential's file instead.",
                )
            else:
                report.error("fetch_failed", str(error))
            return report
        if not _looks_like_credential(fetched.body):
            report.error(
                "no_credential",
                f"{target} serves no credential: the response is not a JSON "
                "credential or assertion, a JWT, or a baked PNG or SVG. Check the "
                "address, which is the credential's id.",
            )
            return report
        return verify_bytes(fetched.body, context)

    path = Path(target)
    with path.open("rb") as file:
        data = file.read(MAX_INPUT_BYTES + 1)
    return verify_bytes(data, context)


def _looks_like_credential(data: bytes) -> bool:
    """Check whether fetched bytes have a credential's shape, unlike an HTML page.

    Only the shape is checked: a baked image, a compact JWS, or a JSON object with
    `@context` or `type`. Whether it is a valid credential is verify_bytes's job.
    """
    if is_png(data) or looks_like_svg(data):
        return True
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return False
    if _COMPACT_JWS.match(text):
        return True
    if not text.startswith("{"):
        return False
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False

    return isinstance(document, dict) and ("@context" in document or "type" in document)


def verify_bytes(data: bytes, context: VerifyContext) -> VerificationReport:
    """Verify a credential given as the bytes of a file or an HTTP response."""
    report = VerificationReport()
    if len(data) > MAX_INPUT_BYTES:
        report.error(
            "too_large",
            f"The input is larger than {MAX_INPUT_BYTES} bytes, which no credential "
            "is.",
        )
        return report

    if is_png(data) or looks_like_svg(data):
        try:
            baked = extract(data)
        except BakingError as error:
            report.error(error.code, str(error))
            return report
        report.format = f"{baked.image_format}:"
        verify_text(baked.text, context, report)
        return report

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.error(
            "unrecognised_format",
            "The input is not UTF-8 text, a PNG or an SVG image.",
        )
        return report

    verify_text(text, context, report)
    return report


def verify_text(text: str, context: VerifyContext, report: VerificationReport) -> None:
    """Verify JSON, a compact JWS/JWT, or an OB 2.0 assertion URL, into `report`."""
    text = text.strip()
    if text.startswith(("{", "[")):
        try:
            document = parse_json_object(text)
        except UnreadableDocument as error:
            report.error(error.code, str(error))
            return
        if is_ob2_assertion(document):
            verify_hosted_assertion(document, context, report)
        elif is_archive(document):
            verify_archive(document, context, report)
        else:
            verify_ob3_document(document, context, report)
        return

    if _COMPACT_JWS.match(text):
        payload = jws_payload(text)
        if payload is not None and is_ob2_assertion(payload):
            verify_signed_assertion(text, context, report)
        else:
            verify_vc_jwt_text(text, context, report)
        return

    if text.startswith(("https://", "http://")) and len(text) < 2000:
        verify_hosted_url(text, context, report)
        return

    report.error(
        "unrecognised_format",
        "Expected JSON, a compact JWS or JWT, an assertion URL, or a baked PNG or SVG.",
    )


def verify_ob3_document(
    document: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Verify an OB 3.0 credential secured with an embedded Data Integrity proof."""
    report.version = "3.0"
    report.format = _format_name(report, "eddsa-rdfc-2022")
    report.credential = document
    if not _check_ob3_shape(document, report):
        return

    proofs = document.get("proof")
    if proofs is None:
        report.error(
            "missing_proof",
            "The credential has no proof, so it is not signed.",
            "$.proof",
        )
        return
    for number, proof in enumerate(proofs if isinstance(proofs, list) else [proofs]):
        if isinstance(proof, dict) and (
            proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE
        ):
            report.error(
                "unknown_proof_suite",
                f"The proof type {proof.get('type')!r} with cryptosuite "
                f"{proof.get('cryptosuite')!r} is not supported; expected "
                f"{PROOF_TYPE} with {CRYPTOSUITE}.",
                f"$.proof[{number}]",
            )
    if report.errors:
        return

    _verify_proof(verify_eddsa_rdfc_2022, document, context, report)
    if report.errors:
        return

    issuer_result = VerificationResult(verified=False)
    _check_issuer(document, context.did_documents, issuer_result)
    report.checks.extend(issuer_result.checks)
    for message in issuer_result.errors:
        report.error("issuer_mismatch", _message_of(message), "$.issuer")

    check_validity_dates(document, context.now, report)
    check_credential_status(document, context, report)
    check_ob3_recipient(document, context, report)
    check_supersession(document, context, report)


def verify_vc_jwt_text(
    token: str, context: VerifyContext, report: VerificationReport
) -> None:
    """Verify an OB 3.0 credential secured as a VC-JWT (header kid names the key)."""
    report.version = "3.0"
    report.format = _format_name(report, "vc-jwt")
    try:
        credential = credential_from_vc_jwt(token)
    except ValueError as error:
        report.error("invalid_proof", str(error))
        return
    report.credential = credential
    if not _check_ob3_shape(credential, report):
        return

    _verify_proof(verify_vc_jwt, token, context, report)
    if report.errors:
        return

    check_validity_dates(credential, context.now, report)
    check_credential_status(credential, context, report)
    check_ob3_recipient(credential, context, report)


def _verify_proof(
    verify: Callable[..., VerificationResult],
    secured: Any,
    context: VerifyContext,
    report: VerificationReport,
) -> None:
    """Check the proof of `secured` with keys from `context`, adding to `report`.

    A key that cannot be resolved is reported by its resolution problem, so the
    proof's generic key_not_resolved error is dropped when that problem exists.
    """
    resolution_problems: list[Problem] = []

    def resolve(verification_method: str) -> Any:
        try:
            return context.public_key(verification_method)
        except RESOLUTION_ERRORS as error:
            resolution_problems.append(_resolution_problem(error))
            raise

    proof_result = verify(secured, resolve, now=context.now)
    report.checks.extend(proof_result.checks)
    report.errors.extend(resolution_problems)
    for message in proof_result.errors:
        problem = _proof_problem(message)
        if problem.code != "key_not_resolved" or not resolution_problems:
            report.errors.append(problem)


def check_validity_dates(
    document: dict[str, Any], now: datetime, report: VerificationReport
) -> None:
    """Report an OB 3.0 credential outside its validFrom/validUntil window."""
    window = VerificationResult(verified=False)
    _check_validity_window(document, now, window)
    report.checks.extend(window.checks)
    for message in window.errors:
        path, text = _split_message(message)
        if "expired" in text:
            code = "expired"
        elif "not valid before" in text:
            code = "not_yet_valid"
        else:
            code = "invalid_date"
        report.error(code, text, f"$.{path}")


def check_ob3_recipient(
    document: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Report a credential that names nobody, or not the expected recipient."""
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        report.error(
            "missing_recipient",
            "Expected a credentialSubject object.",
            "$.credentialSubject",
        )
        return
    if "EndorsementSubject" in (subject.get("type") or []):
        return

    identities = [
        item
        for item in subject.get("identifier") or []
        if isinstance(item, dict) and isinstance(item.get("identityHash"), str)
    ]
    if not identities and not isinstance(subject.get("id"), str):
        report.error(
            "missing_recipient",
            "The credentialSubject has neither an id nor an identifier.",
            "$.credentialSubject",
        )
        return
    if context.recipient is None:
        return

    matched = subject.get("id") == context.recipient or any(
        context.recipient_matches(
            item["identityHash"], item.get("hashed") is True, item.get("salt")
        )
        for item in identities
    )
    if matched:
        report.checks.append("recipient: matches the expected recipient.")
    else:
        report.error(
            "recipient_mismatch",
            "The credential was not issued to the expected recipient.",
            "$.credentialSubject.identifier",
        )


def _check_ob3_shape(document: dict[str, Any], report: VerificationReport) -> bool:
    contexts = document.get("@context")
    if not isinstance(contexts, list) or not contexts:
        report.error(
            "invalid_type",
            "Expected @context to be a non-empty array.",
            "$['@context']",
        )
        return False
    for number, item in enumerate(contexts):
        if isinstance(item, str) and item not in CONTEXT_FILES:
            report.error(
                "unknown_context",
                f"The context {item!r} has no local copy, and contexts are never "
                "fetched from the network.",
                f"$['@context'][{number}]",
            )
    types = document.get("type")
    if not isinstance(types, list) or not any(t in types for t in _OB3_TYPES):
        report.error(
            "invalid_type",
            f"Expected type to include one of {', '.join(_OB3_TYPES)}.",
            "$.type",
        )
    if report.errors:
        return False

    if "EndorsementCredential" not in types:
        for message in validate_open_badge_credential(document):
            path, text = _split_message(message)
            report.error("schema_invalid", text, path if path.startswith("$") else "$")
        if not report.errors:
            report.checks.append(
                "schema: matches the OB 3.0 AchievementCredential schema."
            )

    return not report.errors


def _resolution_problem(error: Exception) -> Problem:
    if isinstance(error, UnsupportedDidMethod):
        return Problem("unsupported_did_method", str(error), "$.proof")
    if isinstance(error, OutboundError) and is_unreachable(error):
        return Problem(
            "key_unreachable",
            f"The issuer's key could not be fetched from {error.url}: "
            f"{error.message}. The signature was not checked.",
            "$.proof",
        )
    return Problem("key_not_resolved", str(error), "$.proof")


def _proof_problem(message: str) -> Problem:
    path, text = _split_message(message)
    if "signature does not match" in text or "signature" in text and "verif" in text:
        code = "invalid_signature"
    elif "expired" in text:
        code = "expired"
    elif "not valid before" in text:
        code = "not_yet_valid"
    elif "could not be resolved" in text:
        code = "key_not_resolved"
    elif "has no local copy" in text:
        code = "unknown_context"
    else:
        code = "invalid_proof"
    return Problem(
        code, text, "$." + path if path and not path.startswith("$") else path or "$"
    )


def _split_message(message: str) -> tuple[str, str]:
    path, separator, text = message.partition(": ")
    if not separator or " " in path:
        return "$", message
    return path, text


def _message_of(message: str) -> str:
    return _split_message(message)[1]


def _format_name(report: VerificationReport, name: str) -> str:
    if report.format and report.format.endswith(":"):
        return report.format + name
    return name
