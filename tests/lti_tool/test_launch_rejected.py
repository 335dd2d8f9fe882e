"""Launches that fail validation get a 4xx page and leave nothing behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from badge_engine.models import Learner
from lti_tool.lti.registrations import create_registration
from lti_tool.models import LtiCourse
from tests.support.seed import add_moodle_connection, add_provider

ISSUER = "http://127.0.0.1:9/platform"


@pytest.fixture
def registration(app, db):
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:9", "t")
    registration = create_registration(
        db,
        vault,
        provider,
        issuer=ISSUER,
        client_id="client-1",
        auth_login_url=f"{ISSUER}/auth",
        key_set_url=f"{ISSUER}/jwks",
        deployment_ids=("1",),
        lms_connection_id=connection.id,
    )
    db.commit()
    return registration


def _nothing_created(db) -> bool:
    courses = db.scalar(select(func.count()).select_from(LtiCourse))
    learners = db.scalar(select(func.count()).select_from(Learner))
    return courses == 0 and learners == 0


def test_forged_id_token_rejected(client, db, registration):
    """A launch POST with a made-up id_token and state gets 400 and creates nothing."""
    response = client.post(
        f"/lti/{registration.public_id}/launch",
        data={"id_token": "eyJhbGciOiJub25lIn0.e30.", "state": "forged"},
        headers={"Accept": "text/html"},
    )

    assert response.status_code == 400
    assert b"algorithm" in response.data
    assert _nothing_created(db)


def test_login_for_other_issuer_rejected(client, db, registration):
    """A login initiation naming another issuer gets 400 naming both issuers."""
    response = client.get(
        f"/lti/{registration.public_id}/login",
        query_string={
            "iss": "http://127.0.0.1:9/other",
            "login_hint": "3001",
            "target_link_uri": "http://127.0.0.1:5999/x",
            "client_id": "client-1",
        },
    )

    assert response.status_code == 400
    assert b"http://127.0.0.1:9/other" in response.data
    assert _nothing_created(db)


def test_unknown_registration_404(client):
    """A login URL with an unknown registration id gets 404."""
    response = client.get("/lti/no-such-registration/login")

    assert response.status_code == 404
