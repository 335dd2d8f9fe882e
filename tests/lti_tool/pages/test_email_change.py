"""A learner whose LMS email changes, by an LTI launch or a Moodle poll, keeps every
badge, and the badges issued to the earlier address still match the learner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from badge_engine.identity import (
    EMAIL,
    add_identity,
    find_learner_by_email,
    identity_hash_matches,
    learner_emails,
)
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.moodle.client import MoodleClient
from connectors.moodle.poller import poll_connection
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.pipeline import record_fact
from tests.lti_tool.lti.harness import (
    ToolClient,
    register_token_platform,
    stop_server,
)
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.seed import add_moodle_connection, add_provider

TOKEN = "email-change-token"
USER_ID = 3001
# The Moodle stand-in reports each user's email as user<id>@example.invalid.
MOODLE_EMAIL = f"user{USER_ID}@example.invalid"


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(TOKEN)
    stand_in.enrol_learner(DEMO_COURSE_ID, USER_ID, "Learner One")
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def holder(app, db, moodle, platform):
    """A provider whose learner 3001 has a badge issued to "Ana@Old.example"."""
    bridge = app.extensions["hpass"]
    provider = add_provider(db, slug="mail", name="Mail Academy")
    connection = add_moodle_connection(
        db, bridge.vault, provider, moodle.site_url, TOKEN
    )
    registration = register_token_platform(
        db, bridge.vault, provider, platform, connection.id
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id=str(USER_ID),
        name="Learner One",
        email="Ana@Old.example",
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=str(DEMO_COURSE_ID),
        name="Mail badge",
        description="Finished the course.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    db.add_all([learner, achievement])
    db.flush()
    issue_credential(
        db,
        vault=bridge.vault,
        base_url=bridge.settings.public_base_url,
        achievement=achievement,
        learner=learner,
        awarded_at=datetime(2026, 3, 14, tzinfo=UTC),
    )
    db.commit()
    return {
        "provider": provider,
        "connection": connection,
        "registration": registration,
    }


def reload_learner(db, holder) -> Learner:
    db.expire_all()
    return db.scalar(
        select(Learner).where(
            Learner.provider_id == holder["provider"].id,
            Learner.lms_user_id == str(USER_ID),
        )
    )


def badge_matches(db, learner: Learner) -> bool:
    """Whether the learner's badge's recipient hash matches one of their addresses."""
    [credential] = db.scalars(
        select(Credential).where(
            Credential.provider_id == learner.provider_id,
            Credential.learner_id == learner.id,
        )
    ).all()
    identity = credential.document["credentialSubject"]["identifier"][0]
    return any(
        identity_hash_matches(identity["identityHash"], identity.get("salt"), email)
        for email in learner_emails(db, learner)
    )


def launch_with_email(app, platform, registration, email: str) -> None:
    server = serve_in_thread(app)
    try:
        tool = ToolClient(server.url, registration.public_id, platform.issuer)
        login = tool.start()
        claims = platform.claims(login.nonce, tool.target_link_uri, email=email)
        response = tool.launch(platform.sign(claims), login.state)
        assert response.status_code in (302, 303), response.text
    finally:
        stop_server(server)


@pytest.mark.parametrize("new_email", ["ANA@old.example", "ana@new-home.example"])
def test_launch_email_change_keeps_badge(app, db, platform, holder, new_email):
    """A launch with a changed email keeps the badge, matched by old and new address."""
    launch_with_email(app, platform, holder["registration"], new_email)

    learner = reload_learner(db, holder)
    assert learner.email == new_email
    assert badge_matches(db, learner)
    for address in ("ana@old.example", new_email):
        found = find_learner_by_email(db, holder["provider"].id, address)
        assert found is not None
        assert found.id == learner.id


def test_poll_email_change_keeps_badge(db, moodle, holder):
    """A Moodle poll that reports a new email keeps the badge and the old address."""
    connection = holder["connection"]

    def store(session, fact):
        _, message = record_fact(session, fact)
        return message.id if message is not None else None

    with MoodleClient(
        moodle.site_url, TOKEN, max_retries=0, policy=LOOPBACK_POLICY
    ) as client:
        poll_connection(db, client, connection, store)

    learner = reload_learner(db, holder)
    assert learner.email == MOODLE_EMAIL
    assert "Ana@Old.example" in learner_emails(db, learner)
    assert badge_matches(db, learner)
    found = find_learner_by_email(db, holder["provider"].id, "ANA@OLD.EXAMPLE")
    assert found is not None
    assert found.id == learner.id


def test_launch_email_of_other_learner_kept(app, db, platform, holder):
    """A launch bringing another learner's email is accepted and changes no email."""
    other = Learner(
        provider_id=holder["provider"].id,
        lms_connection_id=holder["connection"].id,
        lms_user_id="3999",
        name="Someone else",
        email="taken@example.org",
    )
    db.add(other)
    db.flush()
    add_identity(db, other, EMAIL, "taken@example.org")
    db.commit()

    launch_with_email(app, platform, holder["registration"], "Taken@example.org")

    learner = reload_learner(db, holder)
    assert learner.email == "Ana@Old.example"
    assert badge_matches(db, learner)
    found = find_learner_by_email(db, holder["provider"].id, "taken@example.org")
    assert found is not None
    assert found.id != learner.id
