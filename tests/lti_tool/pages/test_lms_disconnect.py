"""Disconnecting an LMS connection from the admin page and the API, on SQLite and
PostgreSQL: tenant walls, bad input, the freed site, the migration, the counts of
what stays on the connection, and what the course pages then show."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from badge_engine.models import Provider
from connectors.models import LmsConnection
from lti_tool import intake
from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.api.tokens import create_api_token
from lti_tool.app import create_app
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.schema import alembic_config, upgrade
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

from .conftest import add_account, sign_in

MOODLE_TOKEN = "disconnect-token"
ADMIN_EMAIL = "admin@alpha.org"
CSRF = {"csrf": "test-csrf"}


@pytest.fixture(scope="module")
def moodle():
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, settings, moodle):
    """The app on SQLite or PostgreSQL with providers "alpha" (admin account, API
    token, one Moodle connection) and "beta" (one Moodle connection)."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        alpha = add_provider(session, slug="alpha", name="Alpha")
        beta = add_provider(session, slug="beta", name="Beta")
        own = add_moodle_connection(
            session, bridge.vault, alpha, moodle.site_url, MOODLE_TOKEN
        )
        foreign = add_moodle_connection(
            session, bridge.vault, beta, moodle.site_url, MOODLE_TOKEN
        )
        _, token = create_api_token(
            session, provider_id=alpha.id, name="t", created_by="test"
        )
        session.commit()
        ids = {"alpha": alpha.id, "own": own.public_id, "foreign": foreign.public_id}
        add_account(session, ADMIN_EMAIL, AccountRole.PROVIDER_ADMIN, alpha.id)
    yield app, ids, token
    intake.stop(app)
    bridge.engine.dispose()


def _connection(app, public_id: str) -> LmsConnection:
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(LmsConnection).where(LmsConnection.public_id == public_id)
        )


def _audit_count(app) -> int:
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "lms_connection.disconnected")
        )


def _api(app, token: str, public_id: str):
    return app.test_client().post(
        f"/api/v1/lms-connections/{public_id}/disconnect",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_api_disconnect_frees_site(backend, moodle):
    """After a disconnect the API connects the same site again, and the unique
    index still rejects a second live connection to it."""
    app, ids, token = backend
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    body = {"url": moodle.site_url, "token": MOODLE_TOKEN}
    before = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    response = _api(app, token, ids["own"])
    again = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)
    third = client.post("/api/v1/lms-connections/moodle", json=body, headers=headers)

    assert before.status_code == 409
    assert (
        f"connection disconnect {ids['own']} --provider alpha" in before.json["message"]
    )
    assert response.status_code == 200
    assert response.json["state"] == "disconnected"
    assert response.json["disconnected_by"].startswith("api-token:")
    assert again.status_code == 201, again.json
    assert third.status_code == 409
    assert third.json["error"] == "connection_exists"
    assert _audit_count(app) == 1


def test_api_listing_marks_disconnected(backend):
    """The provider's connection list shows the state and when it changed."""
    app, ids, token = backend
    _api(app, token, ids["own"])

    listing = app.test_client().get(
        "/api/v1/lms-connections", headers={"Authorization": f"Bearer {token}"}
    )

    rows = {row["id"]: row for row in listing.json["connections"]}
    assert rows[ids["own"]]["state"] == "disconnected"
    assert rows[ids["own"]]["disconnected_at"] is not None
    assert ids["foreign"] not in rows


@pytest.mark.parametrize(
    ("target", "status", "error"),
    [
        ("foreign", 404, "connection_not_found"),
        ("no-such-id", 404, "connection_not_found"),
    ],
    ids=["other-provider", "unknown-id"],
)
def test_api_disconnect_bad_id(backend, target, status, error):
    """Another provider's id or an unknown id is a 404, and nothing changes."""
    app, ids, token = backend

    response = _api(app, token, ids.get(target, target))

    assert response.status_code == status
    assert response.json["error"] == error
    assert _connection(app, ids["foreign"]).state == "ok"
    assert _audit_count(app) == 0


