"""Database schema management: every model module, and Alembic upgrades."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def import_all_models() -> None:
    """Import every module that defines tables, so the metadata is complete."""
    import badge_engine.dead_letter  # noqa: F401
    import badge_engine.identity  # noqa: F401
    import badge_engine.locking  # noqa: F401
    import badge_engine.models  # noqa: F401
    import badge_engine.outbox  # noqa: F401
    import connectors.canvas.models  # noqa: F401
    import connectors.hpass.models  # noqa: F401
    import connectors.models  # noqa: F401
    import connectors.moodle.models  # noqa: F401
    import lti_tool.accounts  # noqa: F401
    import lti_tool.api.tokens  # noqa: F401
    import lti_tool.backfill  # noqa: F401
    import lti_tool.course_activities  # noqa: F401
    import lti_tool.images  # noqa: F401
    import lti_tool.models  # noqa: F401


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """Return the database's revision; several heads are joined with commas."""
    from alembic.runtime.migration import MigrationContext

    from badge_engine.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
            return ",".join(sorted(heads)) or None
    finally:
        engine.dispose()
