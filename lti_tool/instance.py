"""Checks that a command reads or changes an instance that already exists.

Only the commands that set an instance up (`run`, `run --demo` and `db upgrade`)
and the processes they start create the instance folder, its secret files and the
database. The operator commands call `check_instance` first, so that one run from
the wrong folder reports where it looked instead of starting a new, empty bridge.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from lti_tool.config import ENV_PREFIX, ConfigError, Settings, load_secret_files


class InstanceNotReady(ConfigError):
    """The instance folder, its database or its schema is missing."""


def _next_steps(settings: Settings) -> str:
    return (
        "If the bridge lives elsewhere, run the command from the folder that "
        f"contains its instance folder, or set {ENV_PREFIX}INSTANCE_PATH to that "
        f"folder (and {ENV_PREFIX}DATABASE_URL if its database is not the "
        "instance's SQLite file). To set up a new bridge at "
        f"{settings.instance_path}, run `hpass-bridge db upgrade` or "
        "`hpass-bridge run`"
    )


def redacted_url(url: str) -> str:
    """Return `url` with its password hidden, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its parts
        return "(the configured database URL)"


def sqlite_file(database_url: str) -> Path | None:
    """Return the file of a SQLite database URL; None for other databases and
    for in-memory SQLite."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def check_instance(settings: Settings, environ: dict[str, str] | None = None) -> None:
    """Check the database and secret files of an existing instance; create nothing.

    Loads the secret key and the encryption keys into `settings`. Raises
    InstanceNotReady, naming the instance folder and the database, when the
    database file is missing or the database has no bridge schema, and ConfigError
    when a secret file is missing.
    """
    from lti_tool.schema import current_revision

    database = sqlite_file(settings.database_url)
    if database is not None and not database.is_file():
        where = (
            "in the instance folder"
            if database.parent == settings.instance_path
            else f"for the instance folder {settings.instance_path}"
        )
        folder = (
            ""
            if settings.instance_path.is_dir()
            else f" The folder {settings.instance_path} does not exist."
        )
        raise InstanceNotReady(
            f"no bridge database at {database} {where}, so there is nothing to read "
            f"or change.{folder} {_next_steps(settings)}"
        )
    try:
        revision = current_revision(settings.database_url)
    except SQLAlchemyError as error:
        raise InstanceNotReady(
            f"cannot read the database {redacted_url(settings.database_url)} of the "
            f"instance folder {settings.instance_path}: {type(error).__name__}: "
            f"{str(getattr(error, 'orig', error))[:200]}"
        ) from None
    if revision is None:
        raise InstanceNotReady(
            f"the database {redacted_url(settings.database_url)} of the instance "
            f"folder {settings.instance_path} has no bridge tables. "
            f"{_next_steps(settings)}"
        )
    load_secret_files(settings, environ)
