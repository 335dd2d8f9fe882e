"""Rows most tests need: a provider with an LMS connection."""

from __future__ import annotations

from badge_engine.models import Provider
from connectors.models import LmsConnection, LmsKind


def add_provider(session, slug: str = "academy", name: str = "Academy") -> Provider:
    provider = Provider(slug=slug, name=name, url=f"https://{slug}.example.invalid")
    session.add(provider)
    session.flush()
    return provider


def add_moodle_connection(
    session, vault, provider: Provider, base_url: str, token: str
):
    from lti_tool.views.webhooks import secret_digest

    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name=f"{provider.name} Moodle",
        base_url=base_url,
        api_token_encrypted=vault.encrypt(token),
        webhook_secret_sha256=secret_digest(f"webhook-secret-{provider.slug}"),
    )
    session.add(connection)
    session.flush()
    return connection
