"""Two admins disabling each other at once on PostgreSQL: the provider keeps one."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from lti_tool.account_access import LastEnabledAdmin, disable_account
from lti_tool.accounts import Account, AccountRole, create_account
from lti_tool.schema import upgrade
from tests.support.databases import reset_postgres
from tests.support.seed import add_provider

PASSWORD = "correct horse battery staple"


@pytest.fixture
def engine():
    url = reset_postgres()
    upgrade(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_mutual_disable_keeps_one_admin(engine):
    """The second of two crossing disables waits for the first and is rejected."""
    with Session(engine) as session:
        provider = add_provider(session)
        first, second = (
            create_account(
                session,
                email=email,
                password=PASSWORD,
                role=AccountRole.PROVIDER_ADMIN,
                provider_id=provider.id,
            )
            for email in ("one@academy.org", "two@academy.org")
        )
        session.commit()
        first_id, second_id = first.id, second.id

    outcomes = {}
    started = threading.Event()

    def disable_first() -> None:
        with Session(engine) as session:
            acting = session.get(Account, second_id)
            target = session.get(Account, first_id)
            started.set()
            try:
                disable_account(session, target, actor="test", acting_account=acting)
                session.commit()
                outcomes["second disables first"] = "disabled"
            except LastEnabledAdmin:
                outcomes["second disables first"] = "rejected"

    with Session(engine) as session:
        acting = session.get(Account, first_id)
        target = session.get(Account, second_id)
        disable_account(session, target, actor="test", acting_account=acting)
        # The other transaction starts while this one holds the provider lock.
        thread = threading.Thread(target=disable_first)
        thread.start()
        started.wait(5)
        thread.join(0.5)
        still_waiting = thread.is_alive()
        session.commit()
    thread.join(10)

    with Session(engine) as session:
        enabled = session.scalars(
            select(Account.email).where(Account.disabled_at.is_(None))
        ).all()

    assert still_waiting
    assert outcomes == {"second disables first": "rejected"}
    assert enabled == ["one@academy.org"]
