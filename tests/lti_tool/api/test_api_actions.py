"""The provider API's admin actions: LMS reads, backfills, keys, deployments and
learners, each against the Moodle and Canvas stand-ins and behind the tenant wall."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement, Learner, SigningKey
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.accounts import AuditEvent
from lti_tool.api.tokens import create_api_token
from lti_tool.backfill import BackfillJob
from lti_tool.demo.peers.canvas import FakeCanvas
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration
from lti_tool.models import Deployment, Registration
from tests.support.seed import add_moodle_connection, add_provider

MOODLE_TOKEN = "moodle-ws-token"
CANVAS_COURSE_ID = 565
ISSUER = "https://lms.example.invalid"


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _seed(db, vault, slug: str) -> dict:
    """Add a provider with a connection, a badge, a registration and a learner."""
    provider = add_provider(db, slug=slug, name=slug.title())
    connection = add_moodle_connection(
        db, vault, provider, "http://127.0.0.1:9", "token"
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name=f"{slug} badge",
        description="d",
        criteria_narrative="c",
        award_rule=COURSE_COMPLETED_RULE,
    )
    db.add(achievement)
    registration = create_registration(
        db,
        vault,
        provider,
        issuer=ISSUER,
        client_id=f"{slug}-client",
        auth_login_url=f"{ISSUER}/auth",
        key_set_url=f"{ISSUER}/jwks",
    )
    db.add(
        Learner(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_user_id=f"{slug}-learner",
            name=f"{slug} learner",
        )
    )
    _, token = create_api_token(
        db, provider_id=provider.id, name="t", created_by="test"
    )
    db.commit()
    return {
        "token": token,
        "provider_id": provider.id,
        "achievement": achievement.public_id,
        "connection": connection.public_id,
        "client_id": registration.client_id,
        "learner": f"{slug}-learner",
    }


@pytest.fixture
def tenants(app, db):
    vault = app.extensions["hpass"].vault
    return _seed(db, vault, "alpha"), _seed(db, vault, "beta")


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    stand_in.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID, send_event=False)
    yield stand_in
    server.stop()


@pytest.fixture
def canvas():
    fake = FakeCanvas()
    fake.add_course(CANVAS_COURSE_ID)
    fake.add_students(CANVAS_COURSE_ID, [123, 124])
    fake.complete(CANVAS_COURSE_ID, 123, datetime(2026, 3, 1, tzinfo=timezone.utc))
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        yield fake


def _add_badge(client, token: str, connection: str, course_id: str) -> str:
    response = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": connection,
            "course_id": course_id,
            "name": "n",
            "description": "d",
            "criteria": "c",
            "award_rule": COURSE_COMPLETED_RULE,
        },
        headers=_auth(token),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def _connect_moodle(client, token: str, moodle) -> dict:
    response = client.post(
        "/api/v1/lms-connections/moodle",
        json={"url": moodle.site_url, "token": MOODLE_TOKEN},
        headers=_auth(token),
    )
    assert response.status_code == 201, response.json
    return response.json


def _connect_canvas(client, token: str, canvas) -> dict:
    response = client.post(
        "/api/v1/lms-connections/canvas",
        json={
            "url": canvas.url,
            "token": canvas.issue_token(),
            "course_id": str(CANVAS_COURSE_ID),
        },
        headers=_auth(token),
    )
    assert response.status_code == 201, response.json
    return response.json


def _audit_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(AuditEvent))


# --- LMS connections ------------------------------------------------------------


def test_connect_moodle(client, tenants, moodle):
    """Connecting Moodle returns the webhook URL and secret and the passed test."""
    alpha, _ = tenants
    connected = _connect_moodle(client, alpha["token"], moodle)

    assert connected["connection"]["kind"] == "moodle"
    assert connected["webhook_secret"]
    assert connected["test"]["ok"] is True


def test_connect_moodle_rejected_token(client, db, tenants, moodle):
    """A token Moodle rejects gets a 502 that names the body field, and nothing is
    saved."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/lms-connections/moodle",
        json={"url": moodle.site_url, "token": "wrong-token"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert "rejected the web service token" in response.json["message"]
    assert 'send it as "token"' in response.json["message"]
    assert "--token" not in response.json["message"]
    assert "Stop polling" not in response.json["message"]
    listed = client.get("/api/v1/lms-connections", headers=_auth(alpha["token"]))
    assert len(listed.json["connections"]) == 1


def test_connect_moodle_unreachable(client, db, tenants):
    """An LMS that does not respond gets a 502 naming the URL, and nothing is saved."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/lms-connections/moodle",
        # The seeded connection uses the site root, so this path is another site.
        json={"url": "http://127.0.0.1:9/moodle", "token": "t"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    assert "127.0.0.1:9" in response.json["message"]
    listed = client.get("/api/v1/lms-connections", headers=_auth(alpha["token"]))
    assert len(listed.json["connections"]) == 1


@pytest.mark.parametrize(
    "body, code",
    [
        ({"url": "ftp://moodle.example.org", "token": "t"}, "invalid_url"),
        ({"url": "http://127.0.0.1:9", "token": "two words"}, "invalid_token"),
        ({"url": "http://127.0.0.1:9"}, "invalid_field"),
        ({"url": 5, "token": "t"}, "invalid_field"),
    ],
)
def test_connect_moodle_bad_input(client, tenants, body, code):
    """Bad connect input gets a 400 with a code naming the problem."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/lms-connections/moodle", json=body, headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == code


def test_connect_canvas_and_test(client, tenants, canvas):
    """Connecting Canvas tests its scopes, and a later test of it passes too."""
    alpha, _ = tenants
    connected = _connect_canvas(client, alpha["token"], canvas)
    connection = connected["connection"]["id"]

    tested = client.post(
        f"/api/v1/lms-connections/{connection}/test",
        json={"course_id": str(CANVAS_COURSE_ID)},
        headers=_auth(alpha["token"]),
    )

    assert "?token=" in connected["webhook_url"]
    assert tested.status_code == 200
    assert tested.json["ok"] is True


def test_connect_canvas_half_oauth(client, tenants, canvas):
    """A client id without its secret and refresh token gets a 400."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/lms-connections/canvas",
        json={"url": canvas.url, "token": "t", "course_id": "565", "client_id": "1"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "incomplete_oauth"


def test_lms_test_without_body(client, tenants):
    """A test of an unreachable Moodle reports the failure in a 200 report."""
    alpha, _ = tenants
    response = client.post(
        f"/api/v1/lms-connections/{alpha['connection']}/test",
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 200
    assert response.json["ok"] is False


# --- Preview, explain, backfill ----------------------------------------------------


def test_connect_same_site_twice(client, tenants, moodle):
    """A provider cannot connect one Moodle site twice; another provider can."""
    alpha, beta = tenants
    _connect_moodle(client, alpha["token"], moodle)

    again = client.post(
        "/api/v1/lms-connections/moodle",
        json={"url": moodle.site_url + "/", "token": MOODLE_TOKEN},
        headers=_auth(alpha["token"]),
    )

    assert again.status_code == 409
    assert again.json["error"] == "connection_exists"
    assert "disconnect it before connecting" in again.json["message"]
    _connect_moodle(client, beta["token"], moodle)


def test_connect_upper_case_scheme(client, tenants, moodle):
    """An address typed with HTTP:// connects, and is stored with http://."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/lms-connections/moodle",
        json={
            "url": moodle.site_url.replace("http://", "HTTP://"),
            "token": MOODLE_TOKEN,
        },
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 201, response.json
    assert response.json["connection"]["url"] == moodle.site_url


def test_connect_same_canvas_twice(client, tenants, canvas):
    """A provider cannot connect one Canvas site twice."""
    alpha, _ = tenants
    _connect_canvas(client, alpha["token"], canvas)

    again = client.post(
        "/api/v1/lms-connections/canvas",
        json={
            "url": canvas.url + "/",
            "token": canvas.issue_token(),
            "course_id": str(CANVAS_COURSE_ID),
        },
        headers=_auth(alpha["token"]),
    )

    assert again.status_code == 409
    assert again.json["error"] == "connection_exists"


def test_preview_moodle(client, tenants, moodle):
    """A Moodle preview lists the learner who completed the course."""
    alpha, _ = tenants
    connection = _connect_moodle(client, alpha["token"], moodle)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(DEMO_COURSE_ID))

    response = client.get(
        f"/api/v1/achievements/{badge}/preview", headers=_auth(alpha["token"])
    )

    assert response.status_code == 200, response.json
    assert response.json["complete"] is True
    earning = [row["lms_user_id"] for row in response.json["learners"] if row["met"]]
    assert earning == [str(DEMO_LEARNER_ID)]
    assert response.json["would_earn"] == 1
    assert response.json["already_hold"] == 0


