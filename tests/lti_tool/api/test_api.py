"""The provider JSON API: token checks, tenant walls, and its OpenAPI document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from badge_engine.models import Achievement
from badge_engine.rules import COURSE_COMPLETED_RULE
from lti_tool.api.tokens import create_api_token
from lti_tool.demo.peers.serving import serve_in_thread
from tests.support.seed import add_moodle_connection, add_provider


def _seed(db, vault, slug: str):
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
    _, token = create_api_token(
        db, provider_id=provider.id, name="t", created_by="test"
    )
    db.commit()
    return {
        "token": token,
        "achievement": achievement.public_id,
        "connection": connection.public_id,
    }


@pytest.fixture
def tenants(app, db):
    vault = app.extensions["hpass"].vault
    return _seed(db, vault, "alpha"), _seed(db, vault, "beta")


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_missing_token_is_401(client):
    """A request without a token gets a JSON 401 explaining how to send one."""
    response = client.get("/api/v1/provider")

    assert response.status_code == 401
    assert response.json["error"] == "token_missing"
    assert "Bearer" in response.json["message"]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("{token}", "lacks the word Bearer"),
        ("Token {token}", "uses the 'Token' scheme"),
        ("Bearer ", "no token after the word Bearer"),
    ],
    ids=["bare-token", "other-scheme", "no-token"],
)
def test_authorization_without_bearer_explained(client, tenants, header, words):
    """A header without `Bearer <token>` is explained, without echoing the token."""
    token = tenants[0]["token"]

    response = client.get(
        "/api/v1/provider", headers={"Authorization": header.format(token=token)}
    )

    assert response.status_code == 401
    assert response.json["error"] == "token_missing"
    assert words in response.json["message"]
    assert "`Authorization: Bearer <token>`" in response.json["message"]
    assert token not in response.json["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"name": "x",}', ("not valid JSON: ", "at line 1 column 14 (character 13)")),
        ("[1, 2]", ("must be a JSON object, got a JSON array",)),
        (b"\xff\xfe\x00", ("not valid JSON", "not UTF-8")),
    ],
    ids=["trailing-comma", "array", "not-utf8"],
)
def test_malformed_json_body_explained(client, tenants, body, words):
    """A JSON body that does not parse is reported as such, with the position."""
    alpha, _ = tenants

    response = client.patch(
        f"/api/v1/achievements/{alpha['achievement']}",
        data=body,
        headers={**_auth(alpha["token"]), "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_body"
    for fragment in words:
        assert fragment in response.json["message"]
    assert "Content-Type" not in response.json["message"]


def test_body_without_json_type_explained(client, tenants):
    """A body without Content-Type: application/json gets an error naming it."""
    alpha, _ = tenants

    response = client.patch(
        f"/api/v1/achievements/{alpha['achievement']}",
        data='{"name": "x"}',
        headers={**_auth(alpha["token"]), "Content-Type": "text/plain"},
    )

    assert response.status_code == 400
    assert "Content-Type: application/json" in response.json["message"]


def test_revoked_token_is_401(client, db, tenants):
    """A revoked token no longer works."""
    from sqlalchemy import update

    from badge_engine.db import utcnow
    from lti_tool.api.tokens import ApiToken

    db.execute(update(ApiToken).values(revoked_at=utcnow()))
    db.commit()

    response = client.get("/api/v1/provider", headers=_auth(tenants[0]["token"]))
    assert response.status_code == 401
    assert response.json["error"] == "token_invalid"


def test_token_reads_own_provider(client, tenants):
    """A token reads its provider and only that provider's rows."""
    alpha, beta = tenants
    provider = client.get("/api/v1/provider", headers=_auth(alpha["token"]))
    assert provider.json["slug"] == "alpha"

    listed = client.get("/api/v1/achievements", headers=_auth(alpha["token"]))
    assert [row["id"] for row in listed.json["achievements"]] == [alpha["achievement"]]
    connections = client.get("/api/v1/lms-connections", headers=_auth(alpha["token"]))
    assert [row["id"] for row in connections.json["connections"]] == [
        alpha["connection"]
    ]


