"""AGS client against a loopback AGS service: paging, tokens, limits and bad bodies."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from flask import Flask

from badge_engine.outbound import OutboundPolicy
from lti_tool.demo.peers.ags_service import AgsService
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.ags import (
    LINEITEM_CONTAINER_MEDIA_TYPE,
    RESULT_CONTAINER_MEDIA_TYPE,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    AgsBlocked,
    AgsClient,
    AgsRateLimited,
    AgsRequestFailed,
    AgsResponseInvalid,
    AgsScopeMissing,
    AgsUnauthorized,
    AgsUnavailable,
    results_url,
    retry_after_seconds,
)
from lti_tool.lti.registrations import create_registration
from tests.lti_tool.lti.harness import stop_server
from tests.support.seed import add_provider

CONTEXT = "course-9"
GRANTED = (SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY)


@pytest.fixture
def service():
    service = AgsService("tool-client")
    app = Flask("ags")
    service.register_routes(app)
    server = serve_in_thread(app)
    service.base_url = server.url
    yield service
    stop_server(server)


@pytest.fixture
def registration(app, db, service):
    vault = app.extensions["hpass"].vault
    registration = create_registration(
        db,
        vault,
        add_provider(db),
        issuer=service.base_url,
        client_id="tool-client",
        auth_login_url=f"{service.base_url}/auth",
        key_set_url=f"{service.base_url}/jwks",
        auth_token_url=service.token_url(),
    )
    db.commit()
    return registration


@pytest.fixture
def make_client(app, registration):
    vault = app.extensions["hpass"].vault
    clients = []

    def make(**options) -> AgsClient:
        options.setdefault("granted_scopes", GRANTED)
        options.setdefault("sleep", sleeps.append)
        policy = options.pop("policy", OutboundPolicy(allow_loopback=True))
        client = AgsClient(registration, vault, policy, **options)
        clients.append(client)
        return client

    sleeps: list[float] = []
    make.sleeps = sleeps
    yield make
    for client in clients:
        client.close()


def _items(service, count: int) -> list[str]:
    return [service.add_line_item(CONTEXT, f"Quiz {n}", 50) for n in range(count)]


def test_line_items_all_pages(service, make_client):
    """Line items from every page are returned, with the container media type."""
    urls = _items(service, 5)

    items = make_client().line_items(service.lineitems_url(CONTEXT))

    assert [item.id for item in items] == urls
    assert [item.label for item in items] == [f"Quiz {n}" for n in range(5)]
    assert {item.score_maximum for item in items} == {50.0}
    assert [kind for kind, _ in service.requests] == ["lineitems"] * 3
    assert {accept for _, accept in service.requests} == {LINEITEM_CONTAINER_MEDIA_TYPE}


def test_line_item_single(service, make_client):
    """One line item is read from its own URL."""
    url = service.add_line_item(CONTEXT, "Final exam", 80, resource_link_id="rl-1")

    item = make_client().line_item(url)

    assert item.id == url
    assert item.score_maximum == 80.0
    assert item.resource_link_id == "rl-1"


def test_results_pages_and_query(service, make_client):
    """Results of every page come back, from a URL that keeps the item's query."""
    [url] = _items(service, 1)
    for number in range(3):
        service.set_result(url, f"sub-{number}", 10 * number)

    results = make_client().results(url)

    assert [result.user_id for result in results] == ["sub-0", "sub-1", "sub-2"]
    assert [result.percent for result in results] == [0.0, 20.0, 40.0]
    assert {accept for kind, accept in service.requests} == {
        RESULT_CONTAINER_MEDIA_TYPE
    }
    assert results_url(url).endswith("/lineitem/results?type_id=1")


def test_results_user_filter(service, make_client):
    """`user_id` narrows the results to one learner."""
    [url] = _items(service, 1)
    service.set_result(url, "sub-a", 25)
    service.set_result(url, "sub-b", 45)

    results = make_client().results(url, user_id="sub-b")

    assert [result.user_id for result in results] == ["sub-b"]
    assert results[0].percent == 90.0


def test_token_cached(service, make_client):
    """One token serves several requests."""
    [url] = _items(service, 1)
    client = make_client()

    client.line_items(service.lineitems_url(CONTEXT))
    client.results(url)

    assert service.token_requests == 1


def test_expired_token_refreshed_once(service, make_client):
    """A 401 for an expired token gets one fresh token and the request succeeds."""
    _items(service, 1)
    client = make_client()
    client.line_items(service.lineitems_url(CONTEXT))
    service.expire_tokens()

    items = client.line_items(service.lineitems_url(CONTEXT))

    assert len(items) == 1
    assert service.token_requests == 2


def test_repeated_401_raises(service, make_client):
    """A 401 that persists after a fresh token raises AgsUnauthorized with its ids."""
    url = service.lineitems_url(CONTEXT)
    service.fail_next("lineitems", 401)
    service.fail_next("lineitems", 401)

    with pytest.raises(AgsUnauthorized) as raised:
        make_client().line_items(url)

    assert raised.value.status == 401
    assert raised.value.url == url
    assert raised.value.platform == service.base_url
    assert service.token_requests == 2


def test_short_retry_after_waited(service, make_client):
    """A 429 with a short Retry-After is retried once after that wait."""
    _items(service, 1)
    service.fail_next("lineitems", 429, headers={"Retry-After": "2"})
    client = make_client()

    items = client.line_items(service.lineitems_url(CONTEXT))

    assert len(items) == 1
    assert make_client.sleeps == [2.0]


def test_long_retry_after_raises(service, make_client):
    """A 429 asking for a long wait raises AgsRateLimited carrying the wait."""
    service.fail_next("lineitems", 429, headers={"Retry-After": "120"})

    with pytest.raises(AgsRateLimited, match="retry after 120 s") as raised:
        make_client().line_items(service.lineitems_url(CONTEXT))

    assert raised.value.retry_after == 120.0
    assert raised.value.status == 429
    assert make_client.sleeps == []


def test_503_without_retry_after(service, make_client):
    """A 503 without Retry-After raises AgsRateLimited with no wait."""
    service.fail_next("lineitems", 503)

    with pytest.raises(AgsRateLimited) as raised:
        make_client().line_items(service.lineitems_url(CONTEXT))

    assert raised.value.retry_after is None
    assert raised.value.status == 503


def test_second_429_after_wait_raises(service, make_client):
    """A second 429 after the one wait raises instead of waiting again."""
    for _ in range(2):
        service.fail_next("lineitems", 429, headers={"Retry-After": "1"})

    with pytest.raises(AgsRateLimited):
        make_client().line_items(service.lineitems_url(CONTEXT))

    assert make_client.sleeps == [1.0]


def test_malformed_json(service, make_client):
    """A body that is not JSON raises AgsResponseInvalid naming the URL."""
    url = service.lineitems_url(CONTEXT)
    service.fail_next("lineitems", 200, body="[{not json")

    with pytest.raises(AgsResponseInvalid, match="is not JSON") as raised:
        make_client().line_items(url)

    assert raised.value.url == url
    assert service.base_url in str(raised.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"lineItems": []}', "expected a JSON array"),
        ("[5]", r"line item\[0\] is not an object"),
        ('[{"label": "x", "scoreMaximum": 1}]', r"line item\[0\] has no id"),
        ('[{"id": "u", "scoreMaximum": "ten"}]', "has scoreMaximum 'ten'"),
        ('[{"id": "u", "scoreMaximum": 0}]', "expected a number above 0"),
    ],
)
def test_line_item_shapes(service, make_client, body, problem):
    """Each malformed line item container raises an error naming the problem."""
    service.fail_next("lineitems", 200, body=body)

    with pytest.raises(AgsResponseInvalid, match=problem):
        make_client().line_items(service.lineitems_url(CONTEXT))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[{"resultScore": 1}]', r"result\[0\] has no userId"),
        ('[{"userId": "s", "resultScore": "1"}]', "has resultScore '1'"),
        ('[{"userId": "s", "resultMaximum": -1}]', "has resultMaximum -1"),
    ],
)
def test_result_shapes(service, make_client, body, problem):
    """Each malformed result raises an error naming the result and the member."""
    [url] = _items(service, 1)
    service.fail_next("results", 200, body=body)

    with pytest.raises(AgsResponseInvalid, match=problem):
        make_client().results(url)