def test_preview_after_backfill_counts_holders(app, client, db, tenants, moodle):
    """A learner who has the badge is counted apart, not as one who would earn it."""
    from lti_tool.backfill import run_job

    alpha, _ = tenants
    connection = _connect_moodle(client, alpha["token"], moodle)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(DEMO_COURSE_ID))
    started = client.post(
        f"/api/v1/achievements/{badge}/backfills", headers=_auth(alpha["token"])
    )
    job = db.scalar(
        select(BackfillJob).where(BackfillJob.public_id == started.json["id"])
    )
    assert run_job(app.extensions["hpass"], job.id) == "done"

    response = client.get(
        f"/api/v1/achievements/{badge}/preview", headers=_auth(alpha["token"])
    )

    assert response.status_code == 200, response.json
    holder = next(
        row
        for row in response.json["learners"]
        if row["lms_user_id"] == str(DEMO_LEARNER_ID)
    )
    assert holder["met"] is True
    assert holder["holds"] is True
    assert response.json["would_earn"] == 0
    assert response.json["already_hold"] == 1


def test_preview_canvas(client, tenants, canvas):
    """A Canvas preview reads the enrolled students and their progress."""
    alpha, _ = tenants
    connection = _connect_canvas(client, alpha["token"], canvas)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(CANVAS_COURSE_ID))

    response = client.get(
        f"/api/v1/achievements/{badge}/preview", headers=_auth(alpha["token"])
    )

    assert response.status_code == 200, response.json
    rows = {row["lms_user_id"]: row["met"] for row in response.json["learners"]}
    assert rows == {"123": True, "124": False}
    assert response.json["would_earn"] == 1


