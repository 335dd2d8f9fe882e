"""Public URLs and ids, built from the public base URL and ids that never change.

    {base}/providers/{slug}                  issuer profile (Open Badges Profile)
    {base}/providers/{slug}/did.json         DID document of did:web:{host}:providers:{slug}
    {base}/achievements/{public_id}          achievement (BadgeClass in OB 2.0)
    {base}/credentials/{public_id}           credential, and its verification page

A credential, once issued, refers to these forever, so the slug freezes at a provider's
first credential and public ids are UUIDs that are never reused.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit


def issuer_profile_url(base_url: str, slug: str) -> str:
    return f"{base_url}/providers/{slug}"


def issuer_did(base_url: str, slug: str) -> str:
    """Return the did:web of a provider, whose document is at /providers/{slug}/did.json.

    did:web puts the host (with the port percent-encoded) first and turns each path
    segment into a colon-separated part; a base URL with a path keeps that path.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}%3A{parts.port}"
    segments = [segment for segment in parts.path.split("/") if segment]
    segments += ["providers", slug]
    return "did:web:" + ":".join([host, *(quote(s, safe="") for s in segments)])


def achievement_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/achievements/{public_id}"


def credential_url(base_url: str, public_id: str) -> str:
    return f"{base_url}/credentials/{public_id}"
