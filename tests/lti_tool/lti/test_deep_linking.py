"""Deep Linking from the real platform peer: picker, signed response, refusals."""

from __future__ import annotations

import html
import re

import pytest
import requests

from lti_tool.demo.peers.platform import DL_CLAIM, PlatformPeer, _LaunchFormParser
from lti_tool.lti.deep_linking import COURSE_PAGE
from tests.lti_tool.lti.platform_setup import register_peer, start_bridge, stop

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.fixture(params=["moodle", "canvas"])
def setup(request, tmp_path, database_url):
    app, server = start_bridge(tmp_path, database_url)
    peer = PlatformPeer(claim_set=request.param)
    peer_server = peer.start()
    public_id = register_peer(app, server.url, peer)
    yield peer, server.url, public_id
    stop(app, peer_server, server)


def _deep_link_launch(peer, user: str) -> tuple[requests.Session, requests.Response]:
    """Start a deep linking launch as `user` and post its id_token to the tool."""
    browser = requests.Session()
    auth_page = browser.get(
        f"{peer.issuer}/launch/{user}", params={"message": "deep_linking"}, timeout=10
    )
    assert auth_page.status_code == 200, auth_page.text
    form = _LaunchFormParser.parse(auth_page.text)
    response = browser.post(
        form.action, data=form.fields, allow_redirects=False, timeout=10
    )
    return browser, response


def _picker_csrf(browser: requests.Session, picker_url: str) -> str:
    """Open the picker as the browser would and return its form's CSRF token."""
    page = browser.get(picker_url, timeout=10).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _return_form(page: str) -> tuple[str, str]:
    action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
    token = re.search(r'name="JWT" value="([^"]+)"', page).group(1)
    return action, token


def test_instructor_adds_course_page(setup):
    """An instructor picks the course page and the platform accepts the signed reply."""
    peer, base, public_id = setup
    browser, response = _deep_link_launch(peer, "instructor")
    assert response.status_code == 302, response.text
    picker_url = f"{base}/lti/{public_id}/deep-link"
    assert response.headers["Location"].endswith(f"/lti/{public_id}/deep-link")

    picker = browser.get(picker_url, timeout=10)
    assert picker.status_code == 200
    assert COURSE_PAGE in picker.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', picker.text).group(1)

    reply = browser.post(
        picker_url, data={"item": COURSE_PAGE, "csrf": csrf}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    action, token = _return_form(reply.text)
    assert action == f"{peer.issuer}/deep-link/return"

    accepted = browser.post(action, data={"JWT": token}, timeout=10)
    assert accepted.status_code == 200, accepted.text
    claims = peer.deep_link_returns[-1]
    assert claims["exp"] - claims["iat"] >= 300
    items = claims[DL_CLAIM + "content_items"]
    assert [item["type"] for item in items] == ["ltiResourceLink"]
    assert items[0]["url"] == f"{base}/lti/{public_id}/launch"


def test_response_used_once(setup):
    """The picker's settings are gone after one response, so a second post is refused."""
    peer, base, public_id = setup
    browser, _ = _deep_link_launch(peer, "instructor")
    picker_url = f"{base}/lti/{public_id}/deep-link"
    form = {"item": COURSE_PAGE, "csrf": _picker_csrf(browser, picker_url)}
    assert browser.post(picker_url, data=form, timeout=10).ok

    again = browser.post(picker_url, data=form, timeout=10)
    assert again.status_code == 403
    assert "no content selection is in progress" in html.unescape(again.text)


def test_learner_refused(setup):
    """A learner who opens the content selection gets a 403 naming who may add badges."""
    peer, _, _ = setup
    _, response = _deep_link_launch(peer, "learner")
    assert response.status_code == 403
    assert "only instructors and admins" in html.unescape(response.text)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], "choose the course badge page or at least one badge"),
        (["no-such-badge"], "is not a badge of this course"),
    ],
)
def test_bad_choice(setup, items, expected):
    """An empty or unknown choice gets a 400 saying what to pick."""
    peer, base, public_id = setup
    browser, _ = _deep_link_launch(peer, "instructor")
    picker_url = f"{base}/lti/{public_id}/deep-link"
    csrf = _picker_csrf(browser, picker_url)
    response = browser.post(picker_url, data={"item": items, "csrf": csrf}, timeout=10)
    assert response.status_code == 400
    assert expected in html.unescape(response.text)


def test_picker_without_launch(setup):
    """Opening the picker without a deep linking launch gets a 403."""
    _, base, public_id = setup
    response = requests.get(f"{base}/lti/{public_id}/deep-link", timeout=10)
    assert response.status_code == 403
    assert "start it again" in html.unescape(response.text)


def test_response_needs_csrf(setup):
    """A post without the picker's CSRF token signs nothing."""
    peer, base, public_id = setup
    browser, _ = _deep_link_launch(peer, "instructor")

    response = browser.post(
        f"{base}/lti/{public_id}/deep-link", data={"item": COURSE_PAGE}, timeout=10
    )

    assert response.status_code == 400
    assert "The form expired" in html.unescape(response.text)
    assert 'name="JWT"' not in response.text
