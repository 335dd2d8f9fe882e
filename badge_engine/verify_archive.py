"""Verify a credential archive (badge_engine/archive.py) without any network.

The archive's DID documents and status lists stand in for the issuer's server.
The report lists what was checked from the archive and what could not be checked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from badge_engine.archive import ArchiveFetcher, archive_documents
from badge_engine.errors import InvalidDid
from badge_engine.jsonld import CONTEXT_FILES
from badge_engine.verify_context import VerifyContext
from badge_engine.verify_report import VerificationReport


def verify_archive(
    archive: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Verify the archived credential with the archive's own documents."""
    from badge_engine.verify import verify_ob3_document

    credential = archive.get("credential")
    did_documents = archive.get("didDocuments")
    if not isinstance(credential, dict) or not isinstance(did_documents, dict):
        report.error(
            "invalid_type",
            "An archive needs a credential object and a didDocuments object.",
            "$",
        )
        return

    fetcher = ArchiveFetcher(documents=archive_documents(archive))
    offline = replace(
        context,
        fetcher=fetcher,
        resolve_did_document=lambda did: _archived_did(did_documents, did),
        did_documents={},
    )
    verify_ob3_document(credential, offline, report)
    report.format = f"archive:{report.format}"
    created = archive.get("createdAt", "an unknown time")
    report.checks.append(
        f"archive: issuer keys and status list taken from the archive of {created}; "
        "nothing was fetched."
    )
    _report_contexts(archive, report)
    report.warn(
        "status_as_of_archive",
        f"Revocation was checked as of {created}; a revocation after that time "
        "cannot be seen offline.",
        "$.credentialStatus",
    )
    report.warn(
        "keys_as_of_issue",
        "The issuer's keys are those published at issue time; a key the issuer "
        "withdrew later cannot be seen offline.",
        "$.proof",
    )


def _archived_did(did_documents: dict[str, Any], did: str) -> dict[str, Any]:
    document = did_documents.get(did)
    if not isinstance(document, dict):
        raise InvalidDid("The archive holds no DID document for this DID.", did=did)
    return document


def _report_contexts(archive: dict[str, Any], report: VerificationReport) -> None:
    contexts = archive.get("contexts")
    names = sorted(contexts) if isinstance(contexts, dict) else []
    unknown = [url for url in names if url not in CONTEXT_FILES]
    report.checks.append(
        f"contexts: {len(names)} archived; the verifier used its local copies."
    )
    if unknown:
        report.warn(
            "context_not_checked",
            "These archived contexts have no local copy and were not used: "
            + ", ".join(unknown),
            "$.contexts",
        )