def test_preview_max_learners(client, tenants, canvas):
    """A preview cut at max_learners reports the list as incomplete."""
    alpha, _ = tenants
    connection = _connect_canvas(client, alpha["token"], canvas)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(CANVAS_COURSE_ID))

    response = client.get(
        f"/api/v1/achievements/{badge}/preview?max_learners=1",
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 200
    assert len(response.json["learners"]) == 1
    assert response.json["complete"] is False


@pytest.mark.parametrize("value", ["0", "501", "x", "²"])
def test_preview_bad_max_learners(client, tenants, value):
    """An out-of-range max_learners gets a 400 before any LMS call."""
    alpha, _ = tenants
    response = client.get(
        f"/api/v1/achievements/{alpha['achievement']}/preview",
        query_string={"max_learners": value},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_max_learners"


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("preview", "101"),
        ("explain?learner=7", "'7'"),
    ],
)
def test_lms_down_names_test_route(client, tenants, path, named):
    """A preview or an explanation against an LMS that does not respond gets a
    502 naming the course or learner and the route that tests the connection."""
    alpha, _ = tenants
    response = client.get(
        f"/api/v1/achievements/{alpha['achievement']}/{path}",
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 502
    assert response.json["error"] == "lms_unreachable"
    message = response.json["message"]
    assert named in message
    assert f"POST /api/v1/lms-connections/{alpha['connection']}/test" in message
    assert "hpass-bridge" not in message


def test_explain_canvas(client, tenants, canvas):
    """Explain reports what a Canvas learner still misses."""
    alpha, _ = tenants
    connection = _connect_canvas(client, alpha["token"], canvas)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(CANVAS_COURSE_ID))

    met = client.get(
        f"/api/v1/achievements/{badge}/explain?learner=123",
        headers=_auth(alpha["token"]),
    )
    missing = client.get(
        f"/api/v1/achievements/{badge}/explain?learner=124",
        headers=_auth(alpha["token"]),
    )

    assert met.json["rule_met"] is True
    assert met.json["holds_award"] is None
    assert missing.json["rule_met"] is False
    assert missing.json["missing"]