def test_api_disconnect_twice_conflict(backend):
    """A second disconnect is a 409 that says the connection was disconnected."""
    app, ids, token = backend
    _api(app, token, ids["own"])

    again = _api(app, token, ids["own"])

    assert again.status_code == 409
    assert again.json["error"] == "connection_disconnected"
    assert "was disconnected at" in again.json["message"]
    assert _audit_count(app) == 1


def test_page_disconnect_with_confirmation(backend):
    """The page links to a confirmation page whose form disconnects the site."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    link = f"/admin/connections/{ids['own']}/disconnect"

    page = client.get("/admin/connect").get_data(as_text=True)
    confirm = client.get(link)
    confirm_page = confirm.get_data(as_text=True)
    posted = client.post(link, data=CSRF)
    after = client.get(posted.headers["Location"]).get_data(as_text=True)

    assert f'href="{link}"' in page
    assert f"/admin/connections/{ids['foreign']}/disconnect" not in page
    assert confirm.status_code == 200
    assert f'<form method="post" action="{link}">' in confirm_page
    assert 'name="csrf"' in confirm_page
    assert "cannot be restored" in confirm_page
    assert posted.status_code == 303
    assert 'role="status"' in after
    assert "is disconnected" in after
    assert "These stay on the disconnected site:" in after
    assert 'data-count="achievements">Badges on this site: <strong>0</strong>' in after
    assert "Learners can no longer earn these badges" not in after
    assert "<strong>Disconnected</strong>" in after
    assert f'href="{link}"' not in after
    stored = _connection(app, ids["own"])
    assert stored.state == "disconnected"
    assert stored.disconnected_by.startswith("account:")
    assert stored.api_token_encrypted is None
    assert _audit_count(app) == 1


def test_page_disconnect_rejections(backend):
    """Another provider's connection is a 404, a post without the form token is
    rejected, and a second disconnect is a 409. None of them writes anything."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    own = f"/admin/connections/{ids['own']}/disconnect"

    foreign_form = client.get(f"/admin/connections/{ids['foreign']}/disconnect")
    foreign_post = client.post(
        f"/admin/connections/{ids['foreign']}/disconnect", data=CSRF
    )
    unknown_post = client.post("/admin/connections/no-such-id/disconnect", data=CSRF)
    no_token = client.post(own)
    audit_after_rejections = _audit_count(app)
    client.post(own, data=CSRF)
    twice = client.post(own, data=CSRF)

    assert foreign_form.status_code == 404
    assert foreign_post.status_code == 404
    assert unknown_post.status_code == 404
    for answer in (foreign_form, foreign_post, unknown_post):
        assert "has no LMS site at this address" in answer.get_data(as_text=True)
    assert no_token.status_code in (400, 403)
    assert audit_after_rejections == 0
    assert twice.status_code == 409
    assert "was already disconnected" in twice.get_data(as_text=True)
    assert _connection(app, ids["foreign"]).state == "ok"
    assert _audit_count(app) == 1


def test_page_connects_site_again(backend, moodle):
    """After a disconnect the page connects the same site as a new connection,
    and the registration form no longer offers the old one."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    client.post(f"/admin/connections/{ids['own']}/disconnect", data=CSRF)

    response = client.post(
        "/admin/connect/lms",
        data={
            **CSRF,
            "lms_name": "Again",
            "lms_url": moodle.site_url,
            "lms_token": MOODLE_TOKEN,
        },
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    old = _connection(app, ids["own"])
    assert f'<option value="{old.id}">' not in page
    assert ">Again</option>" in page
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "LMS sites connected: 1" in dashboard


def test_migration_widens_state(tmp_path):
    """On SQLite and PostgreSQL the upgrade stores the disconnected state, and the
    downgrade turns it into broken."""
    for url in (f"sqlite:///{tmp_path / 'disconnect.db'}", reset_postgres()):
        config = alembic_config(url)
        command.upgrade(config, "0120_facts_learner_index")
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO providers (slug, name, url, slug_frozen, created_at) "
                    "VALUES ('p', 'P', 'https://p.example.org', false, "
                    "CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO lms_connections (provider_id, public_id, kind, name, "
                    "base_url, state, created_at, site_key) VALUES ((SELECT id FROM "
                    "providers), 'c1', 'moodle', 'M', 'https://m.example.org', 'ok', "
                    "CURRENT_TIMESTAMP, 'https://m.example.org')"
                )
            )

        command.upgrade(config, "0121_lms_disconnect")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE lms_connections SET state = 'disconnected', "
                    "disconnected_by = 'os:test', site_key = NULL"
                )
            )
        command.downgrade(config, "0120_facts_learner_index")
        with engine.connect() as connection:
            state = connection.execute(
                text("SELECT state FROM lms_connections")
            ).scalar_one()
        engine.dispose()

        assert state == "broken", url


def test_provider_scoped_listing(backend):
    """The page lists only the signed-in provider's connections."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    with app.extensions["hpass"].session() as session:
        beta = session.scalar(select(Provider).where(Provider.slug == "beta"))
        foreign_name = f"{beta.name} Moodle"

    page = client.get("/admin/connect").get_data(as_text=True)

    assert "Alpha Moodle" in page
    assert foreign_name not in page


