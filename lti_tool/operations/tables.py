"""Every table that belongs to a provider, for counting and removing its rows."""

from __future__ import annotations

from sqlalchemy import Table

from badge_engine.db import Base


def provider_tables() -> list[Table]:
    """Return the tables with a provider_id column, after importing every model."""
    from lti_tool.schema import import_all_models

    import_all_models()
    import badge_engine.dead_letter  # noqa: F401
    import badge_engine.locking  # noqa: F401
    import lti_tool.accounts  # noqa: F401
    import lti_tool.api.tokens  # noqa: F401
    import lti_tool.backfill  # noqa: F401
    import lti_tool.images  # noqa: F401

    return [
        table
        for table in Base.metadata.sorted_tables
        if "provider_id" in table.c and table.name != "providers"
    ]
