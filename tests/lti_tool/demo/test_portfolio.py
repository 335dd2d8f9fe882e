"""The demo portfolio's OB 3.0 upsert endpoint, checked against the OpenAPI document."""

from __future__ import annotations

import copy
import time

import jwt
import pytest
import requests
from openapi_core.contrib.requests import (
    RequestsOpenAPIRequest,
    RequestsOpenAPIResponse,
)

from badge_engine.status import STATUS_LIST_BITS, encode_status_list
from lti_tool.demo.peers.portfolio import UPSERT_PATH, PortfolioPeer, load_ob3_api

TOKEN = "test-portfolio-token"

CREDENTIAL = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ],
    "id": "urn:uuid:6f1c2a3e-0000-4000-8000-000000000001",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "name": "Humanitarian Essentials",
    "issuer": {
        "id": "https://bridge.example.invalid/issuers/demo-provider",
        "type": ["Profile"],
        "name": "Demo Provider",
    },
    "validFrom": "2025-01-01T00:00:00Z",
    "credentialSubject": {
        "id": "mailto:learner1@example.invalid",
        "type": ["AchievementSubject"],
        "achievement": {
            "id": "https://bridge.example.invalid/achievements/1",
            "type": ["Achievement"],
            "name": "Humanitarian Essentials",
            "description": "Completed the introduction course.",
            "criteria": {"narrative": "Complete every activity of the course."},
        },
    },
}


@pytest.fixture(scope="module")
def portfolio_server():
    portfolio = PortfolioPeer(TOKEN)
    server = portfolio.start()
    yield portfolio, server

    server.stop()


@pytest.fixture
def portfolio(portfolio_server):
    peer, server = portfolio_server
    peer.reset()

    return peer, server


