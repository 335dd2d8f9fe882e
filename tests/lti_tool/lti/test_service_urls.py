"""The URL check that NRPS and AGS share for token, service and next-page URLs."""

from __future__ import annotations

import pytest

from badge_engine.outbound import OutboundBlocked, OutboundPolicy
from lti_tool.lti.service_urls import check_service_url, next_page, next_page_url

STRICT = OutboundPolicy()
LOOPBACK = OutboundPolicy(allow_loopback=True)
FIRST = "https://lms.example/api/members?rlid=4"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://10.0.0.7/members", "blocked_address"),
        ("https://169.254.169.254/latest/meta-data", "blocked_address"),
        ("https://[::1]/members", "blocked_address"),
        ("https://[::ffff:192.168.1.4]/members", "blocked_address"),
        ("https://[64:ff9b::a9fe:a9fe]/members", "blocked_address"),
        ("https://[64:ff9b:1::a00:1]/members", "blocked_address"),
        ("https://[2002:a00:1::]/members", "blocked_address"),
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/members", "blocked_address"),
        ("https://[::a00:1]/members", "blocked_address"),
        ("https://user:pa55word@lms.example/members", "invalid_url"),
        ("ftp://lms.example/members", "invalid_url"),
        ("/members", "invalid_url"),
        ("http://lms.example/members", "insecure_url"),
        ("https://lms.example:99999/members", "invalid_url"),
    ],
)
def test_service_url_rejected(url, code):
    """URLs the bridge must not call raise OutboundBlocked before any connection."""
    with pytest.raises(OutboundBlocked) as raised:
        check_service_url(STRICT, url)

    assert raised.value.code == code
    assert "pa55word" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["https://lms.example/members", "https://93.184.215.14/members"]
)
def test_service_url_accepted(url):
    """A public host name or public address passes."""
    check_service_url(STRICT, url)


def test_loopback_in_dev_mode():
    """Loopback development mode allows plain http to a loopback address."""
    check_service_url(LOOPBACK, "http://127.0.0.1:8000/members")


def test_next_page_parsing():
    """Link headers are parsed whatever the case and with several relations."""
    header = '<https://a/p1>; rel="prev", <https://a/p3>; Rel=next'

    assert next_page(header) == "https://a/p3"
    assert next_page('<https://a/p1>; rel="prev"') is None
    assert next_page("") is None


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "<https://lms.example/api/members?page=2>; rel=next",
            "https://lms.example/api/members?page=2",
        ),
        ("</api/members?page=2>; rel=next", "https://lms.example/api/members?page=2"),
        ("<https://LMS.example:443/p2>; rel=next", "https://LMS.example:443/p2"),
    ],
)
def test_next_page_same_host(link, expected):
    """Absolute, relative and default-port links on the first page's host pass."""
    url = next_page_url(STRICT, FIRST, FIRST, link)

    assert url == expected


def test_last_page_has_no_next():
    """A response without a next link ends the paging."""
    previous_only = '<https://lms.example/p1>; rel="prev"'

    assert next_page_url(STRICT, FIRST, FIRST, previous_only) is None


@pytest.mark.parametrize(
    "link",
    [
        "https://attacker.example/steal",
        "https://lms.example:8443/p2",
        "http://lms.example/p2",
        "https://lms.example.attacker.example/p2",
    ],
)
def test_next_page_other_host_rejected(link):
    """A next link to another scheme, host or port raises with the reason."""
    with pytest.raises(OutboundBlocked) as raised:
        next_page_url(LOOPBACK, FIRST, FIRST, f"<{link}>; rel=next")

    assert raised.value.code == "next_page_other_host"
    assert "leaves the host of https://lms.example/api/members" in str(raised.value)


def test_next_page_private_address_rejected():
    """A next link to a private address is rejected before any connection."""
    with pytest.raises(OutboundBlocked) as raised:
        next_page_url(STRICT, FIRST, FIRST, "<https://10.1.2.3/p2>; rel=next")

    assert raised.value.code == "blocked_address"
    assert "non-public address 10.1.2.3" in str(raised.value)
