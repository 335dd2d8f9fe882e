"""Check whether an OB 3.0 credential was superseded by a newer version.

The bridge serves each credential's version history at `{credential id}/versions`
(see badge_engine/corrections.py). A superseded credential stays valid as issued, so
the verifier reports it as a warning with the code "superseded", never as an error.
An issuer that publishes no history leaves a note in the checks and nothing else.
"""

from __future__ import annotations

from typing import Any

from badge_engine.verify_context import RESOLUTION_ERRORS, VerifyContext
from badge_engine.verify_report import VerificationReport


def check_supersession(
    document: dict[str, Any], context: VerifyContext, report: VerificationReport
) -> None:
    """Warn "superseded" when the credential's version history names a successor."""
    if report.errors:
        return
    credential_id = document.get("id")
    if not isinstance(credential_id, str) or not credential_id.startswith(
        ("https://", "http://")
    ):
        return

    try:
        history = context.fetch_json(credential_id + "/versions")
    except RESOLUTION_ERRORS:
        report.checks.append("versions: the issuer publishes no version history.")
        return

    successor = history.get("supersededBy")
    if history.get("id") != credential_id or not isinstance(successor, str):
        report.checks.append("versions: this is the current version.")
        return

    reason = history.get("supersedeReason") or "a newer version"
    report.warn(
        "superseded",
        f"The issuer replaced this credential with a newer version ({reason}) at "
        f"{successor}; this one stays valid as issued.",
        "$.id",
    )
