"""Checks of an OB 3.0 credential's `credentialStatus` against its issuer's list.

A status list that cannot be fetched or read makes the credential unverifiable
(an error, not a warning), because a revoked badge must never pass for a live one.
"""

from __future__ import annotations

from typing import Any

from badge_engine.data_integrity import verify_eddsa_rdfc_2022
from badge_engine.status import (
    BITSTRING_CREDENTIAL_TYPE,
    BITSTRING_ENTRY_TYPE,
    REVOCATION_LIST_TYPE,
    InvalidStatusList,
    status_bit,
)
from badge_engine.outbound import OutboundError
from badge_engine.verify_context import (
    RESOLUTION_ERRORS,
    VerifyContext,
    is_unreachable,
)
from badge_engine.verify_report import VerificationReport


def check_credential_status(
    credential: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Report whether the credential's issuer revoked or suspended it."""
    status = credential.get("credentialStatus")
    if status is None:
        report.warn(
            "status_not_checked",
            "The credential has no credentialStatus, so revocation cannot be checked.",
            "$.credentialStatus",
        )
        return

    entries = status if isinstance(status, list) else [status]
    for number, entry in enumerate(entries):
        path = "$.credentialStatus" + (
            f"[{number}]" if isinstance(status, list) else ""
        )
        if not isinstance(entry, dict):
            report.error("invalid_type", "Expected a status object.", path)
        elif entry.get("type") == BITSTRING_ENTRY_TYPE:
            _check_bitstring(credential, entry, path, context, report)
        elif entry.get("type") == REVOCATION_LIST_TYPE:
            _check_revocation_list(credential, entry, path, context, report)
        else:
            report.warn(
                "status_not_checked",
                f"The status method {entry.get('type')!r} is not supported, so "
                "revocation was not checked.",
                f"{path}.type",
            )


def _check_bitstring(
    credential: dict[str, Any],
    entry: dict[str, Any],
    path: str,
    context: VerifyContext,
    report: VerificationReport,
) -> None:
    list_url = entry.get("statusListCredential")
    index_text = entry.get("statusListIndex")
    purpose = entry.get("statusPurpose")
    if not isinstance(list_url, str) or not (
        isinstance(index_text, str) and index_text.isdigit()
    ):
        report.error(
            "invalid_type",
            "A BitstringStatusListEntry needs statusListCredential (a URL) and "
            "statusListIndex (a decimal string).",
            path,
        )
        return

    try:
        status_list = context.fetch_json(list_url)
    except RESOLUTION_ERRORS as error:
        _report_list_failure(
            error, "status list", f"{path}.statusListCredential", report
        )
        return

    if not _status_list_trusted(credential, status_list, path, context, report):
        return

    subject = status_list.get("credentialSubject")
    subject = subject if isinstance(subject, dict) else {}
    if subject.get("statusPurpose") != purpose:
        report.error(
            "status_unavailable",
            f"The status list is for {subject.get('statusPurpose')!r}, but the entry "
            f"asks about {purpose!r}.",
            f"{path}.statusPurpose",
        )
        return

    try:
        is_set = status_bit(subject.get("encodedList"), int(index_text))
    except InvalidStatusList as error:
        report.error("status_unavailable", str(error), f"{path}.statusListIndex")
        return

    if not is_set:
        report.checks.append(f"status: bit {index_text} of {list_url} is not set.")
    elif purpose == "suspension":
        report.error("suspended", "The issuer suspended this credential.", path)
    else:
        reason = _stored_reason(credential, context)
        if reason:
            message = f"The issuer revoked this credential: {reason}"
        else:
            message = "The issuer revoked this credential."
        report.error("revoked", message, path)


def _report_list_failure(
    error: Exception, kind: str, path: str, report: VerificationReport
) -> None:
    if isinstance(error, OutboundError) and is_unreachable(error):
        report.error(
            "status_unreachable",
            f"The {kind} could not be fetched from {error.url}: {error.message}. "
            "Revocation was not checked.",
            path,
        )
    else:
        report.error(
            "status_unavailable", f"The {kind} cannot be fetched or read: {error}", path
        )


def _stored_reason(credential: dict[str, Any], context: VerifyContext) -> str | None:
    credential_id = credential.get("id")
    if context.revocation_reason is None or not isinstance(credential_id, str):
        return None
    return context.revocation_reason(credential_id)


def _status_list_trusted(
    credential: dict[str, Any],
    status_list: dict[str, Any],
    path: str,
    context: VerifyContext,
    report: VerificationReport,
) -> bool:
    types = status_list.get("type")
    if not isinstance(types, list) or BITSTRING_CREDENTIAL_TYPE not in types:
        report.error(
            "status_unavailable",
            f"The status list is not a {BITSTRING_CREDENTIAL_TYPE}.",
            f"{path}.statusListCredential",
        )
        return False

    if _issuer_id(status_list) != _issuer_id(credential):
        report.error(
            "status_unavailable",
            f"The status list is issued by {_issuer_id(status_list)!r}, not by the "
            "credential's issuer, so it cannot revoke or clear this credential.",
            f"{path}.statusListCredential",
        )
        return False

    proof = verify_eddsa_rdfc_2022(status_list, context.public_key, now=context.now)
    if not proof.verified:
        report.error(
            "status_unavailable",
            "The status list's proof does not verify: " + "; ".join(proof.errors),
            f"{path}.statusListCredential",
        )
        return False

    return True


def _check_revocation_list(
    credential: dict[str, Any],
    entry: dict[str, Any],
    path: str,
    context: VerifyContext,
    report: VerificationReport,
) -> None:
    list_url = entry.get("id")
    if not isinstance(list_url, str):
        report.error("invalid_type", "Expected the revocation list URL in id.", path)
        return

    try:
        revocation_list = context.fetch_json(list_url)
    except RESOLUTION_ERRORS as error:
        _report_list_failure(error, "revocation list", f"{path}.id", report)
        return

    revoked = revocation_list.get("revokedCredentials")
    if not isinstance(revoked, list):
        report.error(
            "status_unavailable",
            "The revocation list has no revokedCredentials array.",
            f"{path}.id",
        )
        return

    for item in revoked:
        if isinstance(item, dict) and item.get("id") == credential.get("id"):
            reason = item.get("revocationReason") or "no reason given"
            report.error(
                "revoked", f"The issuer revoked this credential: {reason}", path
            )
            return

    report.checks.append(f"status: not listed in the revocation list {list_url}.")


def _issuer_id(document: dict[str, Any]) -> Any:
    issuer = document.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer
