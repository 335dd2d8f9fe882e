"""Insert-or-update of the course and learner rows a launch touches, one statement each.

A launch runs these on SQLite or PostgreSQL; both support INSERT ... ON CONFLICT DO
UPDATE ... RETURNING, so a returning course or learner costs one round trip and the
row's id comes back without a second SELECT.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from badge_engine.db import utcnow
from badge_engine.models import Learner
from lti_tool.models import LtiCourse

_COURSES = LtiCourse.__table__
_LEARNERS = Learner.__table__
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
        # A launch without a title keeps the stored one.
        set_={
            "title": func.coalesce(statement.excluded.title, _COURSES.c.title),
            "lms_course_id": statement.excluded.lms_course_id,
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
        set_={
            "name": func.coalesce(statement.excluded.name, _LEARNERS.c.name),
            "email": func.coalesce(_LEARNERS.c.email, statement.excluded.email),
        },
    ).returning(_LEARNERS.c.id, _LEARNERS.c.email)


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
) -> int:
    """Insert the course of an LTI context or update its title and LMS id; return its id."""
    return connection.execute(
        _statement("course", connection),
        {
            "provider_id": provider_id,
            "registration_id": registration_id,
            "lti_context_id": context_id,
            "title": title,
            "lms_course_id": lms_course_id,
            "created_at": utcnow(),
        },
    ).scalar_one()


def learner(
    connection: Connection,
    *,
    provider_id: int,
    lms_connection_id: int,
    lms_user_id: str,
    name: str | None,
    email: str | None,
) -> tuple[int, str | None]:
    """Insert the learner or update the name a launch sent; return (id, stored email).

    A returning learner's stored email is kept, so the caller can compare it with
    the launch's `email` and record a change.
    """
    return connection.execute(
        _statement("learner", connection),
        {
            "provider_id": provider_id,
            "lms_connection_id": lms_connection_id,
            "lms_user_id": lms_user_id,
            "name": name,
            "email": email,
            "created_at": utcnow(),
        },
    ).one()
