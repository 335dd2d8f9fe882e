"""API messages for missing and mistyped string fields."""

from __future__ import annotations

import pytest

from .test_api_actions import _auth, tenants  # noqa: F401


@pytest.mark.parametrize(
    "body",
    [{"url": "http://127.0.0.1:9"}, {"url": "http://127.0.0.1:9", "token": None}],
)
def test_missing_field_is_required(client, tenants, body):  # noqa: F811
    """A missing or null string field is reported as required."""
    alpha, _ = tenants

    response = client.post(
        "/api/v1/lms-connections/moodle", json=body, headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_field"
    assert "field 'token' is required" in response.json["message"]
    assert "must be a string" not in response.json["message"]


def test_mistyped_field_names_type(client, tenants):  # noqa: F811
    """A field of the wrong JSON type names the type that was sent."""
    alpha, _ = tenants

    response = client.post(
        "/api/v1/lms-connections/moodle",
        json={"url": 5, "token": "t"},
        headers=_auth(alpha["token"]),
    )

    assert response.status_code == 400
    assert response.json["message"] == "field 'url' must be a string, not int"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("moodle", {"url": "ftp://127.0.0.1:9", "token": "t"}),
        ("moodle", {"url": "http://127.0.0.1:9/?a=1", "token": "t"}),
        ("canvas", {"url": "ftp://127.0.0.1:9", "token": "t", "course_id": "1"}),
    ],
)
def test_bad_url_names_body_field(client, tenants, kind, body):  # noqa: F811
    """An invalid LMS URL is named by the body field, not the command-line option."""
    alpha, _ = tenants

    response = client.post(
        f"/api/v1/lms-connections/{kind}", json=body, headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_url"
    assert response.json["message"].startswith("url ")
    assert "--url" not in response.json["message"]


CANVAS = {"url": "http://127.0.0.1:9", "token": "t", "course_id": "1"}


@pytest.mark.parametrize(
    ("kind", "body", "code", "field"),
    [
        (
            "moodle",
            {"url": "http://127.0.0.1:9", "token": "a b"},
            "invalid_token",
            '"token"',
        ),
        (
            "moodle",
            {"url": "http://127.0.0.1:9", "token": "t", "name": " "},
            "invalid_name",
            '"name"',
        ),
        ("canvas", {**CANVAS, "course_id": "abc"}, "invalid_course", '"course_id"'),
        ("canvas", {**CANVAS, "client_id": "7"}, "incomplete_oauth", '"client_secret"'),
    ],
)
def test_bad_value_names_body_field(client, tenants, kind, body, code, field):  # noqa: F811
    """Other rejected values are named by their body fields, not by options."""
    alpha, _ = tenants

    response = client.post(
        f"/api/v1/lms-connections/{kind}", json=body, headers=_auth(alpha["token"])
    )

    assert response.status_code == 400
    assert response.json["error"] == code
    assert field in response.json["message"]
    assert "--" not in response.json["message"]
