"""The AGS stand-in's paging parameters: valid pages, and a 400 for a bad number."""

from __future__ import annotations

import jwt
import pytest
from flask import Flask

from lti_tool.demo.peers.ags_service import (
    JWT_BEARER,
    PAGE_LIMIT_MAX,
    SCOPE_LINEITEM_READONLY,
    AgsService,
)

CLIENT_ID = "tool-client"
CONTEXT = "course-9"
BASE_URL = "http://localhost"


@pytest.fixture
def service() -> AgsService:
    service = AgsService(CLIENT_ID)
    service.base_url = BASE_URL
    for number in range(5):
        service.add_line_item(CONTEXT, f"Quiz {number}", 50)
    return service


@pytest.fixture
def client(service):
    app = Flask("ags")
    service.register_routes(app)
    return app.test_client()


@pytest.fixture
def token(client) -> str:
    # The stand-in does not verify the assertion's signature, so any key does.
    assertion = jwt.encode(
        {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": f"{BASE_URL}/ags/token"},
        "unverified-test-key-of-32-bytes!",
        algorithm="HS256",
    )
    response = client.post(
        "/ags/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": SCOPE_LINEITEM_READONLY,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def _line_items(client, token: str, **query):
    return client.get(
        f"/ags/{CONTEXT}/lineitems",
        query_string={"type_id": "1", **query},
        headers={"Authorization": f"Bearer {token}"},
    )


def _labels(response) -> list[str]:
    return [item["label"] for item in response.get_json()]


def test_default_page_size(client, token):
    """Without paging parameters the first `page_size` items come back."""
    response = _line_items(client, token)

    assert response.status_code == 200
    assert _labels(response) == ["Quiz 0", "Quiz 1"]
    assert "offset=2" in response.headers["Link"]


def test_limit_and_offset(client, token):
    """A valid limit and offset choose the page, and the last page has no link."""
    response = _line_items(client, token, limit="3", offset="3")

    assert response.status_code == 200
    assert _labels(response) == ["Quiz 3", "Quiz 4"]
    assert "Link" not in response.headers


def test_largest_limit_accepted(client, token):
    """A limit of exactly `PAGE_LIMIT_MAX` returns every item."""
    response = _line_items(client, token, limit=str(PAGE_LIMIT_MAX))

    assert response.status_code == 200
    assert len(_labels(response)) == 5


def test_offset_past_end_empty(client, token):
    """An offset past the last item is valid and returns an empty page."""
    response = _line_items(client, token, offset="9223372036854775807")

    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "-1"),
        ("limit", "0"),
        ("limit", str(PAGE_LIMIT_MAX + 1)),
        ("limit", "99999999999999999999999"),
        ("limit", "two"),
        ("limit", "1.5"),
        ("limit", "+3"),
        ("limit", ""),
        ("offset", "-2"),
        ("offset", "9223372036854775808"),
        ("offset", "0x10"),
        ("offset", "٣"),
    ],
)
def test_bad_paging_number_rejected(client, token, name, value):
    """A paging number out of range or not in ASCII digits gets a 400 naming it."""
    response = _line_items(client, token, **{name: value})
    message = response.get_json()["error"]

    assert response.status_code == 400
    assert message.startswith(f"invalid {name} {value!r}: ")
    assert "expected a whole number from" in message


def test_limit_message_names_range(client, token):
    """The limit message names the accepted range."""
    response = _line_items(client, token, limit="-1")

    assert response.get_json() == {
        "error": (
            f"invalid limit '-1': expected a whole number from 1 to {PAGE_LIMIT_MAX}"
        )
    }
