"""The statements one login and launch send: one used-nonce INSERT and one commit."""

from __future__ import annotations

import time

from sqlalchemy import event

from lti_tool.lti import nonces


def test_launch_statements(app, tool, platform, monkeypatch):
    """A login writes nothing; its launch records the nonce once and commits once."""
    # The purge of expired used nonces (at most once a minute) is a DELETE of its own,
    # so it is kept out of this launch.
    monkeypatch.setattr(nonces, "_last_purge", time.monotonic())
    engine = app.extensions["hpass"].engine
    statements: list[str] = []
    commits: list[int] = []

    def record(connection, cursor, statement, *args):
        statements.append(" ".join(statement.split()).upper())

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
    # Course and learner: one upsert each, with no SELECT before them.
    assert sum(text.startswith("INSERT INTO LTI_COURSES") for text in statements) == 1
    assert sum(text.startswith("INSERT INTO LEARNERS") for text in statements) == 1
    assert not any(text.startswith("SELECT") and "LTI_COURSES" in text for text in statements)