def test_course_page_refuses_badge_after_disconnect(client, tenants, db):
    """An instructor cannot add a badge on a disconnected connection, and the page
    tells what to ask the provider admin."""
    from badge_engine.models import Achievement
    from lti_tool.operations.lms import disconnect_connection

    from .conftest import launch_as
    from .test_course_pages import badge_form

    alpha, beta = tenants
    disconnect_connection(db, "os:test", db.get(LmsConnection, alpha.connection_id))
    db.commit()
    before = db.scalar(select(func.count()).select_from(Achievement))
    launch_as(client, alpha, "instructor")

    refused = client.post(f"/course/{alpha.course_id}/achievements", data=badge_form())
    launch_as(client, beta, "instructor")
    accepted = client.post(f"/course/{beta.course_id}/achievements", data=badge_form())

    refused_page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Ask the provider admin to connect the LMS again" in refused_page
    assert "The new connection does not take over this course" in refused_page
    assert accepted.status_code in (200, 303)
    assert db.scalar(select(func.count()).select_from(Achievement)) == before + 1


def _add_usage(app, ids) -> None:
    """Give alpha's connection 3 badges in 2 courses and 1 LTI registration, and
    beta 1 badge on its own connection and 1 row naming alpha's connection."""
    from badge_engine.models import Achievement
    from badge_engine.rules import COURSE_COMPLETED_RULE
    from lti_tool.lti.registrations import create_registration

    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        own = session.scalar(
            select(LmsConnection).where(LmsConnection.public_id == ids["own"])
        )
        foreign = session.scalar(
            select(LmsConnection).where(LmsConnection.public_id == ids["foreign"])
        )
        rows = [
            (own.provider_id, own.id, "101"),
            (own.provider_id, own.id, "101"),
            (own.provider_id, own.id, "202"),
            (foreign.provider_id, foreign.id, "101"),
            (foreign.provider_id, own.id, "303"),
        ]
        # Each badge has a name of its own, because one course cannot have two
        # badges of the same name.
        for number, (provider_id, connection_id, course_id) in enumerate(rows, 1):
            session.add(
                Achievement(
                    provider_id=provider_id,
                    lms_connection_id=connection_id,
                    lms_course_id=course_id,
                    name=f"Badge {number} of course {course_id}",
                    description="A badge.",
                    criteria_narrative="Complete the course.",
                    award_rule=COURSE_COMPLETED_RULE,
                )
            )
        create_registration(
            session,
            bridge.vault,
            session.get(Provider, own.provider_id),
            issuer="https://lms-alpha.example.org",
            client_id="client-alpha",
            auth_login_url="https://lms-alpha.example.org/auth",
            key_set_url="https://lms-alpha.example.org/jwks",
            deployment_ids=("1",),
            lms_connection_id=own.id,
        )
        session.commit()


def test_api_disconnect_reports_usage(backend):
    """The API response counts the provider's badges, courses and registrations
    that stay on the connection, without another provider's rows."""
    app, ids, token = backend
    _add_usage(app, ids)

    response = _api(app, token, ids["own"])

    assert response.status_code == 200
    assert response.json["state"] == "disconnected"
    assert response.json["usage"] == {
        "achievements": 3,
        "courses": 2,
        "lti_registrations": 1,
    }


