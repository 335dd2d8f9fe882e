"""`hpass-bridge verify`: check any Open Badge the way an outside verifier would."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import click
import structlog
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from badge_engine.db import make_engine
from badge_engine.models import Credential, CredentialStatus

from badge_engine.outbound import OutboundPolicy
from badge_engine.outbound.documents import DocumentFetcher
from badge_engine.verify import verify_target
from badge_engine.verify_context import VerifyContext
from badge_engine.urls import credential_url
from badge_engine.verify_report import VerificationReport
from lti_tool.config import ConfigError, load_settings

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
# The issuer's key or status list could not be fetched, so nothing was decided.
EXIT_NOT_CHECKED = 3
# The URL to verify serves no credential (HTTP 404 or another page), so the address
# is wrong rather than the badge.
EXIT_NO_CREDENTIAL = 4

ARCHIVE_NAME = "archive.json"

log = structlog.get_logger(__name__)


@click.command("verify")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
)
@click.option(
    "--recipient",
    metavar="EMAIL",
    help="Also check that the credential was issued to this email address or id.",
)
@click.option(
    "--did-document",
    "did_document_paths",
    multiple=True,
    metavar="FILE",
    help="Use this saved DID document (did.json) for its DID instead of fetching it; "
    "repeatable. `hpass-bridge demo --out` writes one beside the credential. The "
    "credential's status list is still fetched: to verify with no network, verify "
    "the archive.json that `demo --out` writes, which holds both.",
)
@click.argument("target")
def verify(
    as_json: bool,
    recipient: str | None,
    did_document_paths: tuple[str, ...],
    target: str,
) -> None:
    """Verify an Open Badge: a JSON, JWT, baked PNG or SVG file, or a URL.

    Checks context (local copies only), schema, proof, issuer key, status, dates
    and recipient. Exits 0 when valid, 1 when invalid, 2 on a usage error such as
    a missing file, 3 when the credential could not be checked because the
    issuer's key or status list could not be fetched, and 4 when the URL serves no
    credential (HTTP 404 or a page that is not a credential).
    """
    context = VerifyContext(
        fetcher=DocumentFetcher(_outbound_policy()),
        recipient=recipient,
        did_documents=_saved_did_documents(did_document_paths, as_json),
        revocation_reason=_stored_revocation_reasons(),
    )
    try:
        report = verify_target(target, context)
    except OSError as error:
        _usage_error(
            f"cannot read {target!r}: {error.strerror or error}. Give the path of a "
            "JSON, JWT, PNG or SVG file, or an http(s) URL.",
            as_json,
        )
    except Exception as error:  # noqa: BLE001 - a verifier bug is still a result
        log.exception("verify.failed", target=target)
        report = VerificationReport()
        report.error(
            "verifier_failed",
            f"The verifier failed on this input ({type(error).__name__}); the "
            "credential could not be checked.",
        )

    _print(report, target, as_json)
    exit_codes = {
        "valid": EXIT_VALID,
        "invalid": EXIT_INVALID,
        "not_checked": EXIT_NOT_CHECKED,
        "no_credential": EXIT_NO_CREDENTIAL,
    }
    sys.exit(exit_codes[report.outcome])


def _saved_did_documents(paths: tuple[str, ...], as_json: bool) -> dict[str, dict]:
    """Read each saved DID document, keyed by the DID in its `id`."""
    documents = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError) as error:
            _usage_error(
                f"cannot read the DID document {path!r}: {error}. Give the path of a "
                "did.json file.",
                as_json,
            )
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            _usage_error(
                f"{path!r} is not a DID document: it has no string `id`.", as_json
            )
        documents[document["id"]] = document

    return documents


def _outbound_policy() -> OutboundPolicy:
    # Loopback targets (the demo, tests) are reachable only in loopback development
    # mode, the same setting that lets the bridge itself run on 127.0.0.1.
    try:
        return OutboundPolicy.from_settings(load_settings())
    except ConfigError:
        return OutboundPolicy()


def _stored_revocation_reasons() -> Callable[[str], str | None] | None:
    """Return a lookup of revocation reasons in this bridge's database, if any.

    Only credentials under this bridge's public base URL are looked up. A missing
    SQLite file is not created, so `verify` on another machine reads no database.
    """
    try:
        settings = load_settings()
    except ConfigError:
        return None
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (
        url.database and Path(url.database).is_file()
    ):
        return None
    prefix = credential_url(settings.public_base_url, "")

    def lookup(credential_id: str) -> str | None:
        public_id = credential_id.removeprefix(prefix)
        if public_id == credential_id or not public_id:
            return None
        engine = make_engine(settings.database_url)
        try:
            with engine.connect() as connection:
                return connection.scalar(
                    select(Credential.revocation_reason).where(
                        Credential.public_id == public_id,
                        Credential.status == CredentialStatus.REVOKED.value,
                    )
                )
        except SQLAlchemyError as error:
            log.warning(
                "verify.revocation_reason_unavailable",
                credential_id=credential_id,
                error=f"{type(error).__name__}: {str(error)[:200]}",
            )
            return None
        finally:
            engine.dispose()

    return lookup


def _usage_error(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": "usage", "message": message}))
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _print(report: VerificationReport, target: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json()))
        return

    if report.outcome == "no_credential":
        # No version or format to show, and the address, not a badge, is at fault.
        click.echo("NO CREDENTIAL: nothing to verify at this address")
    else:
        version = (
            f"Open Badges {report.version}" if report.version else "unknown version"
        )
        verdicts = {
            "valid": "valid",
            "invalid": "INVALID",
            "not_checked": "NOT CHECKED",
        }
        verdict = verdicts[report.outcome]
        click.echo(f"{verdict}: {version}, format {report.format or 'unknown'}")
    for problem in report.errors:
        click.echo(f"  error {problem.code} at {problem.path}: {problem.message}")
    for problem in report.warnings:
        click.echo(f"  warning {problem.code} at {problem.path}: {problem.message}")
    if report.outcome == "not_checked":
        click.echo(_not_checked_hint(report, target))


def _not_checked_hint(report: VerificationReport, target: str) -> str:
    """Return what to do when the issuer's key or status list could not be fetched.

    The archive comes first because it verifies with no network. Starting a bridge
    is advised only for a credential of the bridge configured here, because the
    issuer of `hpass-bridge demo` served a random port that stopped with the demo
    and no command serves it again.
    """
    lines = [
        "The issuer's server could not be reached, so the credential is neither "
        "valid nor invalid yet."
    ]
    archive = _archive_beside(target)
    if archive is not None:
        lines.append(
            "Verify the archive saved beside it, which carries the issuer's keys and "
            "status list and needs no network: hpass-bridge verify "
            + shlex.quote(str(archive))
        )
    else:
        lines.append(
            f"If you have the credential's {ARCHIVE_NAME} (`hpass-bridge demo --out` "
            "writes one beside credential.json), verify that instead: it carries the "
            "issuer's keys and status list and needs no network."
        )

    base_url = _issued_here(report, target)
    if base_url is not None:
        lines.append(
            f"This bridge ({base_url}) issued the credential, so start it with "
            "`hpass-bridge run` and verify again."
        )
    else:
        lines.append(
            "Otherwise verify again once the issuer's server is reachable. The issuer "
            "of `hpass-bridge demo` stopped with the demo, so only its archive "
            "verifies."
        )
    return "\n".join(lines)


def _archive_beside(target: str) -> Path | None:
    """Return the archive.json in the folder of a credential file, if there is one."""
    if target.startswith(("http://", "https://")):
        return None
    path = Path(target)
    archive = path.parent / ARCHIVE_NAME
    if path.name == ARCHIVE_NAME or not archive.is_file():
        return None
    return archive


def _issued_here(report: VerificationReport, target: str) -> str | None:
    """Return this bridge's public base URL when the credential id or URL is under it."""
    try:
        base_url = load_settings().public_base_url.rstrip("/")
    except ConfigError:
        return None
    credential_id = (report.credential or {}).get("id")
    for address in (credential_id, target):
        if isinstance(address, str) and address.startswith(base_url + "/"):
            return base_url
    return None
