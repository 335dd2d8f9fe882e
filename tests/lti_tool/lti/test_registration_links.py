"""Single-use Dynamic Registration links over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import html
import secrets
import threading
from datetime import timedelta

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from badge_engine.db import utcnow
from lti_tool.account_access import disable_account
from lti_tool.accounts import Account, AccountRole, create_account
from lti_tool.lti import dynamic_registration
from lti_tool.lti.errors import RegistrationLinkRevoked
from lti_tool.lti.registration_links import (
    claim_registration_link,
    issue_registration_link,
    registration_url,
    revoke_registration_link,
)
from lti_tool.models import Registration, RegistrationLink
from lti_tool.views import lti as lti_views
from tests.lti_tool.lti.registration_harness import new_link_url, register
from tests.support.seed import add_provider

SHARED_CLIENT_ID = "10000005678"


@pytest.fixture
def provider(db):
    provider = add_provider(db)
    db.commit()
    return provider


def _registration_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Registration))


def _link(db, link_id: int) -> RegistrationLink:
    db.expire_all()
    return db.get(RegistrationLink, link_id)


def _page(response) -> str:
    return html.unescape(response.text)


def test_link_stores_only_digest(db, provider):
    """A new link's row contains the token's SHA-256 and its creator, never the token."""
    link, token = issue_registration_link(db, provider_id=provider.id, actor="os:ops")
    db.commit()

    row = _link(db, link.id)
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_sha256, row.created_by)
    assert row.created_by == "os:ops"
    assert row.expires_at - row.created_at == timedelta(days=7)
    assert row.used_at is None
    assert row.revoked_at is None


def test_link_works_once(db, provider, tool_url, platforms):
    """A second platform using a link that already registered one is rejected with
    410 before the platform is called, and the page requests a new link."""
    url = new_link_url(db, tool_url, provider.id)
    first, second = platforms("moodle"), platforms("moodle")

    registered = register(url, first)
    again = register(url, second)

    assert registered.status_code == 200, registered.text
    assert again.status_code == 410
    page = _page(again)
    assert "already used" in page
    assert "each registration URL works once" in page
    assert "create a new registration link" in page
    assert second.registrations == []
    assert _registration_count(db) == 1
    used = db.scalar(select(RegistrationLink))
    assert used.used_at is not None


def test_used_link_page_translated(db, provider, tool_url, platforms):
    """The used-link page explains the fix in the browser's language."""
    url = new_link_url(db, tool_url, provider.id)
    register(url, platforms("moodle"))

    again = register(url, platforms("moodle"))
    french = requests.get(
        url,
        params={"openid_configuration": "https://lms.example.org/openid"},
        headers={"Accept": "text/html", "Accept-Language": "fr"},
        timeout=10,
    )

    assert again.status_code == 410
    assert "works only once" in _page(again)
    assert french.status_code == 410
    assert "une seule fois" in _page(french)


def test_revoked_link_rejected(db, provider, tool_url, platforms):
    """A revoked link is rejected with 410 and the platform is never called."""
    link, token = issue_registration_link(db, provider_id=provider.id, actor="os:ops")
    revoke_registration_link(
        db, provider_id=provider.id, link_id=link.id, actor="os:ops"
    )
    db.commit()
    moodle = platforms("moodle")

    response = register(registration_url(tool_url, token), moodle)

    assert response.status_code == 410
    assert "was revoked" in _page(response)
    assert "create a new registration link" in _page(response)
    assert moodle.registrations == []
    assert _registration_count(db) == 0


def test_expired_link_rejected(db, provider, tool_url, platforms):
    """A link older than 7 days is rejected with 410 naming the expiry."""
    url = new_link_url(
        db, tool_url, provider.id, now=utcnow() - timedelta(days=7, seconds=1)
    )
    moodle = platforms("moodle")

    response = register(url, moodle)

    assert response.status_code == 410
    assert "expired on" in _page(response)
    assert "work for 7 days" in _page(response)
    assert moodle.registrations == []


def test_forged_link_rejected(db, provider, tool_url, platforms):
    """A well-formed token that no link has, or an overlong one, gets 400."""
    moodle = platforms("moodle")

    for token in (secrets.token_urlsafe(32), "x" * 300):
        response = register(registration_url(tool_url, token), moodle)

        assert response.status_code == 400, token
        assert "not valid" in _page(response)
    assert moodle.registrations == []


