"""`hpass-bridge export`: write a provider's credentials into a folder.

Each credential becomes `<id>.json` (the signed OB 3.0 document), or a baked
`<id>.png` / `<id>.svg` whose image carries that document, so it verifies with any
Open Badges 3.0 verifier and with `hpass-bridge verify`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import select

from badge_engine.baking import bake_png, bake_svg, plain_png, plain_svg
from badge_engine.models import Credential
from lti_tool.cli_support import emit, json_option, operator_session, provider_option
from lti_tool.operations import ActionError, audit, provider_by_slug


@click.command("export")
@provider_option()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into; created if missing.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["json", "png", "svg"]),
    default="json",
    show_default=True,
    help="File format of each badge.",
)
@click.option("--include-revoked", is_flag=True, help="Also export revoked badges.")
@json_option
def export(provider_slug, out_dir, file_format, include_revoked, as_json):
    """Export a provider's credentials as JSON, baked PNG or baked SVG files."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        query = select(Credential).where(Credential.provider_id == found.id)
        if not include_revoked:
            query = query.where(Credential.status == "live")
        credentials = list(op.session.scalars(query.order_by(Credential.id)))
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ActionError(
                f"cannot create --out {str(out_dir)!r}: "
                f"{error.strerror}; pick a writable folder"
            ) from None
        written = []
        for credential in credentials:
            payload = json.dumps(credential.document)
            if file_format == "json":
                content = payload.encode()
            elif file_format == "png":
                content = bake_png(plain_png(), payload)
            else:
                content = bake_svg(plain_svg(credential.achievement.name), payload)
            path = out_dir / f"{credential.public_id}.{file_format}"
            # Written beside, then renamed, so an interrupted export leaves no
            # truncated badge behind.
            partial = path.with_suffix(path.suffix + ".partial")
            partial.write_bytes(content)
            partial.replace(path)
            written.append(str(path))
        audit(
            op.session,
            op.actor,
            "credential.exported",
            provider_id=found.id,
            detail={"count": len(written), "format": file_format},
        )
        op.session.commit()
    emit(
        {"status": "ok", "count": len(written), "files": written},
        as_json,
        f"{len(written)} credential(s) written to {out_dir}",
    )