def upsert(server, body=None, *, token: str | None = TOKEN, timeout=5, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        kwargs["json"] = body

    return requests.post(
        server.url + UPSERT_PATH, headers=headers, timeout=timeout, **kwargs
    )


def assert_matches_document(response: requests.Response) -> None:
    """Assert that the response is one the OB 3.0 API document allows."""
    load_ob3_api().validate_response(
        RequestsOpenAPIRequest(response.request),
        RequestsOpenAPIResponse(response),
    )


def assert_imsx(response: requests.Response, code_minor: str) -> None:
    body = response.json()
    assert body["imsx_codeMajor"] == "failure"
    assert body["imsx_severity"] == "error"
    fields = body["imsx_codeMinor"]["imsx_codeMinorField"]
    assert fields[0]["imsx_codeMinorFieldValue"] == code_minor
    assert_matches_document(response)


def test_upsert_creates_credential(portfolio):
    """A valid upsert returns 201 with the credential and stores it."""
    peer, server = portfolio

    response = upsert(server, CREDENTIAL)

    assert response.status_code == 201
    assert response.json() == CREDENTIAL
    assert peer.credentials() == [CREDENTIAL]
    assert peer.received_count == 1
    assert_matches_document(response)


def test_upsert_repeat_id_replaces(portfolio):
    """A second upsert with the same id returns 200 and replaces, not adds."""
    peer, server = portfolio
    changed = copy.deepcopy(CREDENTIAL)
    changed["name"] = "Humanitarian Essentials (reissued)"
    upsert(server, CREDENTIAL)

    response = upsert(server, changed)

    assert response.status_code == 200
    assert response.json() == changed
    assert len(peer.credentials()) == 1
    assert peer.credentials()[0]["name"] == changed["name"]
    assert peer.received_count == 2
    assert_matches_document(response)


def test_upsert_missing_token_401(portfolio):
    """An upsert without a bearer token returns 401 in Imsx shape."""
    peer, server = portfolio

    response = upsert(server, CREDENTIAL, token=None)

    assert response.status_code == 401
    assert_imsx(response, "unauthorizedrequest")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert peer.credentials() == []
    assert peer.received_count == 1


def test_upsert_wrong_token_401(portfolio):
    """An upsert with an unknown bearer token returns 401."""
    peer, server = portfolio

    response = upsert(server, CREDENTIAL, token="not-the-token")

    assert response.status_code == 401
    assert_imsx(response, "unauthorizedrequest")
    assert peer.credentials() == []


def test_upsert_malformed_body_400(portfolio):
    """A body that is not an AchievementCredential returns 400 naming the fault."""
    peer, server = portfolio

    response = upsert(server, {"id": "urn:uuid:1", "type": ["VerifiableCredential"]})

    assert response.status_code == 400
    assert_imsx(response, "invalid_data")
    assert (
        "'credentialSubject' is a required property"
        in (response.json()["imsx_description"])
    )
    assert peer.credentials() == []


def test_upsert_missing_description_400(portfolio):
    """A nested schema error names its JSON path."""
    _, server = portfolio
    broken = copy.deepcopy(CREDENTIAL)
    del broken["credentialSubject"]["achievement"]["description"]

    response = upsert(server, broken)

    assert response.status_code == 400
    assert "credentialSubject.achievement" in response.json()["imsx_description"]


def test_upsert_invalid_json_400(portfolio):
    """A body that is not JSON returns 400."""
    _, server = portfolio

    response = upsert(
        server, data="{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert_imsx(response, "invalid_data")


def test_upsert_unknown_media_type_400(portfolio):
    """A content type the document does not list returns 400 naming the valid ones."""
    _, server = portfolio

    response = upsert(server, data="<x/>", headers={"Content-Type": "application/xml"})

    assert response.status_code == 400
    assert "application/json" in response.json()["imsx_description"]


def test_upsert_compact_jws_created(portfolio):
    """A VC-JWT sent as text/plain is stored by its credential id."""
    peer, server = portfolio
    compact_jws = jwt.encode(CREDENTIAL, "k" * 32, algorithm="HS256")

    response = upsert(server, data=compact_jws, headers={"Content-Type": "text/plain"})

    assert response.status_code == 201
    assert response.text == compact_jws
    assert peer.credentials() == [CREDENTIAL]
    assert peer.stored_credential(CREDENTIAL["id"]).compact_jws == compact_jws


def test_upsert_invalid_jws_payload_400(portfolio):
    """A VC-JWT whose payload is not a credential returns 400."""
    peer, server = portfolio
    compact_jws = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")

    response = upsert(server, data=compact_jws, headers={"Content-Type": "text/plain"})

    assert response.status_code == 400
    assert_imsx(response, "invalid_data")
    assert peer.credentials() == []


def test_fail_next_yields_500(portfolio):
    """fail_next(1) fails the next upsert with 500, then upserts succeed again."""
    peer, server = portfolio
    peer.fail_next(1)

    failed = upsert(server, CREDENTIAL)
    retried = upsert(server, CREDENTIAL)

    assert failed.status_code == 500
    assert_imsx(failed, "internal_server_error")
    assert retried.status_code == 201
    assert len(peer.credentials()) == 1
    assert peer.received_count == 2


def test_fail_next_custom_status(portfolio):
    """fail_next uses the status it is given."""
    peer, server = portfolio
    peer.fail_next(2, status=503)

    statuses = [upsert(server, CREDENTIAL).status_code for _ in range(3)]

    assert statuses == [503, 503, 201]


def test_delay_next_times_out(portfolio):
    """delay_next makes a short client timeout expire; the late upsert still lands."""
    peer, server = portfolio
    peer.delay_next(1, seconds=1.0)

    with pytest.raises(requests.Timeout):
        upsert(server, CREDENTIAL, timeout=0.2)
    deadline = time.monotonic() + 5
    while not peer.credentials() and time.monotonic() < deadline:
        time.sleep(0.05)
    retried = upsert(server, CREDENTIAL)

    assert len(peer.credentials()) == 1
    assert retried.status_code == 200


def test_get_on_upsert_path_405(portfolio):
    """Methods other than POST return 405 in Imsx shape."""
    _, server = portfolio

    response = requests.get(server.url + UPSERT_PATH, timeout=5)

    assert response.status_code == 405
    assert (
        response.json()["imsx_codeMinor"]["imsx_codeMinorField"][0][
            "imsx_codeMinorFieldValue"
        ]
        == "not_allowed"
    )


def test_read_page_lists_badge(portfolio):
    """The HTML page shows the badge name, recipient and issuer."""
    _, server = portfolio
    upsert(server, CREDENTIAL)

    page = requests.get(server.url + "/", timeout=5)

    assert page.status_code == 200
    assert "Humanitarian Essentials" in page.text
    assert "mailto:learner1@example.invalid" in page.text
    assert "Demo Provider" in page.text


def test_read_page_names_follow_script(portfolio):
    """Badge, recipient and issuer cells take their direction from their text, so
    an Arabic badge name reads right to left."""
    _, server = portfolio
    upsert(server, CREDENTIAL)

    page = requests.get(server.url + "/", timeout=5).text

    assert '<td dir="auto">Humanitarian Essentials</td>' in page
    assert '<td dir="auto">Demo Provider</td>' in page


def with_id(credential_id: str) -> dict:
    credential = copy.deepcopy(CREDENTIAL)
    credential["id"] = credential_id
    return credential


def test_read_page_counts_singular(portfolio):
    """One badge and one request are counted in the singular."""
    _, server = portfolio
    upsert(server, CREDENTIAL)

    page = requests.get(server.url + "/", timeout=5).text

    assert "1 badge held;" in page
    assert "1 upsert request received." in page
    assert "(s)" not in page


def test_read_page_counts_plural(portfolio):
    """Two badges and three requests are counted in the plural."""
    _, server = portfolio
    upsert(server, CREDENTIAL)
    upsert(server, CREDENTIAL)
    upsert(server, with_id("urn:uuid:6f1c2a3e-0000-4000-8000-000000000002"))

    page = requests.get(server.url + "/", timeout=5).text

    assert "2 badges held;" in page
    assert "3 upsert requests received." in page


def test_read_page_counts_zero(portfolio):
    """An empty portfolio counts zero in the plural, in English under ?lang=fr."""
    _, server = portfolio

    page = requests.get(server.url + "/", params={"lang": "fr"}, timeout=5).text

    assert "0 badges held;" in page
    assert "0 upsert requests received." in page
    assert '<html lang="en">' in page


def test_read_page_links_url_id(portfolio):
    """A credential id that is an http(s) URL links to the credential's page."""
    _, server = portfolio
    url = "http://127.0.0.1:5000/credentials/c-42"
    upsert(server, with_id(url))

    page = requests.get(server.url + "/", timeout=5).text

    assert f'<td><a href="{url}">{url}</a></td>' in page


def test_read_page_urn_id_unlinked(portfolio):
    """A urn:uuid credential id is shown as text, with no link."""
    _, server = portfolio
    upsert(server, CREDENTIAL)

    page = requests.get(server.url + "/", timeout=5).text

    assert f"<td>{CREDENTIAL['id']}</td>" in page
    assert '<a href="urn:' not in page


def test_read_page_script_id_unlinked(portfolio):
    """A javascript: credential id is shown as text, never as a link."""
    peer, server = portfolio
    credential_id = "javascript:alert(1)"
    peer.restore(
        {
            "credentials": [
                {
                    "credential_id": credential_id,
                    "credential": with_id(credential_id),
                    "compact_jws": None,
                    "received_at": 1.0,
                }
            ]
        }
    )

    page = requests.get(server.url + "/", timeout=5).text

    assert f"<td>{credential_id}</td>" in page
    assert 'href="javascript:' not in page


def test_api_lists_credentials(portfolio):
    """GET /api/credentials returns the stored credentials as JSON."""
    _, server = portfolio
    upsert(server, CREDENTIAL)

    response = requests.get(server.url + "/api/credentials", timeout=5)

    assert response.json() == {
        "count": 1,
        "credentials": [CREDENTIAL],
        "statuses": {CREDENTIAL["id"]: "not_checked"},
    }


def test_empty_token_rejected():
    """A portfolio cannot be started without a bearer token."""
    with pytest.raises(ValueError, match="bearer_token"):
        PortfolioPeer("")


LIST_URL = "http://127.0.0.1:9/providers/demo/status/0"


def _with_status(index: int, list_url: str = LIST_URL) -> dict:
    credential = copy.deepcopy(CREDENTIAL)
    credential["credentialStatus"] = {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }
    return credential


def _status_list(revoked: list[int]) -> dict:
    return {
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "credentialSubject": {
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_status_list(revoked, STATUS_LIST_BITS),
        },
    }


def test_upsert_reads_revoked_status():
    """A credential whose status bit is set is stored and shown as revoked."""
    fetched = []

    def fetch(url):
        fetched.append(url)
        return _status_list([7])

    peer = PortfolioPeer(TOKEN, fetch_document=fetch)
    server = peer.start()
    try:
        live = upsert(server, _with_status(3))
        revoked = upsert(server, {**_with_status(7), "id": "urn:uuid:revoked"})
        page = requests.get(server.url + "/", timeout=5).text
    finally:
        server.stop()

    assert live.status_code == 201
    assert revoked.status_code == 201
    assert fetched == [LIST_URL, LIST_URL]
    assert peer.statuses() == {CREDENTIAL["id"]: "valid", "urn:uuid:revoked": "revoked"}
    assert peer.stored_credential("urn:uuid:revoked").status_detail == (
        f"bit 7 of {LIST_URL} is set"
    )
    assert "Revoked by its issuer" in page
    assert "Valid" in page


def test_unreachable_status_list_unknown(portfolio):
    """A status list that cannot be read leaves the status unknown, and stores it."""
    peer, server = portfolio

    response = upsert(server, _with_status(3))

    assert response.status_code == 201
    assert peer.statuses() == {CREDENTIAL["id"]: "unknown"}
    assert LIST_URL in peer.stored_credential(CREDENTIAL["id"]).status_detail


def test_status_list_other_host_not_fetched(portfolio):
    """A status list off this machine is not fetched, so the status is unknown."""
    peer, server = portfolio
    list_url = "https://bridge.example.invalid/providers/demo/status/0"

    response = upsert(server, _with_status(3, list_url))

    assert response.status_code == 201
    assert peer.statuses() == {CREDENTIAL["id"]: "unknown"}
    assert "127.0.0.1" in peer.stored_credential(CREDENTIAL["id"]).status_detail