def test_token_cannot_read_other_provider(client, tenants):
    """Another provider's achievement returns 404 as if it did not exist."""
    alpha, beta = tenants
    response = client.get(
        f"/api/v1/achievements/{beta['achievement']}", headers=_auth(alpha["token"])
    )

    assert response.status_code == 404
    assert response.json["error"] == "achievement_not_found"


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("get", "/api/v1/achievements/{achievement}", "GET /api/v1/achievements"),
        ("get", "/api/v1/awards/{unknown}", "GET /api/v1/awards"),
        ("post", "/api/v1/awards/{unknown}/revoke", "GET /api/v1/awards"),
        ("post", "/api/v1/deliveries/987654/retry", "GET /api/v1/deliveries"),
    ],
)
def test_not_found_names_api_route(client, tenants, method, path, route):
    """An unknown or foreign id's 404 points to the API route that lists the
    valid ids, not to a command on the bridge's host."""
    alpha, beta = tenants
    path = path.format(
        achievement=beta["achievement"], unknown="0b0e3c52-8f67-4c3f-9a55-5b1d2f0e7a11"
    )
    body = {"reason": "issued by mistake"} if method == "post" else None
    response = getattr(client, method)(path, json=body, headers=_auth(alpha["token"]))

    assert response.status_code == 404
    assert route in response.json["message"]
    assert "hpass-bridge" not in response.json["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": ""}, "name must be 1 to 200 characters"),
        ({"award_rule": "{not json"}, "award_rule is not valid JSON"),
        (
            {},
            "nothing to change; give name, description, criteria, alignments or "
            "award_rule",
        ),
    ],
)
def test_edit_errors_name_body_fields(client, db, tenants, body, words):
    """A rejected change names the body field, not a command-line option, and
    changes nothing."""
    alpha, _ = tenants
    response = client.patch(
        f"/api/v1/achievements/{alpha['achievement']}",
        json=body,
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert words in response.json["message"]
    assert "--" not in response.json["message"]
    db.expire_all()
    assert {row.name for row in db.query(Achievement)} == {"alpha badge", "beta badge"}


@pytest.mark.parametrize("method", ["post", "patch"])
def test_unknown_field_rejected(client, db, tenants, method):
    """A misspelt field gets 400 naming it and the route's fields, rather than
    being ignored while the rest of the body is applied."""
    alpha, _ = tenants
    if method == "patch":
        path, body = f"/api/v1/achievements/{alpha['achievement']}", {}
    else:
        path, body = "/api/v1/achievements", _achievement_body(alpha["connection"])
    body = {**body, "name": "Renamed", "nmae": "typo"}
    response = getattr(client, method)(path, json=body, headers=_auth(alpha["token"]))

    assert response.status_code == 400
    assert response.json["error"] == "unknown_field"
    assert "'nmae'" in response.json["message"]
    assert "award_rule" in response.json["message"]
    db.expire_all()
    assert {row.name for row in db.query(Achievement)} == {"alpha badge", "beta badge"}


def test_openapi_lists_the_fields_routes_take(client, tenants):
    """The OpenAPI bodies of the achievement routes list exactly the fields the
    routes take, and allow no others."""
    from lti_tool.api import views

    schemas = client.get(
        "/api/v1/openapi.json", headers=_auth(tenants[0]["token"])
    ).json["components"]["schemas"]
    for name, fields in [
        ("NewAchievement", views._ACHIEVEMENT_ADD_FIELDS),
        ("AchievementChange", views._ACHIEVEMENT_EDIT_FIELDS),
    ]:
        assert set(schemas[name]["properties"]) == set(fields), name
        assert schemas[name]["additionalProperties"] is False, name


def test_token_cannot_change_other_provider(client, db, tenants):
    """Editing or attaching to another provider's rows fails and changes nothing."""
    alpha, beta = tenants
    edited = client.patch(
        f"/api/v1/achievements/{beta['achievement']}",
        json={"name": "taken over"},
        headers=_auth(alpha["token"]),
    )
    assert edited.status_code == 404

    added = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": beta["connection"],
            "course_id": "1",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "award_rule": COURSE_COMPLETED_RULE,
        },
        headers=_auth(alpha["token"]),
    )
    assert added.status_code == 404
    names = {row.name for row in db.query(Achievement)}
    assert names == {"alpha badge", "beta badge"}


