"""The result of verifying any credential: version, format, errors and warnings.

Each problem carries a stable `code` that programs can branch on, a message for
people, and the JSON path of the node at fault (`$` for the whole credential).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Codes of the problems the verifier reports, with what each means.
PROBLEM_CODES = {
    "unrecognised_format": "the input is not JSON, a compact JWS/JWT, a URL or a "
    "baked PNG or SVG",
    "invalid_json": "the text is not valid JSON",
    "invalid_type": "a value has the wrong JSON type",
    "too_large": "a file, image or response is over its size limit",
    "not_baked": "an image holds no credential",
    "invalid_image": "an image is corrupt or truncated",
    "decompression_bomb": "compressed data inflates past its limit",
    "unsafe_xml": "an SVG uses a DTD or entities",
    "unknown_context": "a JSON-LD context has no local copy and is never fetched",
    "schema_invalid": "the credential does not match the OB 3.0 JSON schema",
    "missing_proof": "the credential is not signed",
    "unknown_proof_suite": "a proof type or cryptosuite the verifier does not support",
    "invalid_proof": "a proof is malformed",
    "invalid_signature": "a signature does not match the signed data",
    "unsupported_did_method": "a DID method the verifier cannot resolve",
    "key_not_resolved": "the signing key cannot be found or read",
    "key_unreachable": "the issuer's server cannot be reached to fetch the signing "
    "key, so the proof was not checked",
    "issuer_mismatch": "the signing key does not belong to the issuer",
    "expired": "the credential's validity has ended",
    "not_yet_valid": "the credential is not valid yet",
    "invalid_date": "a date is missing or malformed",
    "revoked": "the issuer revoked the credential",
    "suspended": "the issuer suspended the credential",
    "status_unavailable": "the status list cannot be fetched or read",
    "status_unreachable": "the issuer's server cannot be reached to fetch the "
    "status list, so revocation was not checked",
    "missing_recipient": "the credential names no recipient",
    "recipient_mismatch": "the recipient is not the expected person",
    "hosted_mismatch": "a baked OB 2.0 assertion differs from the hosted one",
    "fetch_failed": "a document could not be fetched",
    "credential_unreachable": "the server of the URL to verify cannot be reached, "
    "so nothing was checked",
    "no_credential": "the URL to verify serves no credential (an HTTP error, or a "
    "page that is not a credential)",
    "unsupported_format": "a format this verifier cannot check yet",
}


# Codes of problems that stop a check from running rather than show a fault. A
# report whose only errors have these codes is "not checked", not invalid.
UNCHECKED_CODES = frozenset(
    {"key_unreachable", "status_unreachable", "credential_unreachable"}
)
# A report with this error found nothing to verify at the address it was given.
NO_CREDENTIAL_CODE = "no_credential"


@dataclass(frozen=True)
class Problem:
    """One error or warning: a code from PROBLEM_CODES, a message and a JSON path."""

    code: str
    message: str
    path: str = "$"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "path": self.path}


@dataclass
class VerificationReport:
    """Everything a verification found.

    `version` is "2.0" or "3.0" once recognised. `format` names the proof format
    (`eddsa-rdfc-2022`, `vc-jwt`, `ob2-hosted`, `ob2-signed`), prefixed with
    `png:` or `svg:` for a baked image. `credential` is the credential as verified,
    for display only.
    """

    version: str | None = None
    format: str | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    credential: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not self.errors and self.version is not None

    @property
    def checked(self) -> bool:
        """False when every error is a check that could not run (UNCHECKED_CODES)."""
        return not self.errors or any(
            problem.code not in UNCHECKED_CODES for problem in self.errors
        )

    @property
    def outcome(self) -> str:
        """`valid`, `invalid`, `not_checked` when a needed document was unreachable,
        or `no_credential` when the URL to verify serves no credential."""
        if self.valid:
            return "valid"
        if self.has_error(NO_CREDENTIAL_CODE):
            return "no_credential"
        return "invalid" if self.checked else "not_checked"

    def error(self, code: str, message: str, path: str = "$") -> None:
        self.errors.append(Problem(code, message, path))

    def warn(self, code: str, message: str, path: str = "$") -> None:
        self.warnings.append(Problem(code, message, path))

    def has_error(self, code: str) -> bool:
        return any(problem.code == code for problem in self.errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "outcome": self.outcome,
            "version": self.version,
            "format": self.format,
            "errors": [problem.to_json() for problem in self.errors],
            "warnings": [problem.to_json() for problem in self.warnings],
            "checks": list(self.checks),
        }
