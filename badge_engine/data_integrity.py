"""Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite (W3C vc-di-eddsa).

Signing and verifying follow the same steps. The document without its `proof` and the
proof configuration (the proof's options without `proofValue`, under the document's
@context) are each canonicalised with RDFC-1.0 and hashed with SHA-256. The Ed25519
signature covers the proof configuration hash followed by the document hash, and
`proofValue` is that signature as base58btc multibase.

`sign_eddsa_rdfc_2022` writes `proof` as a one-element array. Data Integrity allows
a single object or an array, but the OB 3.0 JSON schema accepts only the array.
`verify_eddsa_rdfc_2022` accepts both.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from badge_engine.errors import BadgeEngineError, SigningError
from badge_engine.canonical import canonize
from badge_engine.multikey import multibase_decode, multibase_encode

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
ED25519_SIGNATURE_LENGTH = 64

# xsd:dateTimeStamp: an xsd:dateTime whose timezone is required.
_DATE_TIME_STAMP = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)

# Errors a caller-supplied key resolver may raise for a key it cannot produce: engine
# errors, a missing entry, a malformed value, or a failed network or file read.
RESOLVER_ERRORS = (BadgeEngineError, LookupError, ValueError, OSError)


@dataclass
class VerificationResult:
    """Outcome of verifying a credential or a proof.

    `checks` lists what passed and `errors` what failed. Each error starts with the
    JSON path of the node at fault, such as `proof[0].proofValue`.
    """

    verified: bool
    checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HashData:
    """Intermediate values of the eddsa-rdfc-2022 transformation and hashing steps."""

    canonical_document: str
    canonical_proof_config: str
    document_hash: bytes
    proof_config_hash: bytes

    @property
    def hash_data(self) -> bytes:
        """Bytes that the Ed25519 signature covers: proof config hash, then document."""
        return self.proof_config_hash + self.document_hash


def compute_hash_data(
    unsecured_document: dict[str, Any], proof_options: dict[str, Any]
) -> HashData:
    """Canonicalise and hash a document and its proof options for eddsa-rdfc-2022.

    `unsecured_document` must not contain `proof`, and `proof_options` must not contain
    `proofValue`. The proof configuration takes the document's @context. Raises
    ContextNotAvailable or InvalidCredential when either part cannot be canonicalised.
    """
    proof_config = dict(proof_options)
    proof_config["@context"] = unsecured_document.get("@context")
    canonical_proof_config = canonize(proof_config)
    canonical_document = canonize(unsecured_document)

    return HashData(
        canonical_document=canonical_document,
        canonical_proof_config=canonical_proof_config,
        document_hash=hashlib.sha256(canonical_document.encode("utf-8")).digest(),
        proof_config_hash=hashlib.sha256(
            canonical_proof_config.encode("utf-8")
        ).digest(),
    )


def sign_eddsa_rdfc_2022(
    document: dict[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: datetime | str,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """Return a copy of `document` with an eddsa-rdfc-2022 DataIntegrityProof added.

    `created` is a timezone-aware datetime, written in UTC to the second, or an
    xsd:dateTimeStamp string used as given. The document must have an @context and no
    `proof` yet. Raises SigningError for those input problems, and ContextNotAvailable
    or InvalidCredential when the document cannot be canonicalised.
    """
    credential_id = document.get("id") if isinstance(document.get("id"), str) else None
    if "proof" in document:
        raise SigningError(
            "The document already has a proof, and proof sets and chains are not "
            "supported. Sign the document without its proof.",
            credential_id=credential_id,
            verification_method=verification_method,
        )
    if "@context" not in document:
        raise SigningError(
            "The document has no @context, so it cannot be canonicalised as JSON-LD.",
            credential_id=credential_id,
            verification_method=verification_method,
        )

    proof_options = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": _format_created(created, credential_id, verification_method),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    hashed = compute_hash_data(document, proof_options)
    signature = private_key.sign(hashed.hash_data)

    signed = _copy_json(document)
    signed["proof"] = [{**proof_options, "proofValue": multibase_encode(signature)}]
    return signed


def verify_eddsa_rdfc_2022(
    document: dict[str, Any],
    resolve_public_key: Callable[[str], Ed25519PublicKey],
    *,
    expected_proof_purpose: str = "assertionMethod",
    now: datetime | None = None,
) -> VerificationResult:
    """Verify every proof of `document` as an eddsa-rdfc-2022 DataIntegrityProof.

    `resolve_public_key` receives each proof's `verificationMethod` and returns its key.
    It may raise any of RESOLVER_ERRORS, which the result reports. A proof that does
    not verify is reported in the result, not raised. Only a resolver error outside
    RESOLVER_ERRORS propagates. `now` (default: the current
    time) is compared with a proof's `expires`. The document is verified only when it
    has at least one proof and every proof verifies.
    """
    proofs = document.get("proof")
    if proofs is None:
        return VerificationResult(
            verified=False, errors=["proof: missing, so the document is not signed."]
        )

    if isinstance(proofs, dict):
        nodes = [("proof", proofs)]
    elif isinstance(proofs, list) and proofs:
        nodes = [(f"proof[{index}]", proof) for index, proof in enumerate(proofs)]
    else:
        return VerificationResult(
            verified=False,
            errors=["proof: expected an object or a non-empty array of proofs."],
        )

    unsecured = {key: value for key, value in document.items() if key != "proof"}
    result = VerificationResult(verified=False)
    for node, proof in nodes:
        _verify_proof(
            unsecured,
            proof,
            node,
            resolve_public_key,
            expected_proof_purpose,
            now or datetime.now(UTC),
            result,
        )

    result.verified = not result.errors
    return result


def _verify_proof(
    unsecured: dict[str, Any],
    proof: Any,
    node: str,
    resolve_public_key: Callable[[str], Ed25519PublicKey],
    expected_proof_purpose: str,
    now: datetime,
    result: VerificationResult,
) -> None:
    if not isinstance(proof, dict):
        result.errors.append(f"{node}: expected an object, received {proof!r}.")
        return

    problems = _check_proof_options(proof, node, expected_proof_purpose, now)
    signature = _decode_proof_value(proof.get("proofValue"), node, problems)
    unsecured = _apply_proof_context(unsecured, proof, node, problems)
    if problems:
        result.errors.extend(problems)
        return

    verification_method = proof["verificationMethod"]
    proof_options = {key: value for key, value in proof.items() if key != "proofValue"}
    proof_options.pop("@context", None)
    try:
        hashed = compute_hash_data(unsecured, proof_options)
    except BadgeEngineError as error:
        result.errors.append(f"{node}: the document cannot be canonicalised: {error}")
        return

    try:
        public_key = resolve_public_key(verification_method)
    except RESOLVER_ERRORS as error:
        result.errors.append(
            f"{node}.verificationMethod: the key {verification_method!r} could not be "
            f"resolved: {error}"
        )
        return

    try:
        public_key.verify(signature, hashed.hash_data)
    except InvalidSignature:
        result.errors.append(
            f"{node}.proofValue: the Ed25519 signature does not match the document and "
            "proof options. The document or its proof was changed after signing, or "
            f"it was signed with a key other than {verification_method!r}."
        )
        return

    result.checks.append(
        f"{node}: {CRYPTOSUITE} signature verified with {verification_method!r}."
    )


def _check_proof_options(
    proof: dict[str, Any], node: str, expected_proof_purpose: str, now: datetime
) -> list[str]:
    problems = []
    expected_values = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "proofPurpose": expected_proof_purpose,
    }
    for key, expected in expected_values.items():
        if proof.get(key) != expected:
            problems.append(
                f"{node}.{key}: expected {expected!r}, received {proof.get(key)!r}."
            )

    if not isinstance(proof.get("verificationMethod"), str):
        problems.append(
            f"{node}.verificationMethod: expected a URL string, received "
            f"{proof.get('verificationMethod')!r}."
        )

    for key in ("created", "expires"):
        if key in proof and _parse_date_time_stamp(proof[key]) is None:
            problems.append(
                f"{node}.{key}: expected an xsd:dateTimeStamp such as "
                f"2024-01-31T12:00:00Z, received {proof[key]!r}."
            )

    expires = _parse_date_time_stamp(proof.get("expires"))
    if expires is not None and expires <= now:
        problems.append(f"{node}.expires: the proof expired at {proof['expires']}.")

    return problems


def _decode_proof_value(value: Any, node: str, problems: list[str]) -> bytes:
    if not isinstance(value, str):
        problems.append(
            f"{node}.proofValue: expected a base58btc multibase string, received "
            f"{value!r}."
        )
        return b""

    try:
        signature = multibase_decode(value)
    except BadgeEngineError as error:
        problems.append(f"{node}.proofValue: {error}")
        return b""

    if len(signature) != ED25519_SIGNATURE_LENGTH:
        problems.append(
            f"{node}.proofValue: an Ed25519 signature has {ED25519_SIGNATURE_LENGTH} "
            f"bytes, received {len(signature)}."
        )

    return signature


def _apply_proof_context(
    unsecured: dict[str, Any], proof: dict[str, Any], node: str, problems: list[str]
) -> dict[str, Any]:
    # A proof may carry its own @context. The spec then requires the document's
    # @context to start with those values, and canonicalises under the proof's list.
    if "@context" not in proof:
        return unsecured

    proof_context = _as_list(proof["@context"])
    document_context = _as_list(unsecured.get("@context"))
    if document_context[: len(proof_context)] != proof_context:
        problems.append(
            f"{node}.@context: the document's @context does not start with the "
            "proof's @context values, in the same order."
        )
        return unsecured

    return {**unsecured, "@context": proof["@context"]}


def _copy_json(value: Any) -> Any:
    # A deep copy for JSON values, several times faster than copy.deepcopy on them.
    value_type = type(value)
    if value_type is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if value_type is list:
        return [_copy_json(item) for item in value]
    if value_type in (str, int, float, bool) or value is None:
        return value

    return copy.deepcopy(value)


def _format_created(
    created: datetime | str, credential_id: str | None, verification_method: str
) -> str:
    if isinstance(created, datetime):
        if created.tzinfo is None:
            raise SigningError(
                "created must be a timezone-aware datetime, because a naive one has "
                "an unknown timezone. Pass datetime.now(UTC).",
                credential_id=credential_id,
                verification_method=verification_method,
            )
        return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    if _parse_date_time_stamp(created) is None:
        raise SigningError(
            "created must be an xsd:dateTimeStamp such as 2024-01-31T12:00:00Z, "
            f"received {created!r}.",
            credential_id=credential_id,
            verification_method=verification_method,
        )

    return created


def _parse_date_time_stamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _DATE_TIME_STAMP.match(value):
        return None

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value

    return [value]