def test_add_achievement_bad_rule(client, tenants):
    """An invalid award rule gets a 400 naming the rule problem."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": alpha["connection"],
            "course_id": "1",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "award_rule": {"version": 1, "rule": {"kind": "nope"}},
        },
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_rule"


def _achievement_body(connection: str, **fields) -> dict:
    """Return a new achievement for the tenants' LMS, which listens nowhere, so the
    body skips the LMS check."""
    body = {
        "lms_connection": connection,
        "course_id": "1",
        "name": "n",
        "description": "d",
        "criteria": "c",
        "award_rule": COURSE_COMPLETED_RULE,
        "skip_lms_check": True,
    }
    body.update(fields)
    return body


@pytest.mark.parametrize(
    "field, value, character",
    [
        ("name", "First aid \u202esisab", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("name", "\u202aFirst aid", "U+202A LEFT-TO-RIGHT EMBEDDING"),
        ("description", "Knows \u2066first aid\u2069.", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("criteria", "Complete \u2068it", "U+2068 FIRST STRONG ISOLATE"),
    ],
)
def test_add_achievement_bidi_control(client, db, tenants, field, value, character):
    """A direction control in a badge text gets a 400 naming the character."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json=_achievement_body(alpha["connection"], **{field: value}),
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_text"
    assert (
        f"{field} contains the direction control character {character}"
        in (response.json["message"])
    )
    assert "delete it" in response.json["message"]
    assert db.query(Achievement).count() == 2


def test_add_achievement_invisible_name(client, db, tenants):
    """A name of characters that show nothing gets a 400, as on the page."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json=_achievement_body(alpha["connection"], name="\u200b\u200f"),
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_text"
    assert "enter visible text" in response.json["message"]


@pytest.mark.parametrize(
    "name", ["إسعافات أولية", "עזרה ראשונה", "First aid \u200f(أولية)\u200e"]
)
def test_add_achievement_right_to_left(client, tenants, name):
    """Arabic and Hebrew names and the marks U+200E and U+200F are stored as sent."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json=_achievement_body(alpha["connection"], name=name),
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 201, response.json
    assert response.json["name"] == name


def test_edit_achievement_bidi_control(client, db, tenants):
    """Renaming a badge to a text with U+202E is rejected and keeps the old name."""
    alpha, _ = tenants
    response = client.patch(
        f"/api/v1/achievements/{alpha['achievement']}",
        json={"name": "alpha \u202eegdab"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert "U+202E RIGHT-TO-LEFT OVERRIDE at position 7" in response.json["message"]
    db.expire_all()
    names = {row.name for row in db.query(Achievement)}
    assert names == {"alpha badge", "beta badge"}


SKILL = {"targetName": "First aid", "targetUrl": "https://skills.example.org/fa"}


def test_achievement_alignments_round_trip(client, tenants):
    """Alignments sent when adding come back, and a PATCH with [] removes them."""
    alpha, _ = tenants
    created = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": alpha["connection"],
            "course_id": "7",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "alignments": [SKILL],
            "award_rule": COURSE_COMPLETED_RULE,
            "skip_lms_check": True,
        },
        headers=_auth(alpha["token"]),
    )
    cleared = client.patch(
        f"/api/v1/achievements/{created.json['id']}",
        json={"alignments": []},
        headers=_auth(alpha["token"]),
    )

    assert created.status_code == 201, created.json
    assert created.json["alignments"] == [SKILL]
    assert cleared.status_code == 200, cleared.json
    assert cleared.json["alignments"] == []


@pytest.mark.parametrize(
    "alignments",
    [{"targetName": "x"}, [{"targetName": "x", "targetUrl": "ftp://x.example.org"}]],
    ids=["not-a-list", "bad-url"],
)
def test_add_achievement_bad_alignments(client, tenants, alignments):
    """Malformed alignments get a 400 naming the problem, and nothing is created."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": alpha["connection"],
            "course_id": "7",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "alignments": alignments,
            "award_rule": COURSE_COMPLETED_RULE,
        },
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_alignments"


def test_add_achievement_is_audited(client, db, tenants):
    """An API change is recorded in the audit log with the token as actor."""
    from lti_tool.accounts import AuditEvent

    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json={
            "lms_connection": alpha["connection"],
            "course_id": "7",
            "name": "n",
            "description": "d",
            "criteria": "c",
            "award_rule": COURSE_COMPLETED_RULE,
            "skip_lms_check": True,
        },
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 201
    actors = [event.actor for event in db.query(AuditEvent)]
    assert any(actor.startswith("api-token:") for actor in actors)


def test_openapi_paths_match_routes(app, client):
    """The served document describes exactly the blueprint's routes."""
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")

    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    described = {
        (path, method) for path, item in document["paths"].items() for method in item
    }
    assert described == routes


# Connecting an LMS makes the bridge call the URL in the request body, and generated
# bodies name arbitrary hosts, so those two operations are tested with the stand-ins
# in test_api_actions.py instead.
OUTBOUND_TO_GIVEN_URL = {"connectMoodle", "connectCanvas"}


