"""Errors raised by the badge engine.

Every error carries the identifiers a reader needs to find the object at fault, and its
message states what failed and what to do next. A credential that fails verification is
not an error: the verify functions return a `VerificationResult` naming the node at
fault. They raise only when the caller passed something unusable.

The tree::

    BadgeEngineError
    ├── ContextNotAvailable        a JSON-LD context URL with no local copy
    ├── SigningError               a credential could not be signed
    ├── VerificationError          a key could not be resolved or is not authorised
    ├── InvalidCredential          (also ValueError) a credential or JSON-LD document
    │                              that is malformed
    ├── InvalidKey                 (also ValueError) a key encoding that cannot be
    │                              decoded
    └── InvalidDid                 (also ValueError) a malformed DID or DID document
"""

from __future__ import annotations


class BadgeEngineError(Exception):
    """Base class of every error the badge engine raises on purpose."""


class ContextNotAvailable(BadgeEngineError):
    """A JSON-LD context was requested that has no local copy.

    The engine never fetches a context from the network, so a document that refers to an
    unknown context cannot be canonicalised, signed or verified.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"JSON-LD context {url!r} has no local copy, and contexts are never "
            "fetched from the network. Remove it from the document's @context, or "
            "add the file under badge_engine/contexts/ and list it in "
            "badge_engine.jsonld.CONTEXT_FILES."
        )


class _ProofError(BadgeEngineError):
    """An error about a proof, naming the credential and the verification method."""

    def __init__(
        self,
        message: str,
        *,
        credential_id: str | None = None,
        verification_method: str | None = None,
    ) -> None:
        self.credential_id = credential_id
        self.verification_method = verification_method
        super().__init__(
            _with_ids(
                message,
                credential_id=credential_id,
                verification_method=verification_method,
            )
        )


class SigningError(_ProofError):
    """A document could not be signed."""


class VerificationError(_ProofError):
    """A verification key could not be resolved or is not authorised for the proof.

    The verify functions catch this error and report it in their result. Key resolvers
    raise it so that the result names the verification method and the reason.
    """


class InvalidCredential(BadgeEngineError, ValueError):
    """A credential, or another JSON-LD document, is malformed.

    `path` is the JSON path of the node at fault when it is known, such as
    `$.credentialSubject.identifier[0]`.
    """

    def __init__(
        self,
        message: str,
        *,
        credential_id: str | None = None,
        path: str | None = None,
    ) -> None:
        self.credential_id = credential_id
        self.path = path
        super().__init__(_with_ids(message, credential_id=credential_id, path=path))


class InvalidKey(BadgeEngineError, ValueError):
    """A key encoding (multibase, multicodec, JWK or seed) cannot be decoded.

    `value` is the encoded public key when there is one. Private key material never
    appears in the error.
    """

    def __init__(self, message: str, *, value: str | None = None) -> None:
        self.value = value
        super().__init__(_with_ids(message, value=value))


class InvalidDid(BadgeEngineError, ValueError):
    """A DID, a DID URL or a DID document is malformed or unsupported."""

    def __init__(self, message: str, *, did: str | None = None) -> None:
        self.did = did
        super().__init__(_with_ids(message, did=did))


def _with_ids(message: str, **ids: str | None) -> str:
    known = [f"{name}={value!r}" for name, value in ids.items() if value is not None]
    if not known:
        return message

    return f"{message} ({', '.join(known)})"