def test_api_disconnect_unused_reports_zero(backend):
    """A connection without badges or registrations reports zero counts."""
    app, ids, token = backend

    response = _api(app, token, ids["own"])

    assert response.status_code == 200
    assert response.json["usage"] == {
        "achievements": 0,
        "courses": 0,
        "lti_registrations": 0,
    }


def test_confirmation_counts_usage(backend):
    """The confirmation page counts what uses the site, warns that its badges can
    no longer be earned, and lists what the admin can do."""
    app, ids, _ = backend
    _add_usage(app, ids)
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)

    page = client.get(f"/admin/connections/{ids['own']}/disconnect").get_data(
        as_text=True
    )

    assert 'data-count="achievements">Badges on this site: <strong>3</strong>' in page
    assert (
        'data-count="courses">Courses that award these badges: <strong>2</strong>'
        in page
    )
    assert (
        'data-count="lti_registrations">LTI registrations linked to this site: '
        "<strong>1</strong>" in page
    )
    assert "learners can no longer earn these badges" in page
    assert "a new connection starts without badges" in page
    assert "Credentials already issued stay valid" in page
    assert "What you can do" in page
    assert "Tell the instructors of these courses" in page
    assert '<code dir="ltr">hpass-bridge connection set-token</code>' in page


def test_confirmation_without_usage(backend):
    """An unused site shows zero counts and no badge warning or advice."""
    app, ids, _ = backend
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)

    page = client.get(f"/admin/connections/{ids['own']}/disconnect").get_data(
        as_text=True
    )

    assert 'data-count="achievements">Badges on this site: <strong>0</strong>' in page
    assert (
        'data-count="courses">Courses that award these badges: <strong>0</strong>'
        in page
    )
    assert (
        'data-count="lti_registrations">LTI registrations linked to this site: '
        "<strong>0</strong>" in page
    )
    assert "learners can no longer earn these badges" not in page
    assert "What you can do" not in page
    assert "Credentials already issued stay valid" in page


@pytest.mark.parametrize(
    ("language", "heading", "warning"),
    [
        ("fr", "Ce qui utilise ce site", "ne pourront plus obtenir ces badges"),
        ("es", "Qué usa este sitio", "ya no podrán obtener estas insignias"),
        ("ar", "ما الذي يستخدم هذا الموقع", "لن يتمكّن المتعلّمون من الحصول"),
    ],
)
def test_confirmation_translated(backend, language, heading, warning):
    """The counts and the warning are translated, and Arabic is right to left."""
    app, ids, _ = backend
    _add_usage(app, ids)
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)

    page = client.get(
        f"/admin/connections/{ids['own']}/disconnect?lang={language}"
    ).get_data(as_text=True)

    assert f'lang="{language}"' in page
    assert heading in page
    assert warning in page
    if language == "ar":
        assert 'dir="rtl"' in page


def _disconnect_alpha(db, alpha) -> None:
    from lti_tool.operations.lms import disconnect_connection

    disconnect_connection(db, "os:test", db.get(LmsConnection, alpha.connection_id))
    db.commit()


def _second_badge(db, tenant) -> None:
    from badge_engine.models import Achievement
    from badge_engine.rules import COURSE_COMPLETED_RULE

    db.add(
        Achievement(
            provider_id=tenant.provider_id,
            lms_connection_id=tenant.connection_id,
            lms_course_id="101",
            name="Second badge",
            description="Another badge.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()


def test_learner_page_badge_unavailable(client, tenants, db):
    """After a disconnect a badge not yet earned shows that it cannot be earned now
    and whom to ask, instead of listing missing steps."""
    from .conftest import launch_as

    alpha, _ = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "learner")

    response = client.get(f"/course/{alpha.course_id}")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "Badge of alpha" in page
    assert 'class="status unavailable"' in page
    assert "Cannot be earned at the moment" in page
    assert "LMS site was disconnected from the HPass bridge" in page
    assert "Ask your instructor" in page
    assert "Badges you already earned stay valid." in page
    assert "Not earned yet" not in page
    assert "Still missing" not in page
    assert "Complete the course" not in page
    assert "Why not yet?" not in page


def test_learner_page_connected_unchanged(client, tenants, db):
    """Another provider's disconnect leaves this learner's badge to earn as it was."""
    from .conftest import launch_as

    alpha, beta = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, beta, "learner")

    page = client.get(f"/course/{beta.course_id}").get_data(as_text=True)

    assert "Not earned yet" in page
    assert "Complete the course" in page
    assert "Cannot be earned at the moment" not in page


