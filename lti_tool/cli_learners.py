"""`hpass-bridge learner export|forget`: a learner's data on request, and erasure.

`forget` removes what identifies the person in the bridge: name, email, raw LMS
payloads of their completion facts and portfolio tokens. Issued credentials stay
(their recipient is a salted hash), because the learner may still hold and show
them; revoke them first with `awards revoke` when the learner requests that too.
"""

from __future__ import annotations

import json

import click

from lti_tool.cli_support import emit, json_option, operator_session, provider_option
from lti_tool.operations import provider_by_slug
from lti_tool.operations.learners import export_learner, forget_learner


@click.group()
def learner() -> None:
    """Export or forget what the bridge stores about a learner."""


@learner.command("export")
@provider_option()
@click.argument("lms_user_id")
@json_option
def export(provider_slug, lms_user_id, as_json):
    """Print everything stored about a learner as one JSON document."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        document = export_learner(op.session, op.bridge, op.actor, found, lms_user_id)
        op.session.commit()
    emit(document, as_json, json.dumps(document, indent=2, default=str))


@learner.command("forget")
@provider_option()
@click.argument("lms_user_id")
@json_option
def forget(provider_slug, lms_user_id, as_json):
    """Erase a learner's name, email, raw payloads and portfolio tokens."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        forget_learner(op.session, op.actor, found, lms_user_id)
        op.session.commit()
    emit(
        {"status": "forgotten", "learner": lms_user_id},
        as_json,
        f"learner {lms_user_id} forgotten; issued badges stay valid (revoke them "
        "with `hpass-bridge awards revoke` if asked)",
    )