def test_result_without_score(service, make_client):
    """A result without resultScore has no percentage and a default maximum of 1."""
    [url] = _items(service, 1)
    service.fail_next("results", 200, body='[{"userId": "s"}]')

    [result] = make_client().results(url)

    assert result.result_score is None
    assert result.result_maximum == 1.0
    assert result.percent is None


def test_scope_missing_from_claim(service, make_client):
    """Results without result.readonly in the claim raise before any request."""
    [url] = _items(service, 1)

    with pytest.raises(AgsScopeMissing, match="result.readonly"):
        make_client(granted_scopes=(SCOPE_LINEITEM_READONLY,)).results(url)

    assert service.requests == []


def test_scope_refused_by_token_endpoint(service, make_client):
    """A token endpoint returning invalid_scope raises AgsScopeMissing."""
    service.granted_scopes = (SCOPE_LINEITEM_READONLY,)

    with pytest.raises(AgsScopeMissing, match="invalid_scope") as raised:
        make_client().line_items(service.lineitems_url(CONTEXT))

    assert raised.value.status == 400
    assert raised.value.url == service.token_url()


def test_forbidden_is_scope_missing(service, make_client):
    """A 403 from the service raises AgsScopeMissing with the status."""
    service.fail_next("lineitems", 403)

    with pytest.raises(AgsScopeMissing) as raised:
        make_client().line_items(service.lineitems_url(CONTEXT))

    assert raised.value.status == 403


def test_not_found(service, make_client):
    """A 404 raises AgsRequestFailed naming the status."""
    with pytest.raises(AgsRequestFailed, match="HTTP 404") as raised:
        make_client().line_item(
            f"{service.base_url}/ags/{CONTEXT}/lineitems/99/lineitem"
        )

    assert raised.value.status == 404


def test_timeout_is_unavailable(make_client):
    """A service that accepts the connection and never responds raises AgsUnavailable."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        with pytest.raises(AgsUnavailable, match="timed out|No answer"):
            make_client(timeout=0.5).line_item(f"http://127.0.0.1:{port}/item")


def test_blocked_by_policy(service, make_client):
    """Without loopback development mode the loopback platform is blocked."""
    client = make_client(policy=OutboundPolicy(allow_loopback=False))

    with pytest.raises(AgsBlocked):
        client.line_items(service.lineitems_url(CONTEXT))


def test_next_link_other_host(service, make_client):
    """A next link to another host is rejected so the token stays with the platform."""
    service.fail_next(
        "lineitems",
        200,
        body="[]",
        headers={"Link": '<http://127.0.0.2:9/steal>; rel="next"'},
    )

    with pytest.raises(AgsBlocked, match="leaves the host"):
        make_client().line_items(service.lineitems_url(CONTEXT))


def test_next_link_private_address(service, make_client):
    """A next link to a private address is rejected with the address named."""
    service.fail_next(
        "lineitems",
        200,
        body="[]",
        headers={"Link": '<https://192.168.4.9/lineitems?page=2>; rel="next"'},
    )

    with pytest.raises(AgsBlocked, match="non-public address 192.168.4.9"):
        make_client().line_items(service.lineitems_url(CONTEXT))


def test_private_lineitem_url_blocked(make_client):
    """A line item URL on a link-local address is blocked before any request."""
    with pytest.raises(AgsBlocked, match="non-public address 169.254.169.254"):
        make_client().line_item("https://169.254.169.254/lineitems/1/lineitem")


def test_retry_after_forms():
    """Retry-After is read as seconds or as an HTTP date."""
    later = datetime.now(timezone.utc) + timedelta(seconds=90)

    assert retry_after_seconds("30") == 30.0
    assert 80 <= retry_after_seconds(format_datetime(later, usegmt=True)) <= 90
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
