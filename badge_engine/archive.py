"""Credential archives: everything needed to verify a credential without our servers.

An archive is one JSON document:

    {"type": "HPassCredentialArchive", "version": 1, "createdAt": ...,
     "credential": {...signed OpenBadgeCredential...},
     "didDocuments": {did: document with the issuer's keys as of issue time},
     "statusLists": {url: signed BitstringStatusListCredential as of createdAt},
     "versions": {...the credential's version history as of createdAt...},
     "contexts": {url: JSON-LD context}}

`badge_engine.verify_archive.verify_archive` resolves every lookup from the archive
and fetches nothing, so a verification still works after the issuer's server is
gone. What it cannot know is stated in the report: a revocation after
`createdAt`, and a key the issuer withdrew after issue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine import did
from badge_engine.corrections import versions_document
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.db import utcnow
from badge_engine.outbound import OutboundBlocked
from badge_engine.outbound.documents import FetchedDocument
from badge_engine.issuers import (
    active_signing_key,
    load_private_key,
    verification_method_id,
)
from badge_engine.jsonld import CONTEXT_FILES, CONTEXTS_DIR
from badge_engine.models import Credential, Provider, SigningKey
from badge_engine.ob3 import format_timestamp
from badge_engine.status import STATUS_LIST_BITS, build_status_list_credential
from badge_engine.urls import issuer_did

ARCHIVE_TYPE = "HPassCredentialArchive"
ARCHIVE_VERSION = 1


def build_archive(
    session: Session, *, vault, base_url: str, credential: Credential
) -> dict[str, Any]:
    """Build the archive of one credential, scoped by its provider.

    The DID document lists only keys created at or before the credential was issued,
    so a key added later cannot make the archive vouch for something else.
    """
    provider = session.get(Provider, credential.provider_id)
    did_id = issuer_did(base_url, provider.slug)
    keys = session.scalars(
        select(SigningKey)
        .where(
            SigningKey.provider_id == provider.id,
            SigningKey.created_at <= credential.issued_at,
        )
        .order_by(SigningKey.id)
    ).all()
    did_document = did.build_did_document(
        did_id, {key.key_name: key.public_key_multibase for key in keys}
    )

    status_lists = {}
    if credential.status_list_index is not None:
        status_list = _signed_status_list(
            session,
            vault,
            base_url,
            provider,
            credential.status_list_index // STATUS_LIST_BITS,
        )
        status_lists[status_list["id"]] = status_list

    documents = [credential.document, did_document, *status_lists.values()]
    return {
        "type": ARCHIVE_TYPE,
        "version": ARCHIVE_VERSION,
        "createdAt": format_timestamp(utcnow()),
        "credential": credential.document,
        "didDocuments": {did_id: did_document},
        "statusLists": status_lists,
        "versions": versions_document(session, base_url, credential),
        "contexts": _contexts_of(documents),
    }


def _signed_status_list(
    session: Session, vault, base_url: str, provider: Provider, list_number: int
) -> dict[str, Any]:
    unsigned = build_status_list_credential(
        session, base_url, provider, issuer_did(base_url, provider.slug), list_number
    )
    key = active_signing_key(session, vault, provider)
    return sign_eddsa_rdfc_2022(
        unsigned,
        load_private_key(vault, key),
        verification_method_id(base_url, provider, key),
        created=utcnow(),
    )


def _contexts_of(documents: list[dict[str, Any]]) -> dict[str, Any]:
    urls: set[str] = set()
    for document in documents:
        _collect_contexts(document, urls)
    contexts = {}
    for url in sorted(urls):
        file_name = CONTEXT_FILES.get(url)
        if file_name is not None:
            contexts[url] = json.loads((CONTEXTS_DIR / file_name).read_text("utf-8"))
    return contexts


def _collect_contexts(node: Any, urls: set[str]) -> None:
    if isinstance(node, dict):
        context = node.get("@context")
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, str):
                urls.add(item)
        for value in node.values():
            _collect_contexts(value, urls)
    elif isinstance(node, list):
        for value in node:
            _collect_contexts(value, urls)


def is_archive(document: dict[str, Any]) -> bool:
    return document.get("type") == ARCHIVE_TYPE


@dataclass
class ArchiveFetcher:
    """A fetcher that serves the archive's status lists and version history and
    reaches no network. It has the DocumentFetcher's `get` and `allow_loopback`."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    allow_loopback: bool = False
    missing_urls: list[str] = field(default_factory=list)

    def get(self, url: str, accept: str = "application/json") -> FetchedDocument:
        document = self.documents.get(url)
        if document is None:
            self.missing_urls.append(url)
            raise OutboundBlocked(
                "The document is not in the archive, and archive verification "
                "fetches nothing",
                url=url,
                code="not_in_archive",
            )
        return FetchedDocument(
            url=url,
            status_code=200,
            content_type="application/json",
            body=json.dumps(document).encode("utf-8"),
        )


def archive_documents(archive: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the archive's fetchable documents by URL (status lists, versions)."""
    documents: dict[str, dict[str, Any]] = {}
    status_lists = archive.get("statusLists")
    if isinstance(status_lists, dict):
        documents.update(
            (url, doc) for url, doc in status_lists.items() if isinstance(doc, dict)
        )
    versions = archive.get("versions")
    if isinstance(versions, dict) and isinstance(versions.get("id"), str):
        documents[versions["id"] + "/versions"] = versions
    return documents
