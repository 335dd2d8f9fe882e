"""Offline JSON-LD loading and canonicalisation."""

import json
import socket
from pathlib import Path

import pytest

from badge_engine import jsonld
from badge_engine.errors import ContextNotAvailable, InvalidCredential

VECTOR = json.loads(
    (Path(__file__).parent / "vectors/eddsa-rdfc-2022.json").read_text()
)


@pytest.fixture
def no_network(monkeypatch):
    """Make any attempt to open a network connection fail the test."""

    def refuse(*args, **kwargs):
        pytest.fail("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_context_files_all_exist():
    """Every URL in CONTEXT_FILES maps to a file that parses as a JSON-LD context."""
    for url, file_name in jsonld.CONTEXT_FILES.items():
        path = jsonld.CONTEXTS_DIR / file_name
        assert path.is_file(), url
        assert "@context" in json.loads(path.read_text(encoding="utf-8")), url


def test_document_loader_serves_local_copy(no_network):
    """The loader returns the local context under the requested URL."""
    url = "https://www.w3.org/ns/credentials/v2"

    remote = jsonld.document_loader(url)

    assert remote["documentUrl"] == url
    assert remote["document"]["@context"]["@protected"] is True


def test_document_loader_returns_independent_copies():
    """Changing one loaded context does not change the cached one."""
    url = "https://w3id.org/security/multikey/v1"

    jsonld.document_loader(url)["document"]["@context"]["id"] = "changed"

    assert jsonld.document_loader(url)["document"]["@context"]["id"] == "@id"


def test_document_loader_unknown_url_raises(no_network):
    """An unknown URL raises ContextNotAvailable naming the URL."""
    with pytest.raises(ContextNotAvailable) as raised:
        jsonld.document_loader("https://example.org/contexts/unknown.jsonld")

    assert raised.value.url == "https://example.org/contexts/unknown.jsonld"
    assert "https://example.org/contexts/unknown.jsonld" in str(raised.value)


def test_canonize_unknown_context_raises_offline(no_network):
    """A document naming an unknown context raises ContextNotAvailable, not a fetch."""
    document = dict(VECTOR["unsecuredCredential"])
    document["@context"] = [*document["@context"], "https://example.org/ctx/v1"]

    with pytest.raises(ContextNotAvailable) as raised:
        jsonld.canonize(document)

    assert raised.value.url == "https://example.org/ctx/v1"


def test_canonize_vector_document(no_network):
    """The official vector's credential canonicalises to its expected N-Quads."""
    nquads = jsonld.canonize(VECTOR["unsecuredCredential"])

    assert nquads == VECTOR["expected"]["documentCanonicalNQuads"]


def test_canonize_undefined_property_raises():
    """A property that no context defines is rejected instead of left unsigned."""
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "https://example.org/credentials/1",
        "type": ["VerifiableCredential"],
        "unsignedNote": "would be dropped",
    }

    with pytest.raises(InvalidCredential) as raised:
        jsonld.canonize(document)

    assert "unsignedNote" in str(raised.value)
    assert raised.value.credential_id == "https://example.org/credentials/1"


def test_canonize_relative_type_raises():
    """A type that no context defines is a relative IRI and is rejected by name."""
    document = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "id": "https://example.org/credentials/1",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "credentialStatus": {
            "id": "https://example.org/status/1",
            "type": "1EdTechRevocationList",
        },
    }

    with pytest.raises(InvalidCredential) as raised:
        jsonld.canonize(document)

    assert "1EdTechRevocationList" in str(raised.value)
    assert "extensions.json" in str(raised.value)


def test_canonize_invalid_json_ld_raises():
    """A malformed @context raises InvalidCredential with pyld's reason."""
    document = {"@context": [{"term": 5}], "id": "https://example.org/1"}

    with pytest.raises(InvalidCredential) as raised:
        jsonld.canonize(document)

    assert "not valid JSON-LD" in str(raised.value)
