"""Insert-or-update of the course and learner rows a launch touches, one statement each.

A launch runs these on SQLite or PostgreSQL; both support INSERT ... ON CONFLICT DO
UPDATE ... RETURNING, so a returning course or learner costs one round trip and the
row's id comes back without a second SELECT.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from badge_engine.db import utcnow
from badge_engine.models import Learner
from lti_tool.lti.ags import AgsEndpoint
from lti_tool.models import LtiCourse

_COURSES = LtiCourse.__table__
_LEARNERS = Learner.__table__
_AGS_COLUMNS = ("ags_lineitems_url", "ags_lineitem_url", "ags_scopes")
_statements: dict[tuple[str, str], object] = {}


def _insert(dialect: str):
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"launch upserts support SQLite and PostgreSQL, not {dialect}")


def _course_statement(dialect: str):
    statement = _insert(dialect)(_COURSES)
    return statement.on_conflict_do_update(
        index_elements=[_COURSES.c.registration_id, _COURSES.c.lti_context_id],
        # A launch without a title keeps the stored one. A launch without an AGS
        # endpoint claim (its scopes NULL) keeps the stored endpoint, while one with
        # a claim replaces all three members, absent ones included.
        set_={
            "title": func.coalesce(statement.excluded.title, _COURSES.c.title),
            "lms_course_id": statement.excluded.lms_course_id,
            **{
                name: case(
                    (statement.excluded.ags_scopes.is_(None), _COURSES.c[name]),
                    else_=statement.excluded[name],
                )
                for name in _AGS_COLUMNS
            },
        },
    ).returning(_COURSES.c.id)


def _learner_statement(dialect: str):
    statement = _insert(dialect)(_LEARNERS)
    return statement.on_conflict_do_update(
        index_elements=[
            _LEARNERS.c.provider_id,
            _LEARNERS.c.lms_connection_id,
            _LEARNERS.c.lms_user_id,
        ],
        # The stored email stays: the caller moves a changed address through
        # badge_engine.identity.change_email, which keeps the old one as an identity.
        # The first launch binds the learner's `sub`; a later launch with another
        # one gets the stored value back, and the caller refuses it.
        set_={
            "name": func.coalesce(statement.excluded.name, _LEARNERS.c.name),
            "email": func.coalesce(_LEARNERS.c.email, statement.excluded.email),
            "lti_sub": func.coalesce(_LEARNERS.c.lti_sub, statement.excluded.lti_sub),
        },
    ).returning(_LEARNERS.c.id, _LEARNERS.c.email, _LEARNERS.c.lti_sub)


def _statement(kind: str, connection: Connection):
    dialect = connection.dialect.name
    statement = _statements.get((kind, dialect))
    if statement is None:
        build = _course_statement if kind == "course" else _learner_statement
        statement = _statements.setdefault((kind, dialect), build(dialect))
    return statement


def course(
    connection: Connection,
    *,
    provider_id: int,
    registration_id: int,
    context_id: str,
    title: str | None,
    lms_course_id: str,
    ags: AgsEndpoint | None = None,
) -> int:
    """Insert the course of an LTI context or update its title, LMS id and AGS
    endpoint; return its id."""
    return connection.execute(
        _statement("course", connection),
        {
            "provider_id": provider_id,
            "registration_id": registration_id,
            "lti_context_id": context_id,
            "title": title,
            "lms_course_id": lms_course_id,
            **_ags_values(ags),
            "created_at": utcnow(),
        },
    ).scalar_one()


def other_context_of(
    connection: Connection, *, registration_id: int, context_id: str, lms_course_id: str
) -> str | None:
    """Return another LTI context of the registration with `lms_course_id`.

    One LMS course has one context, so a second context claiming the same course
    means a launch's custom parameters point at a course that is not its own.
    """
    return connection.execute(
        select(_COURSES.c.lti_context_id)
        .where(
            _COURSES.c.registration_id == registration_id,
            _COURSES.c.lms_course_id == lms_course_id,
            _COURSES.c.lti_context_id != context_id,
        )
        .limit(1)
    ).scalar()


def _ags_values(ags: AgsEndpoint | None) -> dict[str, str | None]:
    if ags is None:
        return dict.fromkeys(_AGS_COLUMNS)

    return {
        "ags_lineitems_url": ags.lineitems_url,
        "ags_lineitem_url": ags.lineitem_url,
        "ags_scopes": ags.scopes_text,
    }


def learner(
    connection: Connection,
    *,
    provider_id: int,
    lms_connection_id: int,
    lms_user_id: str,
    name: str | None,
    email: str | None,
    lti_sub: str | None = None,
) -> tuple[int, str | None, str | None]:
    """Insert the learner or update the name a launch sent.

    Returns (id, stored email, stored sub). A returning learner's stored email is
    kept, so the caller can compare it with the launch's `email` and record a
    change. The stored sub is the one of the learner's first launch; the caller
    refuses a launch whose `sub` differs, which rolls this update back.
    """
    return connection.execute(
        _statement("learner", connection),
        {
            "provider_id": provider_id,
            "lms_connection_id": lms_connection_id,
            "lms_user_id": lms_user_id,
            "name": name,
            "email": email,
            # OpenID Connect caps `sub` at 255 characters; a longer one matches nothing.
            "lti_sub": lti_sub if lti_sub and len(lti_sub) <= 255 else None,
            "created_at": utcnow(),
        },
    ).one()


class RecentUpserts:
    """Course and learner rows this process upserted lately, with the values written.

    A launch that would write the same values to the same row again within
    `max_age_seconds` skips its upsert and reuses the row's id, so a learner's
    repeated launches only record their nonce. Entries are added after the launch's
    commit, and `clear` runs after any commit of this process that changes a course
    or learner row through an ORM session (see `clear_after_commits`). A change by
    another process (a second web process, a CLI command, a Core statement on a bare
    connection) is not seen, so for up to `max_age_seconds` after it:

    - a launch does not write its title, LMS course id, AGS endpoint, name or
      `sub` over a value that other process wrote;
    - a launch of a course or learner row that process deleted gets the deleted
      row's id.
    """

    def __init__(
        self, max_age_seconds: float = 10.0, max_entries: int = 10_000
    ) -> None:
        self.max_age = max_age_seconds
        self.max_entries = max_entries
        self._courses: dict[tuple, tuple[float, tuple, int]] = {}
        self._learners: dict[tuple, tuple[float, tuple, int, str | None]] = {}
        self._lock = threading.Lock()

    def course_id(self, key: tuple, values: tuple) -> int | None:
        """Return the course id when `values` were written to its row lately."""
        cached = self._courses.get(key)
        if cached is None or cached[1] != values:
            return None
        if time.monotonic() - cached[0] >= self.max_age:
            return None
        return cached[2]

    def learner(self, key: tuple, values: tuple) -> tuple[int, str | None] | None:
        """Return (id, stored email) when `values` were written to its row lately."""
        cached = self._learners.get(key)
        if cached is None or cached[1] != values:
            return None
        if time.monotonic() - cached[0] >= self.max_age:
            return None
        return cached[2], cached[3]

    def remember_course(self, key: tuple, values: tuple, course_id: int) -> None:
        with self._lock:
            if len(self._courses) >= self.max_entries:
                self._courses.clear()
            self._courses[key] = (time.monotonic(), values, course_id)

    def remember_learner(
        self, key: tuple, values: tuple, learner_id: int, stored_email: str | None
    ) -> None:
        with self._lock:
            if len(self._learners) >= self.max_entries:
                self._learners.clear()
            self._learners[key] = (time.monotonic(), values, learner_id, stored_email)

    def clear(self) -> None:
        with self._lock:
            self._courses.clear()
            self._learners.clear()
