"""The bridge's shared state for one process: settings, database and vault.

Flask views reach it through `current_bridge()`; Celery tasks through the app context
their task class pushes. Nothing here imports Flask views, so the worker loads it cheaply.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from badge_engine.db import make_engine, make_session_factory
from badge_engine.outbound import OutboundPolicy
from badge_engine.vault import Vault
from lti_tool.config import Settings


@dataclass
class Bridge:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker
    vault: Vault

    @classmethod
    def from_settings(cls, settings: Settings) -> "Bridge":
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=make_session_factory(engine),
            vault=Vault(settings.encryption_keys),
        )

    @property
    def outbound_policy(self) -> OutboundPolicy:
        """The address rules for every call this bridge makes to another system."""
        return OutboundPolicy.from_settings(self.settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session; commit is the caller's, rollback on error is automatic."""
        session = self.session_factory()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def current_bridge() -> Bridge:
    return current_app.extensions["hpass"]


def db_session() -> Session:
    """Return the request's session, closed when the request ends."""
    if "db_session" not in g:
        g.db_session = current_bridge().session_factory()
    return g.db_session


def close_db_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
