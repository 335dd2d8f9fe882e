"""Offline JSON-LD processing: local contexts and RDF canonicalisation.

Signing and verifying a Data Integrity proof canonicalise the credential to N-Quads,
which needs every JSON-LD context the credential names. The engine serves those
contexts from the files under `badge_engine/contexts/` and never from the network, so
a credential that names any other context is rejected with `ContextNotAvailable`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from pathlib import Path
from typing import Any

from pyld import jsonld

from badge_engine.errors import ContextNotAvailable, InvalidCredential

CONTEXTS_DIR = Path(__file__).parent / "contexts"

CONTEXT_FILES: dict[str, str] = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.jsonld",
    "https://www.w3.org/2018/credentials/v1": "2018-credentials-v1.jsonld",
    "https://w3id.org/security/data-integrity/v1": "data-integrity-v1.jsonld",
    "https://w3id.org/security/data-integrity/v2": "data-integrity-v2.jsonld",
    "https://w3id.org/security/multikey/v1": "multikey-v1.jsonld",
    "https://w3id.org/security/v1": "security-v1.jsonld",
    "https://w3id.org/security/v2": "security-v2.jsonld",
    "https://www.w3.org/ns/did/v1": "did-v1.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json": (
        "ob-v3p0-extensions.json"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context.json": "ob-v3p0-context.json",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json": (
        "ob-v3p0-context-3.0.1.json"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json": (
        "ob-v3p0-context-3.0.2.json"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": (
        "ob-v3p0-context-3.0.3.json"
    ),
    "https://w3id.org/openbadges/v1": "ob2/context-v1.json",
    "https://w3id.org/openbadges/v2": "ob2/context-v2.json",
}

_parsed_contexts: dict[str, Any] = {}

# The JSON-LD 1.1 API has no document base for an in-memory document, so a relative
# IRI stays relative and the statement is dropped. pyld 3.3 instead resolves it against
# http://example.org/base/, which would sign data other processors never see.
# Resolving against a reserved .invalid host makes relative IRIs easy to find. When
# none is found the output is what a processor without a base produces.
_RELATIVE_IRI_BASE = "https://relative-iri.invalid/"
_RELATIVE_IRI = re.compile(r"<https://relative-iri\.invalid/([^>]*)>")

# pyld 3.3 keeps resolved contexts in a module-level cachetools.LRUCache, which is not
# thread-safe. Canonicalisation is CPU-bound under the GIL anyway, so serialising it
# costs little and keeps the shared cache consistent in threaded workers.
_pyld_lock = threading.Lock()


def document_loader(url: str, options: dict | None = None) -> dict[str, Any]:
    """Load a JSON-LD context from the local copies, for use as pyld's documentLoader.

    Each file is parsed once and kept in memory. Every call returns a deep copy because
    pyld may rewrite relative URLs inside the context it receives. The `tag` "static"
    lets pyld keep the processed context in its shared cache across calls, so a context
    is normally loaded once per process. Raises ContextNotAvailable for any URL not in
    CONTEXT_FILES.
    """
    file_name = CONTEXT_FILES.get(url)
    if file_name is None:
        raise ContextNotAvailable(url)

    parsed = _parsed_contexts.get(url)
    if parsed is None:
        with open(CONTEXTS_DIR / file_name, encoding="utf-8") as context_file:
            parsed = json.load(context_file)
        _parsed_contexts[url] = parsed

    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(parsed),
        "tag": "static",
    }


def to_rdf_dataset(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Convert a JSON-LD document to pyld's RDF dataset form, with canonize's checks.

    Returns pyld's dataset: graph name ("@default" for the default graph) mapped to
    triples whose subject, predicate and object are dicts with "type" ("IRI", "blank
    node" or "literal") and "value". Raises what `canonize` raises, for the same
    reasons: a dropped property, a relative IRI, a context with no local copy, or
    input that is not JSON-LD.
    """
    dropped: list[str] = []
    processor = _processor(dropped)
    try:
        with _pyld_lock:
            dataset = processor.to_rdf(document, _pyld_options())
    except jsonld.JsonLdError as error:
        _raise_from_pyld(error, document)

    _check_dropped(dropped, document)
    relative_iris = sorted(
        iri[len(_RELATIVE_IRI_BASE) :]
        for iri in _dataset_iris(dataset)
        if iri.startswith(_RELATIVE_IRI_BASE)
    )
    _check_relative_iris(relative_iris, document)
    return dataset


