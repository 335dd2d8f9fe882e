"""`hpass-bridge credential`: operator commands on issued credentials."""

from __future__ import annotations

import click
import structlog
from sqlalchemy import select

from badge_engine.models import Credential
from lti_tool.cli import _instance_or_fail, emit, fail, json_option
from lti_tool.operations.awards import revoke_award
from lti_tool.operations import ActionError, InvalidInput

log = structlog.get_logger(__name__)


@click.group("credential")
def credential() -> None:
    """Inspect and revoke issued credentials."""


@credential.command("revoke")
@click.argument("public_id")
@click.option(
    "--reason",
    required=True,
    help="Why the credential is revoked; verifiers show this text to anyone.",
)
@json_option
def revoke(public_id: str, reason: str, as_json: bool) -> None:
    """Revoke the credential PUBLIC_ID (the UUID in its URL), once and for good.

    Its status lists, the OB 2.0 revocation list and its public page report the
    revocation from the next request on.
    """
    from lti_tool.app import create_app

    settings = _instance_or_fail(as_json)
    bridge = create_app(settings).extensions["hpass"]
    with bridge.session() as session:
        found = session.scalar(
            select(Credential).where(Credential.public_id == public_id)
        )
        if found is None:
            fail(
                f"no credential {public_id!r} exists; give the UUID at the end of "
                "the credential's URL",
                as_json,
                code="not_found",
            )
        try:
            # The shared action also queues the revocation for every portfolio
            # route the credential went to (the scheduler's sweep sends it).
            revoke_award(session, "cli", found, reason)
        except (ActionError, InvalidInput) as error:
            fail(str(error), as_json, code=error.code)
        session.commit()

    log.info(
        "credential.revoked",
        provider_id=found.provider_id,
        credential=found.public_id,
        actor="cli",
    )
    emit(
        {
            "status": "revoked",
            "public_id": found.public_id,
            "reason": found.revocation_reason,
            "revoked_at": found.revoked_at.isoformat(),
        },
        as_json,
        f"credential {found.public_id} revoked: {found.revocation_reason}",
    )
