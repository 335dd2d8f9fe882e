"""Template canonicalisation against pyld's URDNA2015 output."""

import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badge_engine import canonical, jsonld, ob3
from badge_engine.errors import ContextNotAvailable, InvalidCredential

VECTOR = json.loads(
    (Path(__file__).parent / "vectors/eddsa-rdfc-2022.json").read_text()
)
BASE = "https://bridge.example.org"
ODD_TEXT = [
    "",
    " ",
    'quote " and backslash \\',
    "line one\nline two\r\n\ttabbed",
    "emoji 🎓🏅 and 🇺🇦",
    "accents: Ünïcødé, 中文, العربية",
    "braces {0} {name} }{",
    "_:b0 <http://example.org/> .",
    "urn:x-hpass-leaf:0",
    "\u0000\u0007\u001f\u007f\u2028",
    "x" * 5000,
]

# Text from the whole of Unicode except lone surrogates, which JSON cannot carry.
text = st.one_of(
    st.sampled_from(ODD_TEXT), st.text(st.characters(exclude_categories=["Cs"]))
)
# Absolute IRIs of the kinds the bridge issues, and a few it does not.
iri = st.one_of(
    st.builds(
        lambda path: f"{BASE}/credentials/{path}",
        st.text("abcXYZ019-._~%", min_size=1, max_size=20),
    ),
    st.builds(
        lambda name: f"did:web:bridge.example.org:issuers:{name}",
        st.text("abcdefgh-", min_size=1, max_size=12),
    ),
    st.sampled_from(
        ["urn:uuid:1b4e28ba-2d11-4ba5-8e4b-1c1e1c1e1c1e", "mailto:a@example.org"]
    ),
)
moment = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)
).map(lambda value: value.replace(tzinfo=UTC))


@st.composite
def credentials(draw):
    """Build an unsigned OpenBadgeCredential from generated values.

    Ids, tags and evidence items are distinct, because equal ones send the document
    to pyld (tests below cover that path) and the template path is the one to test.
    """
    ids = iter(draw(st.lists(iri, min_size=8, max_size=8, unique=True)))
    valid_from = draw(moment)
    valid_until = draw(st.one_of(st.none(), st.just(valid_from + timedelta(days=30))))
    status = draw(
        st.one_of(
            st.none(), st.just({"id": next(ids), "type": "1EdTechRevocationList"})
        )
    )
    evidence = draw(
        st.lists(
            st.builds(
                ob3.EvidenceData,
                name=text,
                narrative=st.one_of(st.none(), text),
            ),
            max_size=3,
            unique_by=lambda item: item.name,
        )
    )
    identities = draw(
        st.lists(
            st.builds(
                ob3.RecipientIdentity.from_email,
                st.emails(),
                st.text("0123456789abcdef", min_size=1, max_size=32),
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda identity: identity.salt,
        )
    )
    return ob3.build_open_badge_credential(
        credential_id=next(ids),
        issuer=ob3.IssuerProfile(
            id=next(ids),
            name=draw(text),
            url=next(ids),
            email=draw(st.one_of(st.none(), st.emails())),
            description=draw(st.one_of(st.none(), text)),
            image=draw(st.one_of(st.none(), st.just(next(ids)))),
        ),
        achievement=ob3.AchievementData(
            id=next(ids),
            name=draw(text),
            description=draw(text),
            criteria_narrative=draw(text),
            image=draw(st.one_of(st.none(), st.just(next(ids)))),
            tags=draw(st.lists(text, max_size=12, unique=True)),
            language=draw(st.one_of(st.none(), st.sampled_from(["en", "fr-CA"]))),
        ),
        recipient_identifiers=identities,
        valid_from=valid_from,
        valid_until=valid_until,
        awarded_date=draw(st.one_of(st.none(), moment)),
        name=draw(st.one_of(st.none(), text)),
        credential_status=status,
        evidence=[
            ob3.EvidenceData(id=next(ids), name=item.name) if index == 0 else item
            for index, item in enumerate(evidence)
        ],
    )


def _pyld(document):
    try:
        return ("ok", jsonld.canonize(document))
    except (InvalidCredential, ContextNotAvailable) as error:
        return (type(error).__name__, str(error))


def _fast(document):
    try:
        return ("ok", canonical.canonize(document))
    except (InvalidCredential, ContextNotAvailable) as error:
        return (type(error).__name__, str(error))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(credentials())
def test_credentials_match_pyld(credential):
    """Generated credentials canonicalise to exactly pyld's N-Quads via a template."""
    nquads, reason = canonical._canonize_from_template(credential)

    assert reason == ""
    assert nquads == jsonld.canonize(credential)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "description", "id", "type", "validFrom", "tag"]),
        st.one_of(text, iri, st.lists(text, max_size=4), st.integers(), st.booleans()),
        max_size=6,
    )
)
def test_odd_achievements_match_pyld(fields):
    """Odd values in an achievement give pyld's output or pyld's error."""
    credential = copy.deepcopy(VECTOR["unsecuredCredential"])
    credential["credentialSubject"]["achievement"].update(fields)

    assert _fast(credential) == _pyld(credential)


@settings(max_examples=100, deadline=None)
@given(
    credentials(), moment, iri, st.sampled_from(["assertionMethod", "authentication"])
)
def test_proof_configs_match_pyld(credential, created, method, purpose):
    """Proof configurations under a credential's context match pyld."""
    proof_config = {
        "@context": credential["@context"],
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verificationMethod": method,
        "proofPurpose": purpose,
    }

    assert canonical.canonize(proof_config) == jsonld.canonize(proof_config)


