"""`hpass-bridge provider` and `hpass-bridge api-token`: tenants and their API tokens."""

from __future__ import annotations

import click
from sqlalchemy import select

from lti_tool.cli_support import emit, json_option, operator_session, provider_option
from lti_tool.cli_support import table
from lti_tool.operations import InvalidInput, NotFound, audit, iso, provider_by_slug
from lti_tool.operations.providers import (
    ProviderExists,
    add_provider,
    list_providers,
    provider_counts,
    provider_dict,
    remove_provider,
)


@click.group()
def provider() -> None:
    """Add, list, show and remove learning providers (tenants)."""


@provider.command("add")
@click.option(
    "--slug",
    required=True,
    help="Short name used in every URL; frozen once a badge is issued.",
)
@click.option("--name", required=True, help="Display name, shown on every badge.")
@click.option("--url", required=True, help="The provider's public web site (http(s)).")
@click.option("--email", help="Contact email shown in the issuer profile.")
@json_option
def add(slug, name, url, email, as_json) -> None:
    """Add a provider."""
    with operator_session(as_json) as op:
        try:
            found = add_provider(
                op.session, op.actor, slug=slug, name=name, url=url, email=email
            )
        except ProviderExists as error:
            if not error.identical:
                raise
            # The same command run again, as a setup script run twice does.
            result = provider_dict(op.session, error.existing)
            op.session.rollback()
            emit(
                {"status": "unchanged", "provider": result},
                as_json,
                f"provider {slug} already exists with these values; nothing was added",
            )
            return
        op.session.commit()
        result = provider_dict(op.session, found)
    emit(
        {"status": "created", "provider": result},
        as_json,
        f"provider {slug} created. Next: hpass-bridge platform add --provider {slug} "
        "or hpass-bridge lms connect moodle --provider " + slug,
    )


@provider.command("list")
@json_option
def list_(as_json) -> None:
    """List providers with their HPass certification status."""
    with operator_session(as_json) as op:
        rows = [
            provider_dict(op.session, found) for found in list_providers(op.session)
        ]
        audit(op.session, op.actor, "provider.listed", provider_id=None)
        op.session.commit()
    emit(
        {"providers": rows},
        as_json,
        table(rows, ["slug", "name", "certification", "url"], "no providers"),
    )


@provider.command("show")
@click.argument("slug")
@json_option
def show(slug, as_json) -> None:
    """Show one provider and how many rows of each kind it owns."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, slug)
        result = provider_dict(op.session, found)
        result["counts"] = provider_counts(op.session, found)
        audit(op.session, op.actor, "provider.shown", provider_id=found.id)
        op.session.commit()
    lines = [f"{key}: {value}" for key, value in result.items() if key != "counts"]
    lines += [f"  {name}: {count}" for name, count in sorted(result["counts"].items())]
    emit(result, as_json, "\n".join(lines))


@provider.command("remove")
@click.argument("slug")
@json_option
def remove(slug, as_json) -> None:
    """Remove a provider that has no connections, platforms, badges or learners."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, slug)
        remove_provider(op.session, op.actor, found)
        op.session.commit()
    emit({"status": "removed", "slug": slug}, as_json, f"provider {slug} removed")


@click.group("api-token")
def api_token() -> None:
    """Create, list and revoke a provider's API tokens for the JSON API."""


@api_token.command("create")
@provider_option()
@click.option(
    "--name",
    default="api",
    show_default=True,
    help="What the token is for, shown in `api-token list`.",
)
@json_option
def token_create(provider_slug, name, as_json) -> None:
    """Create an API token and show it once; only its digest is stored."""
    from lti_tool.api.tokens import NAME_MAX, create_api_token

    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidInput(f"--name must be 1 to {NAME_MAX} characters")
        row, token = create_api_token(
            op.session, provider_id=found.id, name=name, created_by=op.actor
        )
        audit(
            op.session,
            op.actor,
            "api_token.created",
            provider_id=found.id,
            target=f"api_token:{row.public_id}",
            detail={"name": name},
        )
        op.session.commit()
        token_id = row.public_id
    emit(
        {
            "status": "created",
            "id": token_id,
            "provider": provider_slug,
            "name": name,
            "token": token,
        },
        as_json,
        f"API token {token_id} for {provider_slug} (shown once, store it now):\n"
        f"{token}\nSend it as: Authorization: Bearer <token>",
    )


@api_token.command("list")
@provider_option()
@json_option
def token_list(provider_slug, as_json) -> None:
    """List a provider's API tokens (never the tokens themselves)."""
    from lti_tool.api.tokens import ApiToken

    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = [
            {
                "id": row.public_id,
                "name": row.name,
                "created_by": row.created_by,
                "created_at": iso(row.created_at),
                "last_used_at": iso(row.last_used_at),
                "revoked_at": iso(row.revoked_at),
            }
            for row in op.session.scalars(
                select(ApiToken)
                .where(ApiToken.provider_id == found.id)
                .order_by(ApiToken.id)
            )
        ]
        audit(op.session, op.actor, "api_token.listed", provider_id=found.id)
        op.session.commit()
    emit(
        {"tokens": rows},
        as_json,
        table(rows, ["id", "name", "created_at", "revoked_at"], "no API tokens"),
    )


@api_token.command("revoke")
@provider_option()
@click.argument("token_id")
@json_option
def token_revoke(provider_slug, token_id, as_json) -> None:
    """Revoke the API token TOKEN_ID; requests with it get 401 from now on."""
    from badge_engine.db import utcnow
    from lti_tool.api.tokens import ApiToken

    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        row = op.session.scalar(
            select(ApiToken).where(
                ApiToken.provider_id == found.id, ApiToken.public_id == token_id
            )
        )
        if row is None:
            raise NotFound(
                f"no API token {token_id!r} for provider {provider_slug!r}; see "
                f"`hpass-bridge api-token list --provider {provider_slug}`"
            )
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        audit(
            op.session,
            op.actor,
            "api_token.revoked",
            provider_id=found.id,
            target=f"api_token:{token_id}",
        )
        op.session.commit()
    emit(
        {"status": "revoked", "id": token_id}, as_json, f"API token {token_id} revoked"
    )