def test_explain_needs_learner(client, tenants):
    """Explain without a learner gets a 400 naming the parameter."""
    alpha, _ = tenants
    response = client.get(
        f"/api/v1/achievements/{alpha['achievement']}/explain",
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_learner"
    assert "learner" in response.json["message"]


def test_backfill_start_show_cancel(client, db, tenants):
    """A backfill is queued for the workers, shown, listed and cancelled."""
    alpha, _ = tenants
    started = client.post(
        f"/api/v1/achievements/{alpha['achievement']}/backfills",
        headers=_auth(alpha["token"]),
    )
    job_id = started.json["id"]
    shown = client.get(f"/api/v1/backfills/{job_id}", headers=_auth(alpha["token"]))
    listed = client.get("/api/v1/backfills", headers=_auth(alpha["token"]))
    cancelled = client.post(
        f"/api/v1/backfills/{job_id}/cancel", headers=_auth(alpha["token"])
    )

    assert started.status_code == 202
    assert started.json["status"] == "pending"
    assert started.json["achievements"] == [alpha["achievement"]]
    assert shown.json["id"] == job_id
    assert [row["id"] for row in listed.json["backfills"]] == [job_id]
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"


def test_backfill_start_twice_joins(client, db, tenants):
    """A second start while the badge's backfill is pending returns that job."""
    alpha, _ = tenants
    url = f"/api/v1/achievements/{alpha['achievement']}/backfills"

    first = client.post(url, headers=_auth(alpha["token"]))
    second = client.post(url, headers=_auth(alpha["token"]))

    assert first.status_code == 202
    assert first.json["joined"] is False
    assert second.status_code == 200
    assert second.json["joined"] is True
    assert second.json["id"] == first.json["id"]
    assert db.scalar(select(func.count(BackfillJob.id))) == 1


def test_backfill_canvas_runs(app, client, db, tenants, canvas):
    """A Canvas backfill job issues the badge to the student who completed."""
    from lti_tool.backfill import run_job

    alpha, _ = tenants
    connection = _connect_canvas(client, alpha["token"], canvas)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(CANVAS_COURSE_ID))
    started = client.post(
        f"/api/v1/achievements/{badge}/backfills", headers=_auth(alpha["token"])
    )
    job = db.scalar(
        select(BackfillJob).where(BackfillJob.public_id == started.json["id"])
    )

    status = run_job(app.extensions["hpass"], job.id)

    shown = client.get(
        f"/api/v1/backfills/{started.json['id']}", headers=_auth(alpha["token"])
    )
    assert status == "done"
    assert shown.json["learners_seen"] == 2
    assert shown.json["issued"] == 1
    assert shown.json["not_met"] == 1


# --- Deployments, keys, learners ----------------------------------------------------


def test_deployment_approve(client, db, tenants):
    """Approving a deployment makes it active and records who approved it."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/deployments/approve",
        json={"issuer": ISSUER, "client_id": alpha["client_id"], "deployment_id": "7"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 200
    assert response.json["status"] == "active"
    deployment = db.scalar(select(Deployment).where(Deployment.deployment_id == "7"))
    assert deployment.status == "active"
    actions = {event.action for event in db.scalars(select(AuditEvent))}
    assert "deployment.approved" in actions


def test_keys_list_and_rotate(client, db, tenants):
    """The key list shows only the provider's keys, and rotation adds a new key."""
    alpha, _ = tenants
    before = client.get("/api/v1/keys", headers=_auth(alpha["token"]))
    rotated = client.post(
        "/api/v1/keys/rotate", json={"kind": "lti"}, headers=_auth(alpha["token"])
    )
    after = client.get("/api/v1/keys?kind=lti", headers=_auth(alpha["token"]))

    assert {row["provider"] for row in before.json["keys"]} == {"alpha"}
    assert all(row["kind"] != "encryption" for row in before.json["keys"])
    assert rotated.status_code == 200
    assert rotated.json["new_keys"][0] in {row["id"] for row in after.json["keys"]}