def test_outdated_signed_link_rejected(app, db, provider, tool_url, platforms):
    """A link of the signed format issued before links had rows is rejected with
    410, even within its old 7 days, and the error page directs the admin to create
    a new link."""
    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="lti-dynamic-registration"
    )
    token = serializer.dumps({"provider": provider.id})
    moodle = platforms("moodle")

    response = register(registration_url(tool_url, token), moodle)

    assert response.status_code == 410
    page = _page(response)
    assert "before registration URLs became single-use" in page
    assert "create a new registration link" in page
    assert moodle.registrations == []
    assert _registration_count(db) == 0


def test_outdated_link_other_key_invalid(db, provider, tool_url, platforms):
    """A signed link made with another secret key is simply not valid."""
    serializer = URLSafeTimedSerializer(b"another-key", salt="lti-dynamic-registration")
    token = serializer.dumps({"provider": provider.id})

    response = register(registration_url(tool_url, token), platforms("moodle"))

    assert response.status_code == 400
    assert "not valid" in _page(response)


def test_failed_registration_keeps_link_open(db, provider, tool_url, platforms):
    """A registration the platform rejects leaves the link usable for a retry."""
    url = new_link_url(db, tool_url, provider.id)
    moodle = platforms("moodle")

    rejected = register(url, moodle, token="wrong-token")
    retried = register(url, moodle)

    assert rejected.status_code == 400
    assert retried.status_code == 200, retried.text
    assert _registration_count(db) == 1


def test_link_registers_for_its_provider(db, provider, tool_url, platforms):
    """A link registers the platform for the provider that the link belongs to."""
    college = add_provider(db, slug="college", name="College")
    db.commit()

    response = register(new_link_url(db, tool_url, college.id), platforms("moodle"))

    assert response.status_code == 200, response.text
    registration = db.scalar(select(Registration))
    assert registration.provider_id == college.id


