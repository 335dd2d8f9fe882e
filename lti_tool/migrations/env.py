"""Alembic environment: migrates the database named in the bridge's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from badge_engine.db import Base, make_engine
from lti_tool.schema import import_all_models

import_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
