"""Public URLs and ids, built from the public base URL and ids that never change.

    {base}/providers/{slug}                  issuer profile (Open Badges Profile)
    {base}/providers/{slug}/did.json         DID document of did:web:{host}:providers:{slug}
    {base}/achievements/{public_id}          achievement (BadgeClass in OB 2.0)
    {base}/credentials/{public_id}           credential, and its verification page

A credential, once issued, refers to these forever, so the slug freezes at a provider's
first credential and public ids are UUIDs that are never reused.
"""

from __future__ import annotations

from badge_engine.did import did_web


def issuer_profile_url(base_url: str, slug: str) -> str:
    return f"{base_url}/providers/{slug}"


def issuer_did(base_url: str, slug: str) -> str:
    """Return the did:web of a provider, resolved at {base}/providers/{slug}/did.json."""
    return did_web(base_url, ["providers", slug])


def achievement_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/achievements/{public_id}"


def credential_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/credentials/{public_id}"