def test_learner_page_earned_after_disconnect(client, tenants, db):
    """An earned badge still shows as earned with its delivery, while a second
    badge of the course shows that it cannot be earned."""
    from connectors.hpass.models import Delivery

    from .conftest import add_credential, launch_as

    alpha, _ = tenants
    credential = add_credential(db, alpha)
    db.add(
        Delivery(
            provider_id=alpha.provider_id,
            credential_id=credential.id,
            status="delivered",
        )
    )
    _second_badge(db, alpha)
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    earned_card, second_card = page.split('<li class="card"')[1:3]

    assert "Badge of alpha" in earned_card
    assert "Earned" in earned_card
    assert "Where your badge went" in earned_card
    assert "HPass portfolio: Delivered" in earned_card
    assert f"/credentials/{credential.public_id}" in earned_card
    assert "Cannot be earned at the moment" not in earned_card
    assert "Second badge" in second_card
    assert "Cannot be earned at the moment" in second_card
    assert "Earned" not in second_card


def test_learner_page_unavailable_in_arabic(client, tenants, db):
    """The Arabic page states that the badge cannot be earned, right to left."""
    from .conftest import launch_as

    alpha, _ = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "learner", locale="ar")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert 'dir="rtl"' in page
    assert "لا يمكن الحصول عليها حاليًا" in page
    assert "اسأل مدرّسك" in page


def test_instructor_page_badge_unavailable(client, tenants, db):
    """Each badge of a disconnected course shows that it cannot be earned and what to
    ask the provider admin, and offers no backfill."""
    from .conftest import launch_as

    alpha, _ = tenants
    _second_badge(db, alpha)
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "instructor")

    response = client.get(f"/course/{alpha.course_id}")
    page = response.get_data(as_text=True)
    cards = page.split('<li class="card"')[1:3]

    assert response.status_code == 200
    assert len(cards) == 2
    for card in cards:
        assert "Cannot be earned at the moment" in card
        assert "learners cannot earn this badge now" in card
        assert "Badges already issued stay valid." in card
        assert "Ask the provider admin to connect the site again" in card
        assert "does not take over this badge" in card
        assert "Award to learners who already qualify" not in card
        assert "Edit" in card
    assert "no API credentials" not in page


def test_instructor_page_connected_unchanged(client, tenants, db):
    """A connected course's instructor page has no such notice and keeps the
    backfill button and the badge form."""
    from .conftest import launch_as

    alpha, beta = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, beta, "instructor")

    page = client.get(f"/course/{beta.course_id}").get_data(as_text=True)

    assert "Cannot be earned at the moment" not in page
    assert "Badges cannot be created at the moment" not in page
    assert "Award to learners who already qualify" in page
    assert f'action="/course/{beta.course_id}/achievements"' in page


def test_create_form_hidden_after_disconnect(client, tenants, db):
    """A disconnected course explains why no badge can be created, in place of the
    form, and keeps the edit form of a badge it already has."""
    from .conftest import launch_as

    alpha, _ = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    section = page.split('id="badge-form"', 1)[1].split("</section>", 1)[0]
    edit_link = page.split('<li class="card"', 1)[1].split('href="', 1)[1]
    edit = client.get(edit_link.split('"', 1)[0]).get_data(as_text=True)

    assert "Create a badge" in section
    assert 'class="status unavailable"' in section
    assert "Badges cannot be created at the moment" in section
    assert "disconnected this course's LMS site" in section
    assert "Ask the provider admin to connect the site again" in section
    assert "<form" not in section
    assert "Create badge" not in section
    assert "Preview who qualifies now" not in section
    assert "Save changes" in edit
    assert "Badges cannot be created at the moment" not in edit


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Impossible de créer des badges pour le moment"),
        ("es", "No se pueden crear insignias por ahora"),
        ("ar", "لا يمكن إنشاء شارات حاليًا"),
    ],
)
def test_create_form_hidden_translated(client, tenants, db, language, text):
    """The explanation in place of the badge form is translated."""
    from .conftest import launch_as

    alpha, _ = tenants
    _disconnect_alpha(db, alpha)
    launch_as(client, alpha, "instructor", locale=language)

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert text in page
    assert 'name="rule_kind"' not in page