def canonize(document: dict[str, Any]) -> str:
    """Canonicalise a JSON-LD document to N-Quads with RDFC-1.0 (URDNA2015 in pyld).

    This is the reference path: pyld expands and canonicalises every document.
    `badge_engine.canonical.canonize` gives the same output faster for documents of
    a repeated shape, and falls back to this function for all others.

    Contexts come from `document_loader` only. JSON-LD to RDF silently drops a property
    that no context defines, and every statement whose @id or @type is a relative IRI
    (such as the type "1EdTechRevocationList" without the OB extensions context). The
    signature would then not cover that content, so this function raises
    InvalidCredential naming such a property or IRI instead.

    Raises ContextNotAvailable when the document names a context with no local copy,
    and InvalidCredential when pyld rejects the document as JSON-LD.
    """
    dropped: list[str] = []
    processor = _processor(dropped)
    options = {**_pyld_options(), "algorithm": "URDNA2015"}
    options["format"] = "application/n-quads"
    try:
        with _pyld_lock:
            nquads = processor.normalize(document, options)
    except jsonld.JsonLdError as error:
        _raise_from_pyld(error, document)

    _check_dropped(dropped, document)
    _check_relative_iris(sorted(set(_RELATIVE_IRI.findall(nquads))), document)
    return nquads


def _dataset_iris(dataset: dict[str, list[dict[str, Any]]]) -> set[str]:
    iris = set(dataset)
    for triples in dataset.values():
        for triple in triples:
            for component in triple.values():
                if component["type"] == "IRI":
                    iris.add(component["value"])
                elif component["type"] == "literal":
                    iris.add(component.get("datatype") or "")

    return iris


def _processor(dropped: list[str]) -> jsonld.JsonLdProcessor:
    return jsonld.JsonLdProcessor(
        on_property_dropped=lambda expanded: dropped.append(
            "(a term mapped to null)" if expanded is None else expanded
        )
    )


def _pyld_options() -> dict[str, Any]:
    return {"documentLoader": document_loader, "base": _RELATIVE_IRI_BASE}


def _check_dropped(dropped: list[str], document: dict[str, Any]) -> None:
    if dropped:
        raise InvalidCredential(
            f"JSON-LD expansion dropped the properties {sorted(set(dropped))} "
            "because no @context defines them, so a signature would not cover them. "
            "Define them in a context or remove them.",
            credential_id=_document_id(document),
        )


def _check_relative_iris(relative_iris: list[str], document: dict[str, Any]) -> None:
    if relative_iris:
        raise InvalidCredential(
            f"The document uses the relative IRIs {relative_iris} as @id or @type "
            "values, which JSON-LD processors drop from the signed data. Use absolute "
            "URLs, or add the context that defines the type (the 1EdTech types are in "
            "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json).",
            credential_id=_document_id(document),
        )


def _raise_from_pyld(error: jsonld.JsonLdError, document: dict[str, Any]) -> None:
    # pyld wraps the loader's exception several levels deep; surface the first
    # ContextNotAvailable so the caller learns which URL was missing.
    innermost = error
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ContextNotAvailable):
            raise ContextNotAvailable(cause.url) from error
        if isinstance(cause, jsonld.JsonLdError):
            innermost = cause
        cause = cause.__cause__ or cause.__context__

    reason = innermost.args[0] if innermost.args else innermost.type
    if innermost.code:
        reason = f"{reason} (JSON-LD error code: {innermost.code})"
    raise InvalidCredential(
        f"The document is not valid JSON-LD: {reason}",
        credential_id=_document_id(document),
    ) from error


def _document_id(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        return document["id"]

    return None