def _hold_after_register(monkeypatch, parties: int) -> threading.Barrier:
    """Make each registration wait, after the platform responded, until `parties`
    registrations have reached that point, so they then store at the same time."""
    barrier = threading.Barrier(parties, timeout=20)
    original = dynamic_registration.DynamicRegistration.register

    def register_then_wait(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        barrier.wait()
        return client

    monkeypatch.setattr(
        dynamic_registration.DynamicRegistration, "register", register_then_wait
    )
    return barrier


def _register_in_threads(calls) -> list:
    """Run each (url, platform) registration in its own thread; return the responses."""
    responses = [None] * len(calls)

    def run(index, url, platform):
        responses[index] = register(url, platform)

    threads = [
        threading.Thread(target=run, args=(index, url, platform))
        for index, (url, platform) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def test_link_race_stores_one(db, provider, tool_url, platforms, monkeypatch):
    """Two platforms using one link at the same moment: one registers, the other
    gets the used-link page, and exactly one registration is stored."""
    _hold_after_register(monkeypatch, parties=2)
    url = new_link_url(db, tool_url, provider.id)

    responses = _register_in_threads(
        [(url, platforms("moodle")), (url, platforms("moodle"))]
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 410], [response.text for response in responses]
    rejected = next(response for response in responses if response.status_code == 410)
    assert "already used" in _page(rejected)
    assert "delete the tool this attempt added in the platform" in _page(rejected)
    assert _registration_count(db) == 1
    assert db.scalar(select(RegistrationLink)).used_at is not None


def test_same_pair_race_answers_friendly(
    db, provider, tool_url, platforms, monkeypatch
):
    """Two links registering the same issuer and client id at the same moment: one
    registration is stored and the other gets the already-registered page."""
    _hold_after_register(monkeypatch, parties=2)
    canvas = platforms("canvas", client_id=SHARED_CLIENT_ID)
    first = new_link_url(db, tool_url, provider.id)
    second = new_link_url(db, tool_url, provider.id)

    responses = _register_in_threads([(first, canvas), (second, canvas)])

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400], [response.text for response in responses]
    rejected = next(response for response in responses if response.status_code == 400)
    assert "already registered for provider 'academy'" in _page(rejected)
    assert _registration_count(db) == 1
    open_links = db.scalars(
        select(RegistrationLink).where(RegistrationLink.used_at.is_(None))
    ).all()
    assert len(open_links) == 1


def test_unique_violation_answers_friendly(
    db, provider, tool_url, platforms, monkeypatch
):
    """When the duplicate check runs before the other registration is stored, the
    unique constraint's error becomes the already-registered page, not a 500, and
    the link stays open."""
    canvas = platforms("canvas", client_id=SHARED_CLIENT_ID)
    register(new_link_url(db, tool_url, provider.id), canvas)
    # The check that ran first saw no registration: the other one was stored
    # between the check and the insert.
    original = lti_views.provider_registration
    calls = []

    def check_missed_other(*args, **kwargs):
        calls.append(args)
        return None if len(calls) == 1 else original(*args, **kwargs)

    monkeypatch.setattr(lti_views, "provider_registration", check_missed_other)
    url = new_link_url(db, tool_url, provider.id)

    response = register(url, canvas)

    assert response.status_code == 400, response.text
    assert "already registered for provider 'academy'" in _page(response)
    assert len(calls) == 2
    assert _registration_count(db) == 1
    open_links = db.scalars(
        select(RegistrationLink).where(RegistrationLink.used_at.is_(None))
    ).all()
    assert len(open_links) == 1


def _add_admin(db, provider, email: str) -> Account:
    account = create_account(
        db,
        email=email,
        password="correct horse battery staple",
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=provider.id,
    )
    db.commit()
    return account


def test_disabled_creator_link_gone(db, provider, tool_url, platforms):
    """A link whose creator was disabled is rejected with 410, and the platform is
    never called, while a link of another admin still registers."""
    creator = _add_admin(db, provider, "creator@academy.org")
    colleague = _add_admin(db, provider, "colleague@academy.org")
    _, token = issue_registration_link(
        db, provider_id=provider.id, actor=f"account:{creator.id}"
    )
    _, other_token = issue_registration_link(
        db, provider_id=provider.id, actor=f"account:{colleague.id}"
    )
    db.commit()
    outcome = disable_account(db, creator, actor="os:ops")
    db.commit()
    moodle, canvas = platforms("moodle"), platforms("canvas")

    rejected = register(registration_url(tool_url, token), moodle)
    registered = register(registration_url(tool_url, other_token), canvas)

    assert outcome.registration_links_revoked == 1
    assert rejected.status_code == 410
    assert "was revoked" in _page(rejected)
    assert moodle.registrations == []
    assert registered.status_code == 200, registered.text
    assert _registration_count(db) == 1


def _in_thread(target) -> tuple[threading.Thread, dict]:
    """Start `target` in a thread; the dict gets its result or its exception."""
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except Exception as error:  # noqa: BLE001 - the test asserts on it
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_disable_waits_for_claim(app, db, provider):
    """A disable that starts while a registration has claimed the link finds it used, so
    the link ends up used and not revoked."""
    creator = _add_admin(db, provider, "creator@academy.org")
    link, _ = issue_registration_link(
        db, provider_id=provider.id, actor=f"account:{creator.id}"
    )
    db.commit()
    bridge = app.extensions["hpass"]

    def disable():
        with bridge.session() as session:
            outcome = disable_account(
                session, session.get(Account, creator.id), actor="os:ops"
            )
            session.commit()
            return outcome

    with bridge.session() as registering:
        claim_registration_link(registering, registering.get(RegistrationLink, link.id))
        thread, outcome = _in_thread(disable)
        thread.join(0.5)
        waited = thread.is_alive()
        registering.commit()
    thread.join(30)

    stored = _link(db, link.id)
    assert waited
    assert "error" not in outcome, outcome
    assert outcome["result"].registration_links_revoked == 0
    assert stored.used_at is not None
    assert stored.revoked_at is None


def test_claim_waits_for_disable(app, db, provider):
    """A registration that starts while a disable revokes the link gets the
    revoked-link error, so the link ends up revoked and not used."""
    creator = _add_admin(db, provider, "creator@academy.org")
    link, _ = issue_registration_link(
        db, provider_id=provider.id, actor=f"account:{creator.id}"
    )
    db.commit()
    bridge = app.extensions["hpass"]

    def claim():
        with bridge.session() as session:
            claim_registration_link(session, session.get(RegistrationLink, link.id))
            session.commit()

    with bridge.session() as disabling:
        outcome = disable_account(
            disabling, disabling.get(Account, creator.id), actor="os:ops"
        )
        thread, claimed = _in_thread(claim)
        thread.join(0.5)
        waited = thread.is_alive()
        disabling.commit()
    thread.join(30)

    stored = _link(db, link.id)
    assert waited
    assert outcome.registration_links_revoked == 1
    assert isinstance(claimed.get("error"), RegistrationLinkRevoked), claimed
    assert stored.revoked_at is not None
    assert stored.used_at is None