def test_api_edit_on_disconnected_warns(backend):
    """PATCH of a badge on a disconnected connection saves the change and warns
    that the badge can no longer be earned."""
    app, ids, token = backend
    _add_usage(app, ids)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    badge_id = client.get("/api/v1/achievements", headers=headers).json["achievements"][
        0
    ]["id"]
    before = client.patch(
        f"/api/v1/achievements/{badge_id}", json={"name": "Before"}, headers=headers
    )
    _api(app, token, ids["own"])

    after = client.patch(
        f"/api/v1/achievements/{badge_id}", json={"name": "After"}, headers=headers
    )

    assert before.status_code == 200
    assert before.json["warnings"] == []
    assert after.status_code == 200
    assert after.json["name"] == "After"
    assert len(after.json["warnings"]) == 1
    assert "learners can no longer earn this badge" in after.json["warnings"][0]
    assert "does not take over this badge" in after.json["warnings"][0]


def test_confirmation_registration_only(backend):
    """A site with an LTI registration and no badge gets the registration advice,
    without the badge warning."""
    from lti_tool.lti.registrations import create_registration

    app, ids, _ = backend
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        own = session.scalar(
            select(LmsConnection).where(LmsConnection.public_id == ids["own"])
        )
        create_registration(
            session,
            bridge.vault,
            session.get(Provider, own.provider_id),
            issuer="https://lms-alpha.example.org",
            client_id="client-alpha",
            auth_login_url="https://lms-alpha.example.org/auth",
            key_set_url="https://lms-alpha.example.org/jwks",
            deployment_ids=("1",),
            lms_connection_id=own.id,
        )
        session.commit()
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)

    page = client.get(f"/admin/connections/{ids['own']}/disconnect").get_data(
        as_text=True
    )

    assert 'data-count="achievements">Badges on this site: <strong>0</strong>' in page
    assert "LTI registrations linked to this site: <strong>1</strong>" in page
    assert "What you can do" in page
    assert "Courses launched through these LTI registrations" in page
    assert "learners can no longer earn these badges" not in page
    assert "Tell the instructors of these courses" not in page


def test_disconnect_notice_counts_usage(backend):
    """After a disconnect the list's notice repeats the confirmation page's counts
    of the provider's own badges, courses and registrations."""
    app, ids, _ = backend
    _add_usage(app, ids)
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)
    link = f"/admin/connections/{ids['own']}/disconnect"

    posted = client.post(link, data=CSRF)
    after = client.get(posted.headers["Location"]).get_data(as_text=True)
    start = '<div class="notice" role="status" tabindex="-1" data-confirmation>'
    notice = after.split(start, 1)[1].split("</div>")[0]

    assert 'data-count="achievements">Badges on this site: <strong>3</strong>' in notice
    assert (
        'data-count="courses">Courses that award these badges: <strong>2</strong>'
        in notice
    )
    assert (
        'data-count="lti_registrations">LTI registrations linked to this site: '
        "<strong>1</strong>" in notice
    )
    assert "Learners can no longer earn these badges." in notice
    assert "Tell the instructors of these courses." in notice


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Ces éléments restent sur le site déconnecté"),
        ("es", "Esto sigue en el sitio desconectado"),
        ("ar", "تبقى هذه العناصر على الموقع المفصول"),
    ],
)
def test_disconnect_notice_translated(backend, language, text):
    """The counts after a disconnect are translated."""
    app, ids, _ = backend
    _add_usage(app, ids)
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL)

    client.post(f"/admin/connections/{ids['own']}/disconnect", data=CSRF)
    page = client.get(
        f"/admin/connect?disconnected={ids['own']}&lang={language}"
    ).get_data(as_text=True)

    assert text in page
    assert "<strong>3</strong>" in page
