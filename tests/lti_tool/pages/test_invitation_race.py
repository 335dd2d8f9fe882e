"""Several requests accepting one invitation link at once, on SQLite and PostgreSQL:
one creates the account, the others get the used-link page and write nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    create_account,
    issue_token,
)
from lti_tool.views import auth as auth_views
from tests.support.account_cookie import account_session_transaction
from tests.support.databases import reset_postgres
from tests.support.seed import add_provider

from .conftest import PASSWORD

INVITED = "new@academy.org"
REQUESTS = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, settings):
    """The shared settings, on a fresh PostgreSQL database in the postgresql runs."""
    if request.param == "postgresql":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def invitation(db) -> str:
    """Store a pending invitation to provider "academy" and return its token."""
    provider = add_provider(db)
    inviter = create_account(
        db,
        email="admin@academy.org",
        password=PASSWORD,
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=provider.id,
    )
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email=INVITED,
        provider_id=provider.id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=inviter.id,
    )
    db.commit()
    return token


def _hold_after_email_check(monkeypatch, parties: int) -> None:
    """Make each acceptance wait after its "email already has an account" check
    until `parties` acceptances are there, so all of them go on at once.

    On PostgreSQL the row lock keeps the others from reaching the check while the
    first holds the link, so the wait gives up after a few seconds and each
    acceptance goes on alone.
    """
    barrier = threading.Barrier(parties, timeout=3)
    original = auth_views.find_account

    def find_then_wait(*args, **kwargs):
        found = original(*args, **kwargs)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(auth_views, "find_account", find_then_wait)


def _accept(app, token: str):
    browser = app.test_client()
    with account_session_transaction(browser) as session:
        session["csrf"] = "test-csrf"
    return browser.post(
        f"/account/invitation/{token}",
        data={"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD},
    )


def _accept_in_threads(app, token: str, count: int) -> list:
    responses = [None] * count

    def run(index):
        responses[index] = _accept(app, token)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def test_concurrent_acceptance_creates_one(app, db, invitation, monkeypatch):
    """Of several acceptances at once one creates the account and the others get
    the used-link page (404), not a server error."""
    _hold_after_email_check(monkeypatch, parties=REQUESTS)

    responses = _accept_in_threads(app, invitation, REQUESTS)
    db.expire_all()
    accounts = db.scalar(
        select(func.count()).select_from(Account).where(Account.email == INVITED)
    )
    created_events = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "account.created")
    )
    statuses = sorted(response.status_code for response in responses)
    rejected = [response for response in responses if response.status_code == 404]

    assert statuses == [303] + [404] * (REQUESTS - 1), statuses
    assert all(
        "This link no longer works" in response.get_data(as_text=True)
        for response in rejected
    )
    assert accounts == 1
    assert created_events == 1
    assert db.scalar(select(AccountToken)).used_at is not None


def test_taken_email_gets_used_link_page(app, db, invitation, monkeypatch):
    """An account stored for the email after the acceptance checked for one gets
    the used-link page, and the invitation stays unused."""
    create_account(
        db,
        email=INVITED,
        password=PASSWORD,
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=db.scalar(select(Account.provider_id)),
    )
    db.commit()
    # The check ran before the other account was stored.
    monkeypatch.setattr(auth_views, "find_account", lambda *args, **kwargs: None)

    response = _accept(app, invitation)
    db.expire_all()

    assert response.status_code == 404
    assert "This link no longer works" in response.get_data(as_text=True)
    assert (
        db.scalar(
            select(func.count()).select_from(Account).where(Account.email == INVITED)
        )
        == 1
    )
    assert db.scalar(select(AccountToken)).used_at is None
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "account.created")
        )
        == 0
    )
