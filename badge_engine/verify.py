"""Verification of signed Open Badges 3.0 credentials.

A credential passes four checks. It matches the OB 3.0 JSON schema. Every
eddsa-rdfc-2022 proof verifies with a key that the issuer's DID authorises for
assertionMethod. The current time is inside its validFrom/validUntil window. The
issuer is the DID that controls the signing key. did:key DIDs resolve locally.
Every other DID goes to the caller's resolver, so nothing here touches the network.

NOTE: credentialStatus (revocation) is not checked here, because reading a status
list needs a fetch. Callers that accept outside credentials must check it themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badge_engine.data_integrity import VerificationResult, verify_eddsa_rdfc_2022
from badge_engine.did import (
    find_verification_method,
    public_key_from_did_document,
    resolve_did_key,
)
from badge_engine.errors import InvalidDid, VerificationError
from badge_engine.ob3 import format_timestamp
from badge_engine.schema import validate_open_badge_credential


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
