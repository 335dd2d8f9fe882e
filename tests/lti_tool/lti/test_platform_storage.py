"""LTI Platform Storage, the fallback for browsers that drop the tool's state cookie.

The server path runs over real HTTP with a stand-in platform. The postMessage pages run
in Debian's chromium against the real platform peer. The peer hosts the tool in a
cross-site iframe, so the browser withholds the tool's cookies as it does in an LMS.
"""

from __future__ import annotations

import html
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.demo.peers.platform import PlatformPeer
from lti_tool.models import LtiCourse, LtiUsedNonce
from tests.lti_tool.lti.platform_setup import register_peer, start_bridge, stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _storage_settings(page: str) -> dict[str, str]:
    """Return the data attributes of the page's #lti-storage element."""
    element = re.search(r'<div id="lti-storage"[^>]*>', page).group(0)
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', element)
    }


def _storage_login(tool, target="_parent"):
    """Log in naming a storage target; return (state, nonce, binding) from the page."""
    response = tool.login(lti_storage_target=target)
    assert response.status_code == 200, response.text
    settings = _storage_settings(response.text)
    assert settings["mode"] == "put"
    query = parse_qs(urlsplit(settings["auth-url"]).query)
    assert settings["target"] == target
    return query["state"][0], query["nonce"][0], settings["binding"]


def _token(platform, tool, nonce):
    return platform.sign(platform.claims(nonce, tool.target_link_uri))


def _launch(tool, data: dict, origin: str | None = None) -> requests.Response:
    """Post the launch from a browser that has no cookie of the tool."""
    headers = {"Accept": "text/html"}
    if origin:
        headers["Origin"] = origin
    return requests.post(
        f"{tool.tool_url}/lti/{tool.public_id}/launch",
        data=data,
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )


def _courses(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(LtiCourse))


def test_launch_through_storage(tool, platform, db):
    """Without the cookie the tool requests the binding from storage and then accepts it."""
    state, nonce, binding = _storage_login(tool)
    id_token = _token(platform, tool, nonce)

    page = _launch(tool, {"id_token": id_token, "state": state})
    assert page.status_code == 200
    settings = _storage_settings(page.text)
    assert (settings["mode"], settings["target"]) == ("get", "_parent")
    assert f'name="state" value="{state}"' in page.text
    assert _courses(db) == 0

    done = _launch(
        tool,
        {"id_token": id_token, "state": state, "lti_storage_binding": binding},
        origin="http://127.0.0.1:5999",
    )
    assert done.status_code == 302, done.text
    assert "/course/" in done.headers["Location"]
    assert _courses(db) == 1

    again = _launch(
        tool,
        {"id_token": id_token, "state": state, "lti_storage_binding": binding},
        origin="http://127.0.0.1:5999",
    )
    assert again.status_code == 400
    assert "already used" in html.unescape(again.text)


def test_named_frame_kept(tool, platform):
    """A named storage frame (Canvas's) is the frame the launch page sends get_data to."""
    state, nonce, _ = _storage_login(tool, target="post_message_forwarding")

    page = _launch(tool, {"id_token": _token(platform, tool, nonce), "state": state})
    assert page.status_code == 200
    assert _storage_settings(page.text)["target"] == "post_message_forwarding"


@pytest.mark.parametrize(
    ("binding", "origin"),
    [
        ("not-the-binding", "http://127.0.0.1:5999"),
        ("RIGHT", "http://attacker.invalid"),
        ("RIGHT", None),
    ],
    ids=["wrong-binding", "other-origin", "no-origin"],
)
def test_binding_refused(tool, platform, db, caplog, binding, origin):
    """A wrong binding or a post from another origin gets a 400 and creates nothing."""
    caplog.set_level(logging.INFO)
    state, nonce, right = _storage_login(tool)
    data = {
        "id_token": _token(platform, tool, nonce),
        "state": state,
        "lti_storage_binding": right if binding == "RIGHT" else binding,
    }

    response = _launch(tool, data, origin=origin)
    assert response.status_code == 400
    assert "platform's storage does not match" in html.unescape(response.text)
    assert _courses(db) == 0
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LtiUsedNonce)) == 0


def test_cookie_login_not_storage(tool, platform, db):
    """A login without storage target never accepts a storage binding instead of the cookie."""
    login = tool.start()
    response = _launch(
        tool,
        {
            "id_token": _token(platform, tool, login.nonce),
            "state": login.state,
            "lti_storage_binding": "anything",
        },
        origin="http://127.0.0.1:5999",
    )
    assert response.status_code == 400
    assert "did not send the state cookie" in html.unescape(response.text)
    assert _courses(db) == 0


def test_target_too_long(tool):
    """An oversized lti_storage_target gets a 400 naming the parameter."""
    response = tool.login(lti_storage_target="x" * 200)
    assert response.status_code == 400
    assert "lti_storage_target" in html.unescape(response.text)


def _require_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright, problem = None, "playwright is not installed"
    else:
        problem = None if CHROMIUM.exists() else "chromium is missing"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need a browser under CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture
def framed(tmp_path, database_url):
    """The bridge on 127.0.0.1 and the platform peer on localhost: two sites."""
    sync_playwright = _require_browser()
    app, server = start_bridge(tmp_path, database_url)
    peer = PlatformPeer(claim_set="moodle")
    peer_server = peer.start()
    peer.issuer = peer_server.url.replace("127.0.0.1", "localhost")
    register_peer(app, server.url, peer)
    yield sync_playwright, app, peer
    stop(app, peer_server, server)


def test_browser_launch_via_storage(framed):
    """In a cross-site iframe the launch completes through put_data and get_data."""
    sync_playwright, app, peer = framed
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{peer.issuer}/frame/learner")
            # Polled from Python: wait_for_function evaluates a string, which the
            # frame page's Content-Security-Policy forbids (no 'unsafe-eval').
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "lti.get_data" not in (
                page.evaluate("window.platformStorageLog") or []
            ):
                time.sleep(0.2)
            bridge = app.extensions["hpass"]
            deadline = time.monotonic() + 20
            courses = 0
            while time.monotonic() < deadline and not courses:
                with bridge.session() as session:
                    courses = session.scalar(
                        select(func.count()).select_from(LtiCourse)
                    )
                time.sleep(0.2)
            log = page.evaluate("window.platformStorageLog")
        finally:
            browser.close()
    assert log == ["lti.put_data", "lti.get_data"]
    assert courses == 1
