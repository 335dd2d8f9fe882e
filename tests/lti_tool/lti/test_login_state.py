"""Signed login states and single-use nonces: forged, foreign, expired and replayed.

The HTTP cases drive the bridge like a browser (see harness.py); the others call
`lti_tool.lti.nonces` on the test database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import time
from datetime import timedelta

from sqlalchemy import func, insert, select

from badge_engine.db import utcnow
from lti_tool.lti import nonces
from lti_tool.lti.errors import StateInvalid
from lti_tool.models import LtiUsedNonce
from tests.lti_tool.lti.harness import CLIENT_ID


def _signed(platform, tool, nonce: str) -> str:
    return platform.sign(platform.claims(nonce, tool.target_link_uri))


def _page(response) -> str:
    return html.unescape(response.text)


def _used_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(LtiUsedNonce))


def _with_state_cookie(tool, state: str) -> None:
    tool.http.cookies.set(_state_cookie_name(state), state, path="/lti/")


def _state_cookie_name(state: str) -> str:
    return "hpass_lti_state_" + state


def test_login_writes_nothing(tool, db):
    """A login issues a state and nonce without storing a row."""
    login = tool.start()

    assert login.state.count(".") == 4
    assert login.nonce
    assert _used_count(db) == 0


def test_replay_after_new_token_rejected(tool, platform, db):
    """A used state with a freshly signed id_token and its cookie gets 400."""
    login = tool.start()
    first = tool.launch(_signed(platform, tool, login.nonce), login.state)
    _with_state_cookie(tool, login.state)

    time.sleep(1)
    second = tool.launch(_signed(platform, tool, login.nonce), login.state)

    assert first.status_code == 302
    assert second.status_code == 400
    assert "already used" in _page(second)
    assert _used_count(db) == 1


def test_forged_state_mac_rejected(tool, platform, db):
    """A state whose MAC was changed gets 400, even with a matching cookie."""
    login = tool.start()
    body, _, mac = login.state.rpartition(".")
    forged = f"{body}.{'A' * len(mac)}"
    _with_state_cookie(tool, forged)

    response = tool.launch(_signed(platform, tool, login.nonce), forged)

    assert response.status_code == 400
    assert "state is unknown" in _page(response)
    assert _used_count(db) == 0


def test_forged_state_expiry_rejected(tool, platform, db):
    """A state with a later expiry written in, but the old MAC, gets 400."""
    login = tool.start()
    registration_id, expires_at, rest = login.state.split(".", 2)
    forged = f"{registration_id}.{int(expires_at) + 3600}.{rest}"
    _with_state_cookie(tool, forged)

    response = tool.launch(_signed(platform, tool, login.nonce), forged)

    assert response.status_code == 400
    assert "state is unknown" in _page(response)


def test_forged_nonce_rejected(tool, platform, db):
    """An id_token whose nonce is not the state's own gets 400 and records nothing."""
    login = tool.start()
    other = tool.start()

    response = tool.launch(_signed(platform, tool, other.nonce), login.state)

    assert response.status_code == 400
    assert "nonce does not match" in _page(response)
    assert _used_count(db) == 0
    # The login's own nonce still works afterwards.
    accepted = tool.launch(_signed(platform, tool, login.nonce), login.state)
    assert accepted.status_code == 302


def test_expired_state_rejected_with_cookie(tool, platform, db, monkeypatch):
    """A state past its expiry gets 400 although the browser sends its cookie."""
    monkeypatch.setattr(nonces, "LIFETIME", timedelta(seconds=-1))
    login = tool.start()

    response = tool.launch(_signed(platform, tool, login.nonce), login.state)

    assert response.status_code == 400
    assert "expired" in _page(response)
    assert _used_count(db) == 0


def test_state_of_other_registration_rejected(app, registration):
    """A state signed for one registration does not verify for another."""
    signer = nonces.StateSigner(b"secret-one")
    issued, _ = signer.issue(registration)

    class OtherRegistration:
        id = registration.id + 1
        provider_id = registration.provider_id

    assert signer.verify(registration, issued.state) is not None
    assert signer.verify(OtherRegistration(), issued.state) is None


def test_state_of_other_key_rejected(registration):
    """A state signed with another secret key does not verify."""
    issued, _ = nonces.StateSigner(b"secret-one").issue(registration)

    assert nonces.StateSigner(b"secret-two").verify(registration, issued.state) is None


def test_storage_target_carried(registration):
    """A platform storage login's state carries its target and a binding."""
    signer = nonces.StateSigner(b"secret-one")
    issued, binding = signer.issue(registration, storage_target="_parent")

    verified = signer.verify(registration, issued.state)
    assert verified.storage_target == "_parent"
    assert signer.binding_matches(issued.state, binding)
    assert not signer.binding_matches(issued.state, binding[:-1] + "x")
    assert not signer.binding_matches(issued.state, None)


def test_empty_secret_key_rejected():
    """A signer needs a secret key."""
    try:
        nonces.StateSigner(b"")
    except ValueError as error:
        assert "secret key" in str(error)
    else:
        raise AssertionError("an empty secret key was accepted")


def test_consume_twice_rejected(app, db, registration):
    """The second consume of one state raises StateInvalid; the first records it."""
    signer = nonces.StateSigner(b"secret-one")
    issued, _ = signer.issue(registration)
    ids = {"registration": registration.public_id, "client_id": CLIENT_ID}

    nonces.consume(
        db.connection(), signer, registration, issued.state, issued.nonce, **ids
    )
    db.commit()
    try:
        nonces.consume(
            db.connection(), signer, registration, issued.state, issued.nonce, **ids
        )
    except StateInvalid as error:
        assert "already used" in str(error)
    else:
        raise AssertionError("a used state was accepted again")
    db.rollback()
    assert _used_count(db) == 1


def _add_used(db, registration, state_id: str, expires_at) -> None:
    db.execute(
        insert(LtiUsedNonce).values(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            state_id=state_id,
            expires_at=expires_at,
        )
    )
    db.commit()


def test_purge_deletes_expired_only(db, registration):
    """The purge deletes rows past their expiry and margin, and keeps the rest."""
    now = utcnow()
    _add_used(
        db,
        registration,
        "long-expired",
        now - nonces.PURGE_MARGIN - timedelta(minutes=1),
    )
    _add_used(db, registration, "just-expired", now - timedelta(seconds=5))
    _add_used(db, registration, "current", now + timedelta(minutes=4))

    deleted = nonces.purge_expired(db.connection())
    db.commit()

    assert deleted == 1
    remaining = set(db.scalars(select(LtiUsedNonce.state_id)))
    assert remaining == {"just-expired", "current"}


def test_launch_purges_expired(tool, platform, db, registration, monkeypatch):
    """A launch purges expired used nonces when the last purge is a minute old."""
    _add_used(db, registration, "long-expired", utcnow() - timedelta(hours=1))
    monkeypatch.setattr(nonces, "_last_purge", 0.0)
    login = tool.start()

    response = tool.launch(_signed(platform, tool, login.nonce), login.state)

    assert response.status_code == 302
    db.expire_all()
    assert list(db.scalars(select(LtiUsedNonce.state_id))) == [
        login.state.split(".")[2]
    ]


def test_longest_storage_target_fits(registration):
    """A 128-character non-ASCII storage target still makes a state that verifies."""
    signer = nonces.StateSigner(b"secret-one")
    target = "\u00e9" * 128
    issued, _ = signer.issue(registration, storage_target=target)

    assert len(issued.state) <= nonces.MAX_STATE_LENGTH
    assert signer.verify(registration, issued.state).storage_target == target