@pytest.mark.parametrize("kind", ["encryption", "rsa"])
def test_keys_rotate_bad_kind(client, tenants, kind):
    """The encryption key and unknown kinds cannot be rotated through the API."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/keys/rotate", json={"kind": kind}, headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_kind"


def test_learner_export_and_forget(client, db, tenants):
    """Export returns the learner's data; forget erases the name."""
    alpha, _ = tenants
    learner = alpha["learner"]
    exported = client.get(
        f"/api/v1/learners/{learner}/export", headers=_auth(alpha["token"])
    )
    forgotten = client.post(
        f"/api/v1/learners/{learner}/forget", headers=_auth(alpha["token"])
    )

    assert exported.json["learners"][0]["name"] == "alpha learner"
    assert forgotten.status_code == 200
    db.expire_all()
    row = db.scalar(select(Learner).where(Learner.lms_user_id == learner))
    assert row.name is None


# --- Tenant wall -------------------------------------------------------------------


def _beta_state(db, beta) -> dict:
    """Return what a foreign request could change about provider beta."""
    db.expire_all()
    pid = beta["provider_id"]
    return {
        "jobs": list(
            db.scalars(select(BackfillJob.status).where(BackfillJob.provider_id == pid))
        ),
        "deployments": list(
            db.scalars(
                select(Deployment.deployment_id).where(Deployment.provider_id == pid)
            )
        ),
        "tool_keys": list(
            db.scalars(
                select(Registration.tool_key_id).where(Registration.provider_id == pid)
            )
        ),
        "signing_keys": list(
            db.scalars(select(SigningKey.key_name).where(SigningKey.provider_id == pid))
        ),
        "learners": list(
            db.scalars(select(Learner.name).where(Learner.provider_id == pid))
        ),
        "audit": list(
            db.scalars(select(AuditEvent.action).where(AuditEvent.provider_id == pid))
        ),
    }


def test_foreign_ids_are_404(client, db, tenants):
    """Every action route returns 404 for another provider's ids and writes nothing."""
    alpha, beta = tenants
    job = client.post(
        f"/api/v1/achievements/{beta['achievement']}/backfills",
        headers=_auth(beta["token"]),
    ).json["id"]
    before = _beta_state(db, beta)
    achievement, learner = beta["achievement"], beta["learner"]
    requests = [
        ("get", f"/api/v1/achievements/{achievement}/preview", None),
        ("get", f"/api/v1/achievements/{achievement}/explain?learner=1", None),
        ("post", f"/api/v1/achievements/{achievement}/backfills", None),
        ("get", f"/api/v1/backfills/{job}", None),
        ("post", f"/api/v1/backfills/{job}/cancel", None),
        ("post", f"/api/v1/lms-connections/{beta['connection']}/test", None),
        (
            "post",
            "/api/v1/deployments/approve",
            {"issuer": ISSUER, "client_id": beta["client_id"], "deployment_id": "9"},
        ),
        ("get", f"/api/v1/learners/{learner}/export", None),
        ("post", f"/api/v1/learners/{learner}/forget", None),
    ]

    for method, path, body in requests:
        response = getattr(client, method)(
            path, json=body, headers=_auth(alpha["token"])
        )
        assert response.status_code == 404, (path, response.json)
        assert response.json["error"].endswith("_not_found"), path
        assert "hpass-bridge" not in response.json["message"], path

    assert _beta_state(db, beta) == before


