"""Language switcher links stay on the bridge's origin whatever the request path.

Browsers read a backslash in a URL as "/" and drop tabs, CR and LF, so a link built
from a path such as `/\\evil.example.org` would point to another host. The served
tests send raw request lines to waitress with the options `hpass-bridge run` uses,
so no client library normalises the path first.
"""

from __future__ import annotations

import html
import re
import socket
from urllib.parse import urljoin, urlsplit

import pytest

from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.i18n import same_origin_path
from lti_tool.lti.proxy import WAITRESS_OPTIONS

SWITCHER_HREF = re.compile(r'<a href="([^"]*)" lang="(\w+)" hreflang="\w+"')
# C0 controls and space, which the URL parser of browsers strips from both ends.
C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def _browser_resolve(document_url: str, href: str) -> str:
    """Resolve a link as the WHATWG URL parser of browsers does for http(s).

    Beyond RFC 3986 resolution, browsers strip C0 controls and spaces from both
    ends, remove every tab, CR and LF, and read a backslash as "/".
    """
    cleaned = href.strip(C0_AND_SPACE)
    for character in "\t\r\n":
        cleaned = cleaned.replace(character, "")
    cleaned = cleaned.replace("\\", "/")
    return urljoin(document_url, cleaned)


def _switcher_links(page: str) -> dict[str, str]:
    return {code: html.unescape(href) for href, code in SWITCHER_HREF.findall(page)}


def _raw_request(host: str, port: int, method: str, target: bytes) -> tuple[int, str]:
    """Send one request line exactly as given and return the status and body."""
    request = (
        method.encode()
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + b"Content-Length: 0\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


@pytest.fixture
def served(app):
    server = serve_in_thread(app, **WAITRESS_OPTIONS)
    yield server
    server.stop()


HOSTILE_TARGETS = [
    b"/%5Cevil.example.org",
    b"/%5cevil.example.org",
    b"/\\evil.example.org",
    b"/%5C%5Cevil.example.org",
    b"/%09/evil.example.org",
    b"/%0D%0A/evil.example.org",
    b"/%0A/evil.example.org",
    b"/%0D/evil.example.org",
    b"/%00/evil.example.org",
    b"/%20/evil.example.org",
    b"//evil.example.org",
    b"/%2F/evil.example.org",
    b"/%2fevil.example.org",
    b"/%255Cevil.example.org",
    b"/%E2%80%AE/evil.example.org",
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS, ids=lambda t: t.decode())
def test_switcher_links_stay_on_origin_served(served, target):
    """A page of any path links every language to the bridge itself."""
    status, page = _raw_request(served.host, served.port, "GET", target)
    document_url = served.url + target.decode("latin-1")
    links = _switcher_links(page)

    assert status == 404
    assert set(links) == {"en", "fr", "es", "ar"}
    for code, href in links.items():
        resolved = urlsplit(_browser_resolve(document_url, href))
        assert "\\" not in href
        assert href.isprintable()
        assert not href.startswith("//")
        assert resolved.netloc == urlsplit(served.url).netloc
        assert resolved.query == f"lang={code}"


@pytest.mark.parametrize("target", HOSTILE_TARGETS[:6], ids=lambda t: t.decode())
def test_switcher_links_after_post_served(served, target):
    """A page rendered by a POST to a hostile path shows no off-origin link."""
    _status, page = _raw_request(served.host, served.port, "POST", target)
    document_url = served.url + target.decode("latin-1")

    for href in _switcher_links(page).values():
        resolved = urlsplit(_browser_resolve(document_url, href))
        assert resolved.netloc == urlsplit(served.url).netloc


def test_switcher_link_with_query_served(served):
    """A normal page with a query string links to its own path with `?lang=`."""
    status, page = _raw_request(
        served.host, served.port, "GET", b"/account/sign-in?next=%2Fadmin%2F"
    )
    links = _switcher_links(page)

    assert status == 200
    assert links["fr"] == "/account/sign-in?lang=fr"
    assert links["ar"] == "/account/sign-in?lang=ar"


def test_switcher_double_slash_path(client):
    """A PATH_INFO of "//host" links to a path on the bridge, not to the host."""
    page = client.get(
        "/", environ_overrides={"PATH_INFO": "//evil.example.org"}
    ).get_data(as_text=True)
    links = _switcher_links(page)

    assert links["fr"] == "/evil.example.org?lang=fr"


def test_switcher_relative_when_path_rejected(client, monkeypatch):
    """When a GET path cannot be linked, the links are `?lang=xx` on the page."""
    monkeypatch.setattr("lti_tool.i18n.same_origin_path", lambda path: None)

    page = client.get("/account/sign-in").get_data(as_text=True)
    links = _switcher_links(page)

    assert links["fr"] == "?lang=fr"
    assert links["es"] == "?lang=es"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/course/7", "/course/7"),
        ("/account/sign-in/", "/account/sign-in/"),
        ("/\\evil.example.org", "/%5Cevil.example.org"),
        ("/\t/evil.example.org", "/%09/evil.example.org"),
        ("/\r\n/evil.example.org", "/%0D%0A/evil.example.org"),
        ("/%5Cevil.example.org", "/%255Cevil.example.org"),
        ("/a b?c#d", "/a%20b%3Fc%23d"),
        ("/é", "/%C3%A9"),
        ("//evil.example.org", None),
        ("///evil.example.org", None),
        ("\\\\evil.example.org", None),
        ("evil.example.org", None),
        ("", None),
    ],
)
def test_same_origin_path_cases(path, expected):
    """Paths are percent-encoded, and network-path or relative ones are rejected."""
    assert same_origin_path(path) == expected