def test_schemathesis_finds_no_server_error(app, tenants):
    """Generated requests against the live API never get an unplanned 5xx.

    The tenants' LMS listens nowhere (127.0.0.1:9), so the routes that read it
    return their documented 502 `lms_unreachable` (or `lms_timeout`), which is not
    a server error.
    """
    alpha, _ = tenants
    with serve_in_thread(app) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.definition.raw.get("operationId") in OUTBOUND_TO_GIVEN_URL:
                continue

            @settings(
                max_examples=25, deadline=None, suppress_health_check=list(HealthCheck)
            )
            @given(case=operation.as_strategy())
            def check(case):
                response = case.call(base_url=server.url, headers=_auth(alpha["token"]))
                planned = response.status_code == 502 and response.json().get(
                    "error"
                ) in ("lms_unreachable", "lms_timeout")
                assert response.status_code < 500 or planned, (
                    case.method,
                    case.formatted_path,
                    response.text[:200],
                )

            check()


@pytest.mark.parametrize("delivery_id", ["abc", "-1", "4.5", "٣"])
def test_retry_delivery_id_not_number(client, tenants, delivery_id):
    """A delivery id that is not a decimal number is rejected with a 400 naming the problem."""
    alpha, _ = tenants
    response = client.post(
        f"/api/v1/deliveries/{delivery_id}/retry", headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_delivery_id"
    assert "not a number" in response.json["message"]
    assert "no delivery" not in response.json["message"]


def test_connections_show_last_contact(client, db, tenants):
    """The connection list returns the last contact of the caller's connections only."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from connectors.contacts import record_failure, record_success
    from connectors.models import ContactSource, LmsConnection

    alpha, beta = tenants
    failed_at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    connections = {
        row.public_id: row for row in db.scalars(select(LmsConnection)).all()
    }
    record_failure(
        db,
        connections[alpha["connection"]],
        ContactSource.POLL,
        "Could not connect to Moodle",
        at=failed_at,
    )
    record_success(db, connections[beta["connection"]], ContactSource.TEST)
    db.commit()

    response = client.get("/api/v1/lms-connections", headers=_auth(alpha["token"]))

    [row] = response.json["connections"]
    assert row["last_contact"] == "failed"
    assert row["last_failure_at"] == failed_at.isoformat()
    assert row["last_failure_source"] == "poll"
    assert row["last_failure_detail"] == "Could not connect to Moodle"
    assert row["last_success_at"] is None
    assert row["last_event_at"] is None


def test_add_achievement_same_name_conflict(client, db, tenants):
    """A name the course's badge has, in other case and spacing, gets a 409.

    The error names that badge and the route that changes it, and nothing is saved.
    """
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json=_achievement_body(
            alpha["connection"], course_id="101", name="  ALPHA   badge"
        ),
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 409
    assert response.json["error"] == "achievement_exists"
    assert response.json["achievement"] == alpha["achievement"]
    assert (
        f"PATCH /api/v1/achievements/{alpha['achievement']}"
        in (response.json["message"])
    )
    assert "'alpha badge'" in response.json["message"]
    assert db.query(Achievement).count() == 2


def test_add_achievement_identical_conflict(client, db, tenants):
    """The same body sent twice saves one badge, and the second response is a 409."""
    alpha, _ = tenants
    body = _achievement_body(alpha["connection"], name="Code of conduct")

    first = client.post(
        "/api/v1/achievements", json=body, headers=_auth(alpha["token"])
    )
    second = client.post(
        "/api/v1/achievements", json=body, headers=_auth(alpha["token"])
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json["achievement"] == first.json["id"]
    assert db.query(Achievement).count() == 3


def test_add_achievement_same_name_other_course(client, db, tenants):
    """The name of a badge of another course is accepted."""
    alpha, _ = tenants
    response = client.post(
        "/api/v1/achievements",
        json=_achievement_body(alpha["connection"], name="alpha badge"),
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 201


def test_edit_achievement_taken_name_conflict(client, db, tenants):
    """Renaming a badge to the name of another badge of its course gets a 409."""
    alpha, _ = tenants
    created = client.post(
        "/api/v1/achievements",
        json=_achievement_body(alpha["connection"], course_id="101", name="Second"),
        headers=_auth(alpha["token"]),
    )

    response = client.patch(
        f"/api/v1/achievements/{created.json['id']}",
        json={"name": "Alpha Badge"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 409
    assert response.json["error"] == "achievement_exists"
    assert response.json["achievement"] == alpha["achievement"]