def test_foreign_keys_untouched(client, db, tenants):
    """Listing and rotating keys reach only the token's provider."""
    alpha, beta = tenants
    before = _beta_state(db, beta)

    listed = client.get("/api/v1/keys", headers=_auth(alpha["token"]))
    for kind in ("lti", "signing"):
        rotated = client.post(
            "/api/v1/keys/rotate", json={"kind": kind}, headers=_auth(alpha["token"])
        )
        assert rotated.status_code == 200

    assert "beta" not in {row["provider"] for row in listed.json["keys"]}
    after = _beta_state(db, beta)
    assert after["tool_keys"] == before["tool_keys"]
    assert after["signing_keys"] == before["signing_keys"]


def test_foreign_backfills_not_listed(client, tenants):
    """The backfill list shows only the token's provider's jobs."""
    alpha, beta = tenants
    client.post(
        f"/api/v1/achievements/{beta['achievement']}/backfills",
        headers=_auth(beta["token"]),
    )

    listed = client.get("/api/v1/backfills", headers=_auth(alpha["token"]))

    assert listed.json["backfills"] == []


# --- Audit of reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, action",
    [
        ("/api/v1/provider", "provider.shown"),
        ("/api/v1/achievements", "achievement.listed"),
        ("/api/v1/awards", "award.listed"),
        ("/api/v1/deliveries", "delivery.listed"),
        ("/api/v1/facts", "fact.listed"),
        ("/api/v1/lms-connections", "lms_connection.listed"),
        ("/api/v1/backfills", "backfill.listed"),
        ("/api/v1/keys", "key.listed"),
    ],
)
def test_reads_are_audited(client, db, tenants, path, action):
    """Each API read is recorded with the token as actor and the provider's id."""
    alpha, _ = tenants
    response = client.get(path, headers=_auth(alpha["token"]))

    assert response.status_code == 200
    db.expire_all()
    events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))
    assert len(events) == 1
    assert events[0].actor.startswith("api-token:")
    assert events[0].provider_id == alpha["provider_id"]


def test_failed_read_not_audited(client, db, tenants):
    """A read that returns 404 records no read event."""
    alpha, _ = tenants
    before = _audit_count(db)

    response = client.get("/api/v1/achievements/nope", headers=_auth(alpha["token"]))

    assert response.status_code == 404
    assert _audit_count(db) == before


def test_retry_huge_delivery_id(client, tenants):
    """A delivery id beyond 64 bits is an unknown delivery, not a server error."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/deliveries/9223372036854775808/retry", headers=_auth(alpha["token"])
    )

    assert response.status_code == 404
    assert response.json["error"] == "delivery_not_found"


def test_retry_long_delivery_id(client, tenants):
    """A delivery id of more digits than int() reads is an unknown delivery."""
    alpha, _ = tenants
    response = client.post(
        f"/api/v1/deliveries/{'9' * 5000}/retry", headers=_auth(alpha["token"])
    )

    assert response.status_code == 404
    assert response.json["error"] == "delivery_not_found"
    assert len(response.json["message"]) < 200


def test_canvas_ids_must_be_digits(client, tenants, canvas):
    """Canvas ids that would go into a URL path must be digits, else 400."""
    alpha, _ = tenants
    connection = _connect_canvas(client, alpha["token"], canvas)["connection"]["id"]
    badge = _add_badge(client, alpha["token"], connection, str(CANVAS_COURSE_ID))

    explained = client.get(
        f"/api/v1/achievements/{badge}/explain?learner=../1",
        headers=_auth(alpha["token"]),
    )
    added = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": connection,
            "course_id": "565/../1",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "award_rule": COURSE_COMPLETED_RULE,
        },
        headers=_auth(alpha["token"]),
    )
    tested = client.post(
        f"/api/v1/lms-connections/{connection}/test",
        json={"course_id": "1/2"},
        headers=_auth(alpha["token"]),
    )

    assert explained.status_code == 400
    assert explained.json["error"] == "invalid_canvas_id"
    assert added.status_code == 400
    assert added.json["error"] == "invalid_canvas_id"
    assert tested.status_code == 400
    assert tested.json["error"] == "invalid_course"
