"""`hpass-bridge deployments approve`: an alias of `platform approve`."""

from __future__ import annotations

import click

from lti_tool.cli_platform import approve


@click.group()
def deployments() -> None:
    """Approve LTI deployments held at their first launch."""


deployments.add_command(approve, "approve")
