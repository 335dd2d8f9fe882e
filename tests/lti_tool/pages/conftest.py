"""Two providers, each with an LMS connection, an LTI registration, a course, a
learner and a badge, and helpers that sign a test client in as one of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from badge_engine.models import Achievement, Credential, Learner, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.accounts import AccountRole, create_account
from lti_tool.lti.registrations import create_registration
from lti_tool.models import LtiCourse
from tests.support.account_cookie import account_session_transaction
from tests.support.seed import add_moodle_connection, add_provider

PASSWORD = "correct horse battery staple"
MOODLE_TOKEN = "pages-test-token"
MOODLE_COURSE_ID = "101"
PLATFORM = "https://lms-{slug}.example.org"


@dataclass
class Tenant:
    provider_id: int
    registration_id: int
    course_id: int
    learner_id: int
    achievement_public_id: str
    achievement_id: int
    connection_id: int


@pytest.fixture(scope="session")
def moodle_url():
    """A Moodle stand-in on loopback with course 101 and its two activities."""
    from lti_tool.demo.peers.moodle import MoodleStandIn

    server = MoodleStandIn(MOODLE_TOKEN).start()
    yield server.url
    server.stop()


def _add_tenant(session, vault, slug: str, moodle_url: str) -> Tenant:
    provider = add_provider(session, slug=slug, name=slug.title())
    connection = add_moodle_connection(
        session, vault, provider, moodle_url, MOODLE_TOKEN
    )
    registration = create_registration(
        session,
        vault,
        provider,
        issuer=PLATFORM.format(slug=slug),
        client_id=f"client-{slug}",
        auth_login_url=PLATFORM.format(slug=slug) + "/auth",
        key_set_url=PLATFORM.format(slug=slug) + "/jwks",
        deployment_ids=("1",),
        lms_connection_id=connection.id,
    )
    course = LtiCourse(
        provider_id=provider.id,
        registration_id=registration.id,
        lti_context_id=f"context-{slug}",
        title=f"Course of {slug}",
        lms_course_id=MOODLE_COURSE_ID,
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="42",
        name=f"Learner of {slug}",
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=MOODLE_COURSE_ID,
        name=f"Badge of {slug}",
        description="Finished the course.",
        criteria_narrative="Complete the course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    session.add_all([course, learner, achievement])
    session.flush()
    return Tenant(
        provider_id=provider.id,
        registration_id=registration.id,
        course_id=course.id,
        learner_id=learner.id,
        achievement_public_id=achievement.public_id,
        achievement_id=achievement.id,
        connection_id=connection.id,
    )


@pytest.fixture
def tenants(app, db, moodle_url):
    """Providers "alpha" and "beta" with one course each, on one Moodle stand-in."""
    vault = app.extensions["hpass"].vault
    alpha = _add_tenant(db, vault, "alpha", moodle_url)
    beta = _add_tenant(db, vault, "beta", moodle_url)
    db.commit()
    return alpha, beta


def add_credential(db, tenant: Tenant) -> Credential:
    credential = Credential(
        provider_id=tenant.provider_id,
        achievement_id=tenant.achievement_id,
        learner_id=tenant.learner_id,
        live_key=f"{tenant.achievement_id}:{tenant.learner_id}",
        awarded_at=datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc),
        document={"type": ["VerifiableCredential"], "name": "signed document"},
    )
    db.add(credential)
    db.commit()
    return credential


def launch_as(client, tenant: Tenant, role: str, locale: str | None = None) -> None:
    """Put what an LTI launch stores into the client's session."""
    with client.session_transaction() as session:
        session.clear()
        session.update(
            provider_id=tenant.provider_id,
            registration_id=tenant.registration_id,
            course_id=tenant.course_id,
            lms_user_id="42" if role == "learner" else "9",
            learner_id=tenant.learner_id if role == "learner" else None,
            role=role,
            launch_locale=locale,
            csrf="test-csrf",
        )


def add_account(db, email: str, role: AccountRole, provider_id: int | None):
    account = create_account(
        db, email=email, password=PASSWORD, role=role, provider_id=provider_id
    )
    db.commit()
    return account


def sign_in(
    client,
    email: str,
    password: str = PASSWORD,
    *,
    accept_language: str | None = None,
    lang: str | None = None,
):
    """Post the sign-in form, from a browser that sends `accept_language`, to the
    address of the language switcher's `lang` choice when one is given."""
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    response = client.post(
        "/account/sign-in",
        query_string={} if lang is None else {"lang": lang},
        data={"email": email, "password": password, "csrf": "test-csrf"},
        headers={} if accept_language is None else {"Accept-Language": accept_language},
    )
    # Signing in starts a new session, so the form token is set again.
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    return response


@pytest.fixture
def provider_of(db):
    def find(slug: str) -> Provider:
        from sqlalchemy import select

        return db.scalar(select(Provider).where(Provider.slug == slug))

    return find
