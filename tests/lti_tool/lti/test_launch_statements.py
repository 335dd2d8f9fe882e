"""The statements one login and launch send: one used-nonce INSERT and one commit."""

from __future__ import annotations

import time

from sqlalchemy import event, func, select

from badge_engine.models import Learner

from lti_tool.lti import nonces
from lti_tool.models import LtiCourse, LtiUsedNonce


def _record_used_nonce_inserts(monkeypatch, statements: list[str]) -> None:
    """Record the used-nonce INSERT, which runs on the DB-API cursor.

    SQLAlchemy's cursor events do not see that statement, so the tests record it
    beside the statements those events record.
    """
    insert = nonces._insert_used

    def recorded(connection, registration, verified):
        statements.append(
            " ".join(
                nonces._UsedNonceInsert.for_dialect(connection.dialect).sql.split()
            ).upper()
        )
        return insert(connection, registration, verified)

    monkeypatch.setattr(nonces, "_insert_used", recorded)


def test_launch_statements(app, tool, platform, db, monkeypatch):
    """A login writes nothing; its launch records the nonce once and commits once."""
    # The purge of expired used nonces (at most once a minute) is a DELETE of its own,
    # so it is kept out of this launch.
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    engine = app.extensions["hpass"].engine
    statements: list[str] = []
    commits: list[int] = []

    def record(connection, cursor, statement, *args):
        statements.append(" ".join(statement.split()).upper())

    _record_used_nonce_inserts(monkeypatch, statements)
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", lambda connection: commits.append(1))
    try:
        login = tool.start()
        login_statements = list(statements)
        login_commits = len(commits)
        claims = platform.claims(login.nonce, tool.target_link_uri)
        response = tool.launch(platform.sign(claims), login.state)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert response.status_code == 302, response.text
    # The first login reads its registration row, then it is cached.
    assert [text for text in login_statements if not text.startswith("SELECT")] == []
    assert login_commits == 0
    on_nonces = [text for text in statements if "LTI_USED_NONCES" in text]
    assert [text.split()[0] for text in on_nonces] == ["INSERT"]
    assert len(commits) == 1
    assert db.scalar(select(func.count()).select_from(LtiUsedNonce)) == 1
    # Course and learner: one upsert each, with no SELECT before them.
    assert sum(text.startswith("INSERT INTO LTI_COURSES") for text in statements) == 1
    assert sum(text.startswith("INSERT INTO LEARNERS") for text in statements) == 1
    assert not any(
        text.startswith("SELECT") and "LTI_COURSES" in text for text in statements
    )


def _launch_statements(app, tool, platform, monkeypatch, **changes) -> list[str]:
    engine = app.extensions["hpass"].engine
    statements: list[str] = []
    _record_used_nonce_inserts(monkeypatch, statements)

    def record(connection, cursor, statement, *args):
        statements.append(" ".join(statement.split()).upper())

    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, **changes)
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = tool.launch(platform.sign(claims), login.state)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 302, response.text
    return statements


def _upserts(statements: list[str]) -> list[str]:
    return [
        text.split()[2]
        for text in statements
        if text.startswith(("INSERT INTO LTI_COURSES", "INSERT INTO LEARNERS"))
    ]


def test_repeat_launch_skips_upserts(app, tool, platform, monkeypatch):
    """A repeated launch with the same claims writes only its used nonce."""
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    first = _launch_statements(app, tool, platform, monkeypatch)
    second = _launch_statements(app, tool, platform, monkeypatch)

    assert _upserts(first) == ["LTI_COURSES", "LEARNERS"]
    assert _upserts(second) == []
    writes = [
        text.split()[0] + " " + text.split()[2]
        for text in second
        if text.startswith("INSERT")
    ]
    assert writes == ["INSERT LTI_USED_NONCES"]


def test_changed_claims_upsert_again(app, tool, platform, db, monkeypatch):
    """A launch with a new title or name writes that row again, and only that row."""
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    _launch_statements(app, tool, platform, monkeypatch)

    renamed = _launch_statements(
        app, tool, platform, monkeypatch, name="Learner Renamed"
    )
    retitled = _launch_statements(
        app,
        tool,
        platform,
        monkeypatch,
        name="Learner Renamed",
        lti_context={"id": "course-1", "title": "Course one, renamed"},
    )

    assert _upserts(renamed) == ["LEARNERS"]
    assert _upserts(retitled) == ["LTI_COURSES"]
    db.expire_all()
    assert db.scalar(select(Learner.name)) == "Learner Renamed"
    assert db.scalar(select(LtiCourse.title)) == "Course one, renamed"


def test_orm_change_clears_recent_upserts(app, tool, platform, db, monkeypatch):
    """A course changed through a session of this process is written again at launch."""
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    _launch_statements(app, tool, platform, monkeypatch)
    course = db.scalar(select(LtiCourse))
    course.title = "Changed by an admin"
    db.commit()

    statements = _launch_statements(app, tool, platform, monkeypatch)

    assert _upserts(statements) == ["LTI_COURSES", "LEARNERS"]
    db.expire_all()
    assert db.scalar(select(LtiCourse.title)) == "Course one"


def test_recent_upserts_expire(app, tool, platform, monkeypatch):
    """After the cache's max age a repeated launch upserts again."""
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    app.extensions["hpass_lti_launch"].upserts.max_age = 0.0
    _launch_statements(app, tool, platform, monkeypatch)

    statements = _launch_statements(app, tool, platform, monkeypatch)

    assert _upserts(statements) == ["LTI_COURSES", "LEARNERS"]