def test_vector_document_exact():
    """The official vector's document canonicalises to its expected N-Quads."""
    canonical.clear_templates()
    first = canonical.canonize(VECTOR["unsecuredCredential"])
    second = canonical.canonize(VECTOR["unsecuredCredential"])

    assert first == VECTOR["expected"]["documentCanonicalNQuads"]
    assert second == first


def test_vector_proof_config_exact():
    """The official vector's proof options canonicalise to its expected N-Quads."""
    proof_config = {
        **VECTOR["proofOptions"],
        "@context": VECTOR["unsecuredCredential"]["@context"],
    }

    nquads = canonical.canonize(proof_config)

    assert nquads == VECTOR["expected"]["proofCanonicalNQuads"]


def test_issued_shape_uses_template(caplog):
    """A second credential of the same shape is canonicalised without pyld."""
    first = _credential("Field Security Basics", ["security", "field"])
    second = _credential("Leadership", ["people", "teams"])
    canonical.canonize(first)
    before = canonical.fallback_count()

    with caplog.at_level(logging.DEBUG, logger="badge_engine.canonical"):
        nquads = canonical.canonize(second)

    assert nquads == jsonld.canonize(second)
    assert canonical.fallback_count() == before
    assert caplog.records == []


def test_many_tags_and_long_texts():
    """Three hundred tags and texts of 100,000 characters match pyld."""
    tags = [f"tag {index} {ODD_TEXT[index % len(ODD_TEXT)]}" for index in range(300)]
    credential = _credential("Long " + '🎓\n"\\' * 25_000, tags)

    nquads, reason = canonical._canonize_from_template(credential)

    assert reason == ""
    assert nquads == jsonld.canonize(credential)


def test_repeated_tags_fall_back(caplog):
    """Equal tags, which pyld merges into one quad, go to pyld and are logged."""
    credential = _credential("Repeats", ["same", "same"])
    before = canonical.fallback_count()

    with caplog.at_level(logging.DEBUG, logger="badge_engine.canonical"):
        nquads = canonical.canonize(credential)

    assert nquads == jsonld.canonize(credential)
    assert nquads.count('"same"') == 1
    assert canonical.fallback_count() == before + 1
    assert "merges into one quad" in caplog.text


def test_identical_blank_nodes_fall_back():
    """Two identical evidence nodes have equal hashes and go to pyld."""
    credential = _credential("Twins", [])
    credential["evidence"] = [
        {"type": ["Evidence"], "name": "x"},
        {"type": ["Evidence"], "name": "x"},
    ]
    before = canonical.fallback_count()

    nquads = canonical.canonize(credential)

    assert nquads == jsonld.canonize(credential)
    assert canonical.fallback_count() == before + 1


def test_relative_id_raises_like_pyld():
    """A relative credential id raises pyld's InvalidCredential."""
    credential = _credential("Relative", [])
    canonical.canonize(credential)
    credential["id"] = "credentials/7"

    with pytest.raises(InvalidCredential, match="relative IRIs"):
        canonical.canonize(credential)


def test_prefixed_id_matches_pyld():
    """An id whose scheme is a term of some local context is expanded by pyld."""
    credential = _credential("Prefixed", [])
    canonical.canonize(credential)
    credential["id"] = "xsd:string"

    assert canonical.canonize(credential) == jsonld.canonize(credential)


def test_unknown_context_raises_like_pyld():
    """A context with no local copy raises ContextNotAvailable."""
    credential = _credential("Remote", [])
    credential["@context"] = [*credential["@context"], "https://example.org/ctx.json"]

    with pytest.raises(ContextNotAvailable):
        canonical.canonize(credential)


def test_undefined_property_raises_like_pyld():
    """A property no context defines raises pyld's InvalidCredential."""
    document = {
        "@context": {"name": "https://schema.org/name"},
        "name": "x",
        "colour": "red",
    }

    assert _fast(document) == _pyld(document)


def test_embedded_context_matches_pyld():
    """An embedded context object goes to pyld and gives its output."""
    document = {
        "@context": [ob3.VC2_CONTEXT, {"lang": "@language", "title": "ex:title"}],
        "id": "https://example.org/1",
        "type": ["VerifiableCredential"],
        "credentialSubject": {"id": "https://example.org/2", "title": "x"},
    }

    assert _fast(document) == _pyld(document)


def test_numbers_and_null_match_pyld():
    """Integers, floats, booleans and null in a document match pyld."""
    credential = _credential("Numbers", [])
    achievement = credential["credentialSubject"]["achievement"]
    for value in (0, -0.0, 1.5, 10**22, True, None):
        achievement["creditsAvailable"] = value

        assert _fast(credential) == _pyld(credential)


def test_template_cache_clears_when_full(monkeypatch):
    """The template cache never holds more than MAX_TEMPLATES shapes."""
    monkeypatch.setattr(canonical, "MAX_TEMPLATES", 2)
    canonical.clear_templates()

    for count in range(4):
        credential = _credential("Tags", [f"t{index}" for index in range(count)])

        assert canonical.canonize(credential) == jsonld.canonize(credential)
        assert len(canonical._templates) <= 2


def _credential(name, tags):
    return ob3.build_open_badge_credential(
        credential_id=f"{BASE}/credentials/7",
        issuer=ob3.IssuerProfile(
            id="did:web:bridge.example.org:issuers:acme", name="Acme", url=BASE
        ),
        achievement=ob3.AchievementData(
            id=f"{BASE}/achievements/42",
            name=name,
            description="Recognises completion.",
            criteria_narrative="Complete every module.",
            tags=tags,
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=datetime(2024, 5, 1, tzinfo=UTC),
    )
