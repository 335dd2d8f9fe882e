"""Shared state of one verification: the clock, the guarded fetcher, DID resolution
and the expected recipient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badge_engine.did import (
    did_web_document_url,
    public_key_from_did_document,
    resolve_did_key,
)
from badge_engine.errors import InvalidDid, VerificationError
from badge_engine.outbound import (
    OutboundConnectionFailed,
    OutboundError,
    OutboundStatusError,
    OutboundTimeout,
    OutboundTlsFailed,
)
from badge_engine.outbound.documents import DocumentFetcher

# Nesting deeper than this is no credential, and would hit Python's recursion limit.
MAX_JSON_DEPTH = 64


class UnsupportedDidMethod(InvalidDid):
    """A DID whose method the verifier cannot resolve (only did:web and did:key)."""


class UnreadableDocument(ValueError):
    """A fetched or supplied document is not a JSON object; `code` names why."""

    def __init__(self, message: str, code: str = "invalid_json") -> None:
        self.code = code
        super().__init__(message)


@dataclass
class VerifyContext:
    """Settings and caches of one verification.

    `resolve_did_document` replaces the did:web fetch (the web app resolves its own
    issuers from the database). `recipient` is the email address or identifier the
    credential must be issued to, or None to check only that it names someone.
    """

    fetcher: DocumentFetcher = field(default_factory=DocumentFetcher)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    recipient: str | None = None
    resolve_did_document: Callable[[str], dict[str, Any]] | None = None
    did_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Looks up the stored reason of a revoked credential by its id, because a
    # bitstring status list records only that a credential is revoked, not why.
    revocation_reason: Callable[[str], str | None] | None = None

    def fetch_json(self, url: str, accept: str = "application/json") -> dict[str, Any]:
        """Fetch `url` through the guarded client and parse a JSON object.

        Raises OutboundError or UnreadableDocument.
        """
        fetched = self.fetcher.get(url, accept=accept)
        return parse_json_object(fetched.body)

    def did_document(self, did: str) -> dict[str, Any]:
        """Resolve a did:web DID to its document, once per verification.

        Raises InvalidDid for another DID method, and OutboundError or
        UnreadableDocument when the document cannot be fetched or read.
        """
        if did in self.did_documents:
            return self.did_documents[did]

        if not did.startswith("did:web:"):
            raise UnsupportedDidMethod(
                "Only did:web and did:key issuers can be resolved; this DID method "
                "is not supported.",
                did=did,
            )
        if self.resolve_did_document is not None:
            document = self.resolve_did_document(did)
        else:
            url = did_web_document_url(
                did, allow_http_loopback=self.fetcher.allow_loopback
            )
            document = self.fetch_json(url, accept="application/did+json")
        self.did_documents[did] = document
        return document

    def public_key(self, verification_method: str) -> Ed25519PublicKey:
        """Return the Ed25519 key of a did:key or did:web verification method.

        Raises InvalidDid, VerificationError, OutboundError or UnreadableDocument.
        """
        if verification_method.startswith("did:key:"):
            return resolve_did_key(verification_method)
        if not verification_method.startswith("did:"):
            raise VerificationError(
                "Expected a DID URL such as did:web:example.org#key-1.",
                verification_method=verification_method,
            )
        if "#" not in verification_method:
            raise VerificationError(
                "The verification method has no fragment naming the key.",
                verification_method=verification_method,
            )

        did = verification_method.partition("#")[0]
        return public_key_from_did_document(self.did_document(did), verification_method)

    def recipient_matches(self, identity: str, hashed: bool, salt: Any) -> bool:
        """Check whether the expected recipient has this (maybe hashed) identity."""
        if self.recipient is None:
            raise ValueError(
                "recipient_matches needs the expected recipient; set it before calling"
            )
        if not hashed:
            return identity.strip().lower() == self.recipient.strip().lower()

        algorithm, _, expected = identity.partition("$")
        # Issuers differ in how they print hex digits, so compare without case.
        algorithm, expected = algorithm.lower(), expected.lower()
        salt_text = salt if isinstance(salt, str) else ""
        candidates = {self.recipient, self.recipient.strip().lower()}
        for candidate in candidates:
            data = (candidate + salt_text).encode("utf-8")
            if algorithm == "sha256" and hashlib.sha256(data).hexdigest() == expected:
                return True
            # Open Badges 2.0 lets an issuer hash the recipient with MD5; the digest
            # only matches an identity, it protects nothing here.
            digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if algorithm == "md5" and digest == expected:
                return True

        return False


RESOLUTION_ERRORS = (
    InvalidDid,
    VerificationError,
    OutboundError,
    UnreadableDocument,
)


# Gateway statuses: the server in front of the issuer responded, the issuer did not.
_UNREACHABLE_STATUSES = (502, 503, 504)


def is_unreachable(error: Exception) -> bool:
    """Return whether `error` means the document's server could not be reached.

    Such an error is not a verdict on the credential, because the check that needed
    the document could not run. A TLS failure is not counted, because an invalid certificate can mean
    an impostor, and neither is an address the outbound policy blocks.
    """
    if isinstance(error, OutboundTlsFailed):
        return False
    if isinstance(error, (OutboundConnectionFailed, OutboundTimeout)):
        return True
    return (
        isinstance(error, OutboundStatusError) and error.status in _UNREACHABLE_STATUSES
    )


def parse_json_object(data: bytes | str) -> dict[str, Any]:
    """Parse a JSON object, rejecting other JSON values and deep nesting."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise UnreadableDocument(f"The document is not valid JSON: {error}") from error

    if not isinstance(value, dict):
        raise UnreadableDocument(
            f"Expected a JSON object, received a {type(value).__name__}.",
            code="invalid_type",
        )
    if _depth(value) > MAX_JSON_DEPTH:
        raise UnreadableDocument(
            f"The JSON nests deeper than {MAX_JSON_DEPTH} levels.", code="invalid_type"
        )

    return value


def _depth(value: Any) -> int:
    depth = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if level > MAX_JSON_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)

    return depth
