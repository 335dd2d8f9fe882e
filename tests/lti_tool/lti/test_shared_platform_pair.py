"""Two providers that register the same platform issuer and client id.

Launches find their registration by the public id in the tool URLs, so each launch
must write only the rows of the provider whose URL it used, although both
registrations share the issuer, client id, deployment id and user `sub`.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import Learner, Provider
from lti_tool.demo.peers.platform import PlatformPeer, ToolRegistration
from lti_tool.lti.registrations import create_registration
from lti_tool.models import LtiCourse, LtiUsedNonce, Registration
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url
from tests.lti_tool.lti.harness import DEPLOYMENT_ID, ToolClient
from tests.lti_tool.lti.platform_setup import register_peer, start_bridge, stop
from tests.support.seed import add_provider


@pytest.fixture(params=["moodle", "canvas"])
def shared(request, tmp_path, database_url):
    """One platform peer registered for providers academy and college, with the
    peer's tool pointed at college's registration last."""
    app, server = start_bridge(tmp_path, database_url)
    peer = PlatformPeer(claim_set=request.param)
    peer_server = peer.start()
    academy = register_peer(app, server.url, peer, slug="academy")
    college = register_peer(app, server.url, peer, slug="college")
    yield app, server.url, peer, {"academy": academy, "college": college}
    stop(app, peer_server, server)


def _point_peer_at(peer: PlatformPeer, base: str, public_id: str) -> None:
    peer.register_tool(
        ToolRegistration(
            login_url=lti_login_url(base, public_id),
            launch_url=lti_launch_url(base, public_id),
            jwks_url=lti_jwks_url(base, public_id),
        )
    )


def _launch_learner(peer: PlatformPeer) -> requests.Response:
    response = peer.launch_with_session(requests.Session(), "learner")
    assert response.status_code == 200, response.text[:500]
    return response


def _rows(app, model, slug: str) -> list:
    with app.extensions["hpass"].session() as session:
        provider_id = session.scalar(select(Provider.id).where(Provider.slug == slug))
        return list(
            session.scalars(select(model).where(model.provider_id == provider_id))
        )


def test_registrations_share_pair(shared):
    """Both providers have a registration of the same issuer and client id."""
    app, _, peer, public_ids = shared

    with app.extensions["hpass"].session() as session:
        registrations = list(
            session.scalars(select(Registration).order_by(Registration.id))
        )

    assert [r.public_id for r in registrations] == list(public_ids.values())
    assert {(r.issuer, r.client_id) for r in registrations} == {
        (peer.token_issuer, peer.client_id)
    }
    assert registrations[0].provider_id != registrations[1].provider_id


def test_launches_stay_in_provider(shared):
    """Each launch creates the course, learner and used nonce of the provider whose
    URL it used, and a second launch to academy adds no row to college."""
    app, base, peer, public_ids = shared

    college_page = _launch_learner(peer)
    college_courses = _rows(app, LtiCourse, "college")
    assert _rows(app, LtiCourse, "academy") == []
    assert _rows(app, Learner, "academy") == []

    _point_peer_at(peer, base, public_ids["academy"])
    academy_page = _launch_learner(peer)
    _launch_learner(peer)

    academy_courses = _rows(app, LtiCourse, "academy")
    academy_learners = _rows(app, Learner, "academy")
    college_learners = _rows(app, Learner, "college")
    assert len(academy_courses) == 1
    assert len(college_courses) == 1
    assert [course.id for course in _rows(app, LtiCourse, "college")] == [
        college_courses[0].id
    ]
    assert academy_courses[0].id != college_courses[0].id
    assert academy_courses[0].lti_context_id == college_courses[0].lti_context_id
    assert college_page.url.endswith(f"/course/{college_courses[0].id}")
    assert academy_page.url.endswith(f"/course/{academy_courses[0].id}")
    assert len(academy_learners) == 1
    assert len(college_learners) == 1
    assert academy_learners[0].id != college_learners[0].id
    assert academy_learners[0].lti_sub == college_learners[0].lti_sub
    assert (
        academy_learners[0].lms_connection_id != college_learners[0].lms_connection_id
    )
    assert len(_rows(app, LtiUsedNonce, "academy")) == 2
    assert len(_rows(app, LtiUsedNonce, "college")) == 1


def test_course_rows_use_own_registration(shared):
    """Every course row points at the registration of its own provider."""
    app, base, peer, public_ids = shared
    _launch_learner(peer)
    _point_peer_at(peer, base, public_ids["academy"])
    _launch_learner(peer)

    with app.extensions["hpass"].session() as session:
        rows = session.execute(
            select(
                Registration.public_id, Registration.provider_id, LtiCourse.provider_id
            )
            .join(LtiCourse, LtiCourse.registration_id == Registration.id)
            .order_by(LtiCourse.id)
        ).all()

    assert [row[0] for row in rows] == [public_ids["college"], public_ids["academy"]]
    assert all(row[1] == row[2] for row in rows)


def test_login_state_bound_to_registration(app, db, registration, tool, platform):
    """A login state of academy's registration is rejected at the launch URL of
    college's registration of the same pair, and college gets no rows."""
    college = add_provider(db, slug="college", name="College")
    college_registration = create_registration(
        db,
        app.extensions["hpass"].vault,
        college,
        issuer=registration.issuer,
        client_id=registration.client_id,
        auth_login_url=registration.auth_login_url,
        key_set_url=registration.key_set_url,
        deployment_ids=(DEPLOYMENT_ID,),
    )
    db.commit()
    college_tool = ToolClient(
        tool.tool_url, college_registration.public_id, tool.issuer
    )
    college_tool.http = tool.http
    login = tool.start()

    response = college_tool.launch(
        platform.sign(platform.claims(login.nonce, college_tool.target_link_uri)),
        login.state,
    )

    assert response.status_code == 400
    assert "state" in response.text
    for model in (LtiCourse, Learner, LtiUsedNonce):
        assert _rows(app, model, "college") == [], model.__name__
