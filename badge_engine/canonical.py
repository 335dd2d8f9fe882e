"""RDFC-1.0 canonicalisation that expands each document shape through pyld only once.

pyld 3.3 takes 1 to 2 ms to canonicalise one credential (bench/issue.py), most of it
spent expanding JSON-LD. The credentials the bridge issues come in a few fixed shapes:
the same keys, nesting, array lengths, types and contexts, with different strings.
`canonize` therefore works in three steps:

1. Shape. A walk of the document records its structure. Keys, the values of `type`
   and of keywords (`@context`, `@type`, ...), numbers, booleans and nulls belong to
   the shape. Every other string is a leaf.
2. Template. The first document of a shape goes through pyld's JSON-LD to RDF with
   each leaf replaced by the placeholder IRI `urn:x-hpass-leaf:<n>`. Each placeholder
   lands either as an IRI (an `@id` value) or as the lexical form of a literal, and
   the template records where. Later documents of the shape put their own strings in
   those places.
3. Labels. RDFC-1.0 hashes each blank node's first-degree quads. When those hashes
   are all distinct, sorting them gives the canonical labels, and the N-degree step
   of the algorithm is never needed.

Putting a string in place of its placeholder gives what pyld would produce only when
the string's value does not change how JSON-LD expands it:

- A literal's lexical form is the string itself, except under the datatypes `@json`
  and `xsd:double`, which pyld rewrites. Templates with such leaves are rejected.
- An IRI leaf must be an absolute IRI whose scheme and whole value are not terms of
  any local context, so that IRI expansion returns it unchanged. Any other value (the
  term "assertionMethod" under `proofPurpose`, a relative URL) is expanded by pyld in
  a template of its own that contains that value.

Every other document is canonicalised by `jsonld.canonize` (pyld) instead: a shape
pyld rejects or whose leaves do not all reappear, blank nodes whose first-degree
hashes collide, and equal values that pyld would merge into one quad. `fallback_count`
counts those documents, and each one is logged at debug level.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyld.nquads import RDF_LANGSTRING, XSD_STRING, escape

from badge_engine import jsonld
from badge_engine.errors import BadgeEngineError

logger = logging.getLogger(__name__)

XSD_DOUBLE = "http://www.w3.org/2001/XMLSchema#double"
_LEAF_PREFIX = "urn:x-hpass-leaf:"
_LEAF = re.compile(r"urn:x-hpass-leaf:(\d+)")
_LINE = re.compile(r"[^\n]*\n")
# pyld's own test for an absolute IRI, without the blank node prefix "_" and without
# the comma that its character range lets into a scheme.
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*")

# Keys whose values are part of the shape rather than leaves: they change which
# contexts and types apply, so a template cannot hold them as placeholders. Every
# other key starting with "@" is treated the same, except these two.
_SHAPE_KEYS = frozenset({"type", "@type", "@context"})
_LEAF_KEYWORDS = frozenset({"@id", "@value"})

# Tokens of a shape key. Plain objects compare equal only to themselves.
_OPEN_OBJECT = object()
_OPEN_ARRAY = object()
_CLOSE = object()
_STRING = object()

# A provider's credentials take a few shapes: one per tag count and set of optional
# members. The cache is emptied when full rather than kept in least-recently-used
# order, which would need a lock per lookup.
MAX_TEMPLATES = 1024

_templates: dict[Any, _Template | None] = {}
_build_lock = threading.Lock()
_context_terms: frozenset[str] | None = None
_fallbacks = 0


class _Unsupported(Exception):
    """The document or its RDF falls outside what a template can reproduce."""


@dataclass(frozen=True)
class _Template:
    """The N-Quads of one document shape, as `str.format` strings with slots.

    With n leaves, field `{i}` is leaf i as an IRI, field `{n + i}` is leaf i escaped
    as a literal, and field `{2n + b}` is the label of blank node b. Every quad is one
    line ending in a newline, and no slot can add another newline.
    """

    leaf_count: int
    iri_leaves: tuple[int, ...]
    literal_leaves: tuple[int, ...]
    # Every quad of the document, in no particular order.
    quads: str
    # For each blank node, its first-degree quads: those it occurs in, once per
    # occurrence, with _:a for the node itself and _:z for other blank nodes.
    first_degree_quads: tuple[str, ...]


def canonize(document: dict[str, Any]) -> str:
    """Canonicalise a JSON-LD document to N-Quads with RDFC-1.0.

    The output is meant to equal `jsonld.canonize(document)` (pyld's URDNA2015) for
    every document, and tests/badge_engine/test_canonical.py compares the two on
    generated credentials. Errors are pyld's, because every document outside the
    template path, including every invalid one, goes to `jsonld.canonize`.
    """
    nquads, reason = _canonize_from_template(document)
    if nquads is not None:
        return nquads

    global _fallbacks
    _fallbacks += 1
    logger.debug(
        "canonicalising with pyld because %s (credential_id=%s, fallbacks=%d)",
        reason,
        document.get("id") if isinstance(document, dict) else None,
        _fallbacks,
    )
    return jsonld.canonize(document)


def fallback_count() -> int:
    """Return how many documents `canonize` has passed to pyld in this process."""
    return _fallbacks


def clear_templates() -> None:
    """Forget every template, so that the next document of each shape builds one."""
    _templates.clear()


def _canonize_from_template(document: Any) -> tuple[str | None, str]:
    tokens: list[Any] = []
    leaves: list[str] = []
    try:
        _walk(document, tokens, leaves)
    except _Unsupported as error:
        return None, f"the document has {error}"

    shape = tuple(tokens)
    template = _template_for(shape, document, {})
    if template is None:
        return None, "pyld rejected the shape or its leaves do not map one to one"

    fixed = {
        index: leaves[index]
        for index in template.iri_leaves
        if not _is_plain_iri(leaves[index])
    }
    if fixed:
        template = _template_for((shape, tuple(fixed.items())), document, fixed)
        if template is None:
            return None, "an IRI leaf is not an absolute IRI that expands to itself"
        if any(not _is_plain_iri(leaves[index]) for index in template.iri_leaves):
            return None, "an IRI leaf is not an absolute IRI that expands to itself"

    return _fill(template, leaves)


def _walk(node: Any, tokens: list[Any], leaves: list[str]) -> None:
    node_type = type(node)
    if node_type is str:
        tokens.append(_STRING)
        leaves.append(node)
    elif node_type is dict:
        tokens.append(_OPEN_OBJECT)
        for key, value in node.items():
            if type(key) is not str:
                raise _Unsupported(f"the non-string key {key!r}")
            tokens.append(key)
            if key in _SHAPE_KEYS or (key[:1] == "@" and key not in _LEAF_KEYWORDS):
                tokens.append(_freeze(key, value))
            elif type(value) is str:
                # Most values are strings: skip a call for them.
                tokens.append(_STRING)
                leaves.append(value)
            else:
                _walk(value, tokens, leaves)
        tokens.append(_CLOSE)
    elif node_type is list:
        tokens.append(_OPEN_ARRAY)
        for item in node:
            _walk(item, tokens, leaves)
        tokens.append(_CLOSE)
    elif node is None or node_type is bool or node_type is int:
        tokens.append((node_type, node))
    elif node_type is float and math.isfinite(node):
        # repr keeps -0.0 apart from 0.0, which pyld writes differently.
        tokens.append((float, repr(node)))
    else:
        raise _Unsupported(f"a value of type {node_type.__name__}")


def _freeze(key: str, value: Any) -> Any:
    if type(value) is str:
        return ("s", value)
    if type(value) is list and all(type(item) is str for item in value):
        return ("l", *value)
    if key == "@context":
        # An embedded context may define terms that `_is_plain_iri` does not know.
        raise _Unsupported("an embedded @context object")
    try:
        return ("j", json.dumps(value))
    except (TypeError, ValueError) as error:
        raise _Unsupported(f"a {key} value that is not JSON") from error


def _template_for(
    key: Any, document: dict[str, Any], fixed: dict[int, str]
) -> _Template | None:
    try:
        return _templates[key]
    except KeyError:
        pass

    with _build_lock:
        # Another thread may have built it while this one waited for the lock.
        if key in _templates:
            return _templates[key]

        template = _build_template(document, fixed)
        if len(_templates) >= MAX_TEMPLATES:
            _templates.clear()
        _templates[key] = template
    return template


def _build_template(
    document: dict[str, Any], fixed: dict[int, str]
) -> _Template | None:
    counter = itertools.count()
    placeholder_document = _with_placeholders(document, counter, fixed)
    leaf_count = next(counter)
    try:
        dataset = jsonld.to_rdf_dataset(placeholder_document)
    except BadgeEngineError as error:
        logger.debug("no template for this shape: pyld rejected it: %s", error)
        return None

    builder = _TemplateBuilder(leaf_count)
    try:
        for graph_name, triples in dataset.items():
            for triple in triples:
                builder.add(triple, None if graph_name == "@default" else graph_name)
        return builder.build(set(fixed))
    except _Unsupported as error:
        logger.debug("no template for this shape: %s", error)
        return None


def _with_placeholders(
    node: Any, counter: itertools.count, fixed: dict[int, str]
) -> Any:
    if type(node) is str:
        index = next(counter)
        return fixed.get(index, f"{_LEAF_PREFIX}{index}")
    if type(node) is dict:
        copy = {}
        for key, value in node.items():
            if key in _SHAPE_KEYS or (key[:1] == "@" and key not in _LEAF_KEYWORDS):
                copy[key] = value
            else:
                copy[key] = _with_placeholders(value, counter, fixed)
        return copy
    if type(node) is list:
        return [_with_placeholders(item, counter, fixed) for item in node]
    return node


class _TemplateBuilder:
    """Turns pyld's RDF of a placeholder document into a `_Template`."""

    def __init__(self, leaf_count: int) -> None:
        self.leaf_count = leaf_count
        self.iri_leaves: set[int] = set()
        self.literal_leaves: set[int] = set()
        self.node_indexes: dict[str, int] = {}
        # Each quad as text pieces and blank node indexes, in serialisation order.
        self.quads: list[list[str | int]] = []

    def add(self, triple: dict[str, Any], graph_name: str | None) -> None:
        # Serialise as pyld.nquads.serialize_nquad does, with slots for leaves and
        # blank nodes.
        pieces: list[str | int] = []
        self._term(triple["subject"], pieces)
        pieces.append(" ")
        self._term(triple["predicate"], pieces)
        pieces.append(" ")
        self._term(triple["object"], pieces)
        if graph_name is not None:
            pieces.append(" ")
            kind = "blank node" if graph_name.startswith("_:") else "IRI"
            self._term({"type": kind, "value": graph_name}, pieces)
        pieces.append(" .\n")

        text = "".join(piece for piece in pieces if isinstance(piece, str))
        if text.count("\n") != 1:
            raise _Unsupported("a term that contains a line break")
        self.quads.append(pieces)

    def _term(self, term: dict[str, Any], pieces: list[str | int]) -> None:
        kind = term["type"]
        value = term["value"]
        if kind == "blank node":
            pieces.append(self.node_indexes.setdefault(value, len(self.node_indexes)))
        elif kind == "IRI":
            leaf = self._leaf(value)
            if leaf is None:
                pieces.append("<" + _format_text(value) + ">")
            else:
                self.iri_leaves.add(leaf)
                pieces.append(f"<{{{leaf}}}>")
        else:
            pieces.append(self._literal(term))

    def _literal(self, term: dict[str, Any]) -> str:
        datatype = term["datatype"]
        language = term.get("language")
        suffix = ""
        if datatype == RDF_LANGSTRING:
            if language:
                suffix = "@" + language
        elif datatype != XSD_STRING:
            suffix = "^^<" + datatype + ">"
        if _LEAF_PREFIX in suffix:
            raise _Unsupported("a leaf used as a datatype or language")

        leaf = self._leaf(term["value"])
        if leaf is None:
            return (
                '"' + _format_text(escape(term["value"])) + '"' + _format_text(suffix)
            )
        if datatype == XSD_DOUBLE:
            raise _Unsupported("an xsd:double leaf, whose form pyld rewrites")

        self.literal_leaves.add(leaf)
        return f'"{{{self.leaf_count + leaf}}}"' + _format_text(suffix)

    def _leaf(self, value: str) -> int | None:
        match = _LEAF.fullmatch(value)
        if match is not None:
            return int(match[1])
        if _LEAF_PREFIX in value:
            raise _Unsupported("a leaf that JSON-LD rewrote (such as an @json value)")
        return None

    def build(self, fixed: set[int]) -> _Template:
        unused = set(range(self.leaf_count)) - fixed - self.iri_leaves
        unused -= self.literal_leaves
        if unused:
            raise _Unsupported(f"leaves {sorted(unused)} with no place in the RDF")

        label_field = 2 * self.leaf_count
        quads = "".join(
            self._render(pieces, lambda node: f"{{{label_field + node}}}")
            for pieces in self.quads
        )
        first_degree = [[] for _ in self.node_indexes]
        for pieces in self.quads:
            for node in pieces:
                if isinstance(node, int):
                    first_degree[node].append(
                        self._render(
                            pieces,
                            lambda other, node=node: "_:a" if other == node else "_:z",
                        )
                    )

        return _Template(
            leaf_count=self.leaf_count,
            iri_leaves=tuple(sorted(self.iri_leaves)),
            literal_leaves=tuple(sorted(self.literal_leaves)),
            quads=quads,
            first_degree_quads=tuple("".join(lines) for lines in first_degree),
        )

    @staticmethod
    def _render(pieces: list[str | int], label: Callable[[int], str]) -> str:
        return "".join(
            label(piece) if isinstance(piece, int) else piece for piece in pieces
        )


def _fill(template: _Template, leaves: list[str]) -> tuple[str | None, str]:
    leaf_count = template.leaf_count
    node_count = len(template.first_degree_quads)
    arguments = leaves + [""] * (leaf_count + node_count)
    for index in template.literal_leaves:
        arguments[leaf_count + index] = escape(leaves[index])

    # RDFC-1.0 Hash First Degree Quads for every blank node.
    hashes = []
    for quads in template.first_degree_quads:
        lines = _LINE.findall(quads.format(*arguments))
        lines.sort()
        hashes.append(hashlib.sha256("".join(lines).encode()).hexdigest())
    if len(set(hashes)) != node_count:
        return None, "two blank nodes have the same first-degree hash"

    ranked = sorted(range(node_count), key=hashes.__getitem__)
    for rank, node in enumerate(ranked):
        arguments[2 * leaf_count + node] = f"_:c14n{rank}"

    lines = _LINE.findall(template.quads.format(*arguments))
    if len(set(lines)) != len(lines):
        return None, "equal values that pyld merges into one quad"

    lines.sort()
    return "".join(lines), ""


def _format_text(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _is_plain_iri(value: str) -> bool:
    if _ABSOLUTE_IRI.fullmatch(value) is None:
        return False

    terms = _terms()
    return value.partition(":")[0] not in terms and value not in terms


def _terms() -> frozenset[str]:
    """Return every key in the local context files, a superset of their terms."""
    global _context_terms
    if _context_terms is None:
        keys: set[str] = set()
        for url in jsonld.CONTEXT_FILES:
            _collect_keys(jsonld.document_loader(url)["document"], keys)
        _context_terms = frozenset(keys)
    return _context_terms


def _collect_keys(node: Any, keys: set[str]) -> None:
    if isinstance(node, dict):
        keys.update(node)
        for value in node.values():
            _collect_keys(value, keys)
    elif isinstance(node, list):
        for item in node:
            _collect_keys(item, keys)
