"""Provider actions: add, list, show and remove tenants."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from badge_engine.endorsement import endorsements_for
from badge_engine.models import Provider
from lti_tool.operations import ActionError, InvalidInput, audit, iso

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
NAME_MAX = 200
EMAIL_MAX = 320

# Rows a provider owns before it does anything; removing the provider deletes them.
SETUP_TABLES = (
    "api_tokens",
    "lti_registration_links",
    "signing_keys",
    "status_list_allocations",
)


def check_http_url(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{option} must be an http(s) URL such as https://academy.example.org, "
            f"got {value!r}",
            code="invalid_url",
        )

    return value.rstrip("/")


def certification(session: Session, provider: Provider) -> str:
    """Return "certified" when the HPass network endorses the provider's profile."""
    profile_endorsements = [
        record
        for record in endorsements_for(session, provider)
        if record.subject_type == "Profile"
    ]

    return "certified" if profile_endorsements else "not_certified"


def provider_dict(session: Session, provider: Provider) -> dict[str, Any]:
    return {
        "slug": provider.slug,
        "name": provider.name,
        "url": provider.url,
        "email": provider.email,
        "certification": certification(session, provider),
        "slug_frozen": provider.slug_frozen,
        "created_at": iso(provider.created_at),
    }


class ProviderExists(InvalidInput):
    """A provider with the slug exists.

    `identical` is True when the requested name, URL and email equal the stored
    ones, so that a repeated `provider add` can reuse the provider.
    """

    code = "provider_exists"

    def __init__(
        self, existing: Provider, *, name: str, url: str, email: str | None
    ) -> None:
        requested = {"--name": name, "--url": url, "--email": email}
        stored = {
            "--name": existing.name,
            "--url": existing.url,
            "--email": existing.email,
        }
        differing = [
            option for option in requested if requested[option] != stored[option]
        ]
        details = "; ".join(
            f"{option} is {stored[option]!r}, not {requested[option]!r}"
            for option in differing
        )
        super().__init__(
            f"a provider with slug {existing.slug!r} already exists with other "
            f"values ({details}); pick another slug, or see it with "
            f"`hpass-bridge provider show {existing.slug}`"
        )
        self.existing = existing
        self.identical = not differing


def add_provider(
    session: Session, actor: str, *, slug: str, name: str, url: str, email: str | None
) -> Provider:
    if not SLUG_PATTERN.match(slug):
        raise InvalidInput(
            f"slug {slug!r} is invalid; use 1 to 64 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit",
            code="invalid_slug",
        )
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(
            f"--name must be 1 to {NAME_MAX} characters, got {len(name)}",
            code="invalid_name",
        )
    url = check_http_url(url.strip(), "--url")
    if email is not None and ("@" not in email or len(email) > EMAIL_MAX):
        raise InvalidInput(
            f"--email {email!r} is not an email address; pass name@example.org",
            code="invalid_email",
        )
    existing = session.scalar(select(Provider).where(Provider.slug == slug))
    if existing is not None:
        raise ProviderExists(existing, name=name, url=url, email=email)

    provider = Provider(slug=slug, name=name, url=url, email=email)
    session.add(provider)
    session.flush()
    audit(
        session,
        actor,
        "provider.created",
        provider_id=provider.id,
        target=f"provider:{slug}",
        detail={"name": name},
    )

    return provider


def list_providers(session: Session) -> list[Provider]:
    return list(session.scalars(select(Provider).order_by(Provider.slug)))


def provider_counts(session: Session, provider: Provider) -> dict[str, int]:
    """Count the provider's rows in every table that has a provider_id column."""
    from lti_tool.operations.tables import provider_tables

    counts = {}
    for table in provider_tables():
        count = session.scalar(
            select(func.count())
            .select_from(table)
            .where(table.c.provider_id == provider.id)
        )
        if count:
            counts[table.name] = count

    return counts


def remove_provider(session: Session, actor: str, provider: Provider) -> None:
    """Delete a provider that has nothing but its setup rows.

    A provider with connections, platforms, achievements or learners is rejected
    with `ActionError`, because removing it would orphan or lose them. Its audit
    events stay, with their provider set to None.
    """
    from lti_tool.operations.tables import provider_tables

    counts = provider_counts(session, provider)
    in_use = {
        name: count
        for name, count in counts.items()
        if name not in SETUP_TABLES and name != "audit_events"
    }
    if in_use:
        listed = ", ".join(f"{count} {name}" for name, count in sorted(in_use.items()))
        raise ActionError(
            f"provider {provider.slug!r} still has {listed}; remove those first, "
            "because a removed provider cannot be brought back",
            code="provider_in_use",
        )

    tables = {table.name: table for table in provider_tables()}
    for name in SETUP_TABLES:
        if name in tables:
            session.execute(
                delete(tables[name]).where(tables[name].c.provider_id == provider.id)
            )
    session.execute(
        update(tables["audit_events"])
        .where(tables["audit_events"].c.provider_id == provider.id)
        .values(provider_id=None)
    )
    audit(
        session,
        actor,
        "provider.removed",
        provider_id=None,
        target=f"provider:{provider.slug}",
    )
    session.delete(provider)
    session.flush()
