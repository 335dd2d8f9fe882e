from datetime import datetime, timezone

from sqlalchemy import select

from badge_engine.issuers import did_document
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.schema import validate_open_badge_credential
from badge_engine.urls import issuer_did
from badge_engine.verify import verify_open_badge_credential
from tests.support.seed import add_moodle_connection, add_provider

BASE = "http://127.0.0.1:5999"
AWARDED = datetime(2025, 1, 1, 0, 0, tzinfo=timezone.utc)


def _course_with_learner(db, vault, email="Learner@Example.org"):
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:1", "t")
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Safe travel",
        description="Plans and checks safe travel in the field.",
        criteria_narrative="Complete the Safe travel course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="3001",
        email=email,
    )
    db.add_all([achievement, learner])
    db.flush()
    return provider, achievement, learner


def _issue(db, vault, achievement, learner):
    return issue_credential(
        db,
        vault=vault,
        base_url=BASE,
        achievement=achievement,
        learner=learner,
        awarded_at=AWARDED,
    )


def test_issue_twice_returns_first(app, db):
    """A second issue of the same achievement to the same learner is a no-op."""
    vault = app.extensions["hpass"].vault
    _, achievement, learner = _course_with_learner(db, vault)

    first = _issue(db, vault, achievement, learner)
    second = _issue(db, vault, achievement, learner)
    db.commit()

    assert first.created
    assert not second.created
    assert second.credential.id == first.credential.id
    assert len(db.scalars(select(Credential)).all()) == 1


def test_issued_credential_verifies(app, db):
    """The signed credential passes the schema and verifies with the provider's DID."""
    vault = app.extensions["hpass"].vault
    provider, achievement, learner = _course_with_learner(db, vault)

    document = _issue(db, vault, achievement, learner).credential.document
    did_doc = did_document(db, BASE, provider)
    result = verify_open_badge_credential(document, lambda did: did_doc)

    assert validate_open_badge_credential(document) == []
    assert result.verified, result.errors
    assert document["issuer"]["id"] == issuer_did(BASE, provider.slug)
    assert document["validFrom"] == "2025-01-01T00:00:00Z"


def test_issued_credential_hashes_email(app, db):
    """The recipient is a salted hash of the lowercased email, never the address."""
    vault = app.extensions["hpass"].vault
    _, achievement, learner = _course_with_learner(db, vault)

    document = _issue(db, vault, achievement, learner).credential.document
    identity = document["credentialSubject"]["identifier"][0]

    assert "learner@example.org" not in str(document).lower()
    assert identity["identityType"] == "emailAddress"
    assert identity["hashed"] is True
    assert identity["identityHash"].startswith("sha256$")


def test_learner_without_email_gets_system_id(app, db):
    """A learner the LMS shared no email for is identified by a hashed LMS account."""
    vault = app.extensions["hpass"].vault
    _, achievement, learner = _course_with_learner(db, vault, email=None)

    document = _issue(db, vault, achievement, learner).credential.document

    identity = document["credentialSubject"]["identifier"][0]
    assert identity["identityType"] == "systemId"


def test_issue_freezes_provider_slug(app, db):
    """The provider's slug is frozen once a credential refers to it."""
    vault = app.extensions["hpass"].vault
    provider, achievement, learner = _course_with_learner(db, vault)

    _issue(db, vault, achievement, learner)

    assert provider.slug_frozen


def test_private_key_encrypted_at_rest(app, db):
    """The stored signing key is ciphertext that decrypts only with the vault key."""
    from badge_engine.models import SigningKey

    vault = app.extensions["hpass"].vault
    _, achievement, learner = _course_with_learner(db, vault)
    _issue(db, vault, achievement, learner)

    key = db.scalars(select(SigningKey)).one()

    assert len(vault.decrypt(key.private_key_encrypted)) == 32
    assert key.private_key_encrypted[:4] == b"gAAA"
