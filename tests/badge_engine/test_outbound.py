"""The guarded HTTP client: address checks, pinning, limits, redirects and errors.

Every request here goes to a real HTTP server on 127.0.0.1, or is blocked by the
guard before any connection is opened. Names such as `badges.test` resolve through a
replaced `resolve_host`, never through DNS or a hosts file.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from badge_engine.outbound import (
    GuardedSession,
    OutboundConnectionFailed,
    OutboundError,
    OutboundLimits,
    OutboundPolicy,
    OutboundBlocked,
    OutboundStatusError,
    OutboundTimeout,
    OutboundTooLarge,
    policy as policy_module,
    redact_url,
)
from badge_engine.outbound.documents import DocumentFetcher
from tests.support.slow_body_server import SlowBodyServer

LOOPBACK = OutboundPolicy(allow_loopback=True)
STRICT = OutboundPolicy()
QUICK = OutboundLimits(
    connect_timeout_seconds=2.0,
    read_timeout_seconds=2.0,
    deadline_seconds=5.0,
    max_bytes=1000,
    max_redirects=2,
)
GZIP_BOMB = gzip.compress(b"0" * 5_000_000)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the http.server interface
        path = self.path.split("?")[0]
        if path == "/doc":
            self._send(200, b'{"ok": true}')
        elif path == "/headers":
            authorization = self.headers.get("Authorization", "")
            self._send(200, authorization.encode())
        elif path == "/big":
            self._send(200, b"x" * 5000)
        elif path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif path == "/gzip":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(GZIP_BOMB)))
            self.end_headers()
            self.wfile.write(GZIP_BOMB)
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/once":
            self._redirect("/doc")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-private":
            self._redirect("https://10.0.0.5/admin")
        elif path == "/to-other-host":
            port = self.server.server_address[1]
            self._redirect(f"http://other.test:{port}/headers")
        elif path == "/slow-headers":
            time.sleep(1.5)
            self._send(200, b"{}")
        elif path == "/drip":
            self._drip()
        else:
            self._send(404, b"missing")

    def do_POST(self):  # noqa: N802 - the http.server interface
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self._redirect("/doc", status=302)

    def _drip(self):
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def _redirect(self, location, status=302):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The client hangs up mid-body on purpose in the size and deadline tests.
        pass


@pytest.fixture(scope="module")
def server_url():
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_dns(monkeypatch):
    """Point `*.test` names at addresses chosen by the test, counting lookups."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []
    real_resolve = policy_module.resolve_host

    def resolve(host, port, *, url):
        if host in answers:
            lookups.append(host)
            queue = answers[host]
            current = queue.pop(0) if len(queue) > 1 else queue[0]
            return [ipaddress.ip_address(item) for item in current]
        return real_resolve(host, port, url=url)

    monkeypatch.setattr(policy_module, "resolve_host", resolve)
    return answers, lookups


def _get(policy, url, limits=QUICK, **options):
    with GuardedSession(policy, limits) as session:
        return session.get(url, **options)


def _blocked(policy, url, error_type=OutboundBlocked, limits=QUICK, **options):
    with pytest.raises(error_type) as raised:
        _get(policy, url, limits, **options)
    return raised.value


def test_session_loopback_allowed(server_url):
    """With loopback allowed, a loopback server is reached over plain http."""
    response = _get(LOOPBACK, f"{server_url}/doc")

    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_session_loopback_blocked(server_url):
    """Without loopback allowed, loopback is blocked whatever the scheme."""
    assert _blocked(STRICT, f"{server_url}/doc").code == "insecure_url"
    assert _blocked(STRICT, "https://127.0.0.1:1/doc").code == "blocked_address"
    assert _blocked(STRICT, "https://[::1]:1/doc").code == "blocked_address"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://100.64.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/x",
        "https://[fd00::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
        "https://240.0.0.1/x",
    ],
)
def test_session_private_addresses_blocked(url):
    """Private, shared, link-local, metadata, reserved and multicast hosts are blocked."""
    error = _blocked(LOOPBACK, url)

    assert error.code == "blocked_address"
    assert "HPASS_OUTBOUND_ALLOWED_NETWORKS" in str(error)


def test_session_http_to_private_blocked():
    """Plain http to a non-loopback address is blocked even with loopback allowed."""
    policy = OutboundPolicy(
        allow_loopback=True,
        allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),),
    )

    assert _blocked(policy, "http://10.20.0.1:1/x").code == "insecure_url"


def test_policy_allowed_network():
    """A network listed in the configuration is allowed, and only that network."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))

    assert policy.address_allowed(ipaddress.ip_address("10.20.3.4"))
    assert not policy.address_allowed(ipaddress.ip_address("10.21.0.1"))
    assert not policy.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert policy.address_allowed(ipaddress.ip_address("93.184.215.14"))


# Each IPv6 address below carries the IPv4 address beside it. These are checked
# as values only: no test opens a connection to any of them.
EMBEDDED_NON_PUBLIC = [
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::c0a8:101", "192.168.1.1"),
    ("2002:a00:1::", "10.0.0.1"),
    ("2002:a9fe:a9fe::1", "169.254.169.254"),
    ("2002:7f00:1::", "127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
    ("::a00:1", "10.0.0.1"),
    ("::a9fe:a9fe", "169.254.169.254"),
    ("::7f00:1", "127.0.0.1"),
    ("::ffff:0:a00:1", "10.0.0.1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
]


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_NON_PUBLIC)
def test_policy_embedded_ipv4_extracted(address, ipv4):
    """The IPv4 address inside NAT64, 6to4, Teredo and ::/96 forms is found."""
    embedded = policy_module.embedded_ipv4_addresses(ipaddress.ip_address(address))

    assert ipaddress.ip_address(ipv4) in embedded


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_NON_PUBLIC)
def test_policy_embedded_non_public_blocked(address, ipv4):
    """An IPv6 address carrying a non-public IPv4 address is blocked in every mode."""
    parsed = ipaddress.ip_address(address)

    assert not STRICT.address_allowed(parsed)
    assert not LOOPBACK.address_allowed(parsed)


@pytest.mark.parametrize(
    "address",
    ["64:ff9b:1::a00:1", "64:ff9b:1::808:808", "64:ff9b:1:ffff::1"],
)
def test_policy_local_nat64_blocked(address):
    """The local-use NAT64 prefix 64:ff9b:1::/48 is never treated as public."""
    assert not STRICT.address_allowed(ipaddress.ip_address(address))


def test_policy_local_nat64_listed():
    """An operator who lists the local-use NAT64 prefix can allow it."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("64:ff9b:1::/48"),))

    assert policy.address_allowed(ipaddress.ip_address("64:ff9b:1::a00:1"))


@pytest.mark.parametrize(
    "address", ["64:ff9b::5db8:d70e", "::ffff:93.184.215.14", "2606:4700::1"]
)
def test_policy_public_ipv6_allowed(address):
    """NAT64 of a public IPv4 address and plain public IPv6 addresses pass."""
    assert STRICT.address_allowed(ipaddress.ip_address(address))


def test_policy_embedded_listed_network():
    """An embedded IPv4 address in a listed network is allowed, as plain IPv4 is."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))

    assert policy.address_allowed(ipaddress.ip_address("64:ff9b::a14:304"))
    assert not policy.address_allowed(ipaddress.ip_address("64:ff9b::a15:1"))


@pytest.mark.parametrize(
    "address", ["::", "::1", "2606:4700::1", "93.184.215.14", "fd00::a00:1"]
)
def test_policy_no_embedded_ipv4(address):
    """Addresses without an IPv4 part, and :: and ::1, report none."""
    assert policy_module.embedded_ipv4_addresses(ipaddress.ip_address(address)) == []


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_NON_PUBLIC)
def test_check_addresses_embedded_error(address, ipv4):
    """A resolved address carrying a non-public IPv4 address gets the block error."""
    with pytest.raises(OutboundBlocked) as raised:
        STRICT.check_addresses(
            [ipaddress.ip_address(address)],
            url="https://portfolio.test/",
            plain_http=False,
        )

    assert raised.value.code == "blocked_address"
    assert "non-public address" in str(raised.value)
    assert "HPASS_OUTBOUND_ALLOWED_NETWORKS" in str(raised.value)


def test_check_url_now_nat64_metadata(fake_dns):
    """A name resolving to NAT64 of the metadata address is blocked before connecting."""
    answers, lookups = fake_dns
    answers["portfolio.test"] = [["64:ff9b::a9fe:a9fe"]]

    with pytest.raises(OutboundBlocked) as raised:
        STRICT.check_url_now("https://portfolio.test/wallet")

    assert raised.value.code == "blocked_address"
    assert raised.value.address == "64:ff9b::a9fe:a9fe"
    assert lookups == ["portfolio.test"]


def test_policy_from_settings():
    """The policy takes loopback mode and allowed networks from configuration."""

    class Settings:
        loopback_dev = True
        outbound_allowed_networks = ["10.20.0.0/16"]

    policy = OutboundPolicy.from_settings(Settings())

    assert policy.allow_loopback
    assert policy.allowed_networks == (ipaddress.ip_network("10.20.0.0/16"),)


def test_redirect_to_metadata_blocked(server_url):
    """A redirect to a metadata address is blocked at that hop."""
    error = _blocked(LOOPBACK, f"{server_url}/to-metadata")

    assert error.code == "blocked_address"
    assert "169.254.169.254" in error.url


def test_redirect_to_private_blocked(server_url):
    """A redirect to a private https address is blocked at that hop."""
    error = _blocked(LOOPBACK, f"{server_url}/to-private")

    assert error.code == "blocked_address"
    assert "10.0.0.5" in error.url


def test_dns_name_to_loopback(server_url, fake_dns):
    """A name resolving to loopback is blocked unless loopback is allowed."""
    answers, _ = fake_dns
    answers["badges.test"] = [["127.0.0.1"]]
    port = server_url.rsplit(":", 1)[1]

    blocked = _blocked(STRICT, f"https://badges.test:{port}/doc")
    response = _get(LOOPBACK, f"http://badges.test:{port}/doc")

    assert blocked.code == "blocked_address"
    assert "127.0.0.1" in str(blocked)
    assert response.json() == {"ok": True}


def test_dns_mixed_answer_blocked(fake_dns):
    """A name with one public and one private address is blocked."""
    answers, _ = fake_dns
    answers["mixed.test"] = [["93.184.215.14", "10.0.0.5"]]

    assert _blocked(STRICT, "https://mixed.test/x").code == "blocked_address"


def test_dns_answer_pinned(server_url, fake_dns):
    """The connection uses the answer that was checked; a changed answer is blocked."""
    answers, lookups = fake_dns
    answers["rebind.test"] = [["127.0.0.1"], ["10.0.0.5"]]
    port = server_url.rsplit(":", 1)[1]

    with GuardedSession(LOOPBACK, QUICK) as session:
        first = session.get(f"http://rebind.test:{port}/doc")
        again = session.get(f"http://rebind.test:{port}/doc")
    blocked = _blocked(LOOPBACK, f"http://rebind.test:{port}/doc")

    assert first.status_code == 200
    assert again.status_code == 200
    assert lookups == ["rebind.test", "rebind.test"]
    assert blocked.code == "blocked_address"


def test_unresolvable_host(monkeypatch):
    """A name that does not resolve fails with a connection error naming it."""

    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(policy_module.socket, "getaddrinfo", fail)

    error = _blocked(STRICT, "https://nowhere.invalid/x", OutboundConnectionFailed)

    assert error.code == "unresolvable_host"
    assert "nowhere.invalid" in str(error)


def test_body_limit_announced(server_url):
    """A body announced larger than the limit is blocked before it is read."""
    error = _blocked(LOOPBACK, f"{server_url}/big", OutboundTooLarge)

    assert error.code == "too_large"
    assert "1000 bytes" in str(error)


def test_body_limit_while_streaming(server_url):
    """A body without Content-Length is cut off once it passes the limit."""
    error = _blocked(LOOPBACK, f"{server_url}/big-unannounced", OutboundTooLarge)

    assert error.code == "too_large"
    assert "continued past the limit" in str(error)


def test_body_limit_counts_decoded_bytes(server_url):
    """A small gzip body that expands past the limit is cut off."""
    limits = OutboundLimits(max_bytes=1024 * 1024)

    error = _blocked(LOOPBACK, f"{server_url}/gzip", OutboundTooLarge, limits)

    assert error.code == "too_large"


def test_slow_stream_hits_deadline(server_url):
    """A server that drips its body slower than the deadline is stopped."""
    limits = OutboundLimits(read_timeout_seconds=2.0, deadline_seconds=0.5)

    error = _blocked(LOOPBACK, f"{server_url}/drip", OutboundTimeout, limits)

    assert error.code == "deadline"


def test_late_stalled_body_hits_deadline():
    """Headers just before the deadline, then a stalled body: the deadline holds.

    urllib3 sets the socket's read timeout before it waits for the headers, so a
    body read that kept that timeout would end about 2.5 s after the deadline.
    """
    limits = OutboundLimits(read_timeout_seconds=30.0, deadline_seconds=3.0)

    with SlowBodyServer(b"x" * 100, mode="stall", headers_after=2.5) as server:
        started = time.monotonic()
        error = _blocked(LOOPBACK, server.url, OutboundTimeout, limits)
        elapsed = time.monotonic() - started

    # 2 s of margin for a loaded machine.
    assert elapsed < 3.0 + 2.0
    assert error.code == "deadline"
    assert "deadline of 3 s" in str(error)


def test_stalled_body_hits_read_timeout():
    """A body that stops arriving before the deadline ends with the read timeout."""
    limits = OutboundLimits(read_timeout_seconds=0.3, deadline_seconds=30.0)

    with SlowBodyServer(b"x" * 100, mode="stall") as server:
        started = time.monotonic()
        error = _blocked(LOOPBACK, server.url, OutboundTimeout, limits)
        elapsed = time.monotonic() - started

    assert elapsed < 0.3 + 2.0
    assert error.code == "timeout"
    assert "stopped arriving" in str(error)


def test_reused_connection_gets_full_read_timeout(server_url):
    """A short timeout set for one body's reads does not carry over to the next
    request on the same pooled connection."""
    limits = OutboundLimits(read_timeout_seconds=3.0, deadline_seconds=10.0)

    with GuardedSession(LOOPBACK, limits) as session:
        first = session.get(f"{server_url}/doc", timeout=0.2)
        # The server waits 1.5 s before its headers, longer than the first timeout.
        second = session.get(f"{server_url}/slow-headers")

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.content == b"{}"


def test_slow_headers_hit_read_timeout(server_url):
    """A server that answers later than the read timeout gives a timeout error."""
    limits = OutboundLimits(read_timeout_seconds=0.3)

    error = _blocked(LOOPBACK, f"{server_url}/slow-headers", OutboundTimeout, limits)

    assert error.code == "timeout"


def test_caller_timeout_only_shortens(server_url):
    """A caller's timeout above the limits does not lengthen them."""
    limits = OutboundLimits(read_timeout_seconds=0.3)

    error = _blocked(
        LOOPBACK, f"{server_url}/slow-headers", OutboundTimeout, limits, timeout=60
    )

    assert error.code == "timeout"


def test_redirect_followed(server_url):
    """A redirect within the limit is followed and recorded in the history."""
    response = _get(LOOPBACK, f"{server_url}/once")

    assert response.json() == {"ok": True}
    assert [hop.status_code for hop in response.history] == [302]


def test_redirect_limit(server_url):
    """A redirect loop stops after the redirect limit."""
    error = _blocked(LOOPBACK, f"{server_url}/loop")

    assert error.code == "too_many_redirects"


def test_redirects_blocked_when_forbidden(server_url):
    """With max_redirects 0, as for token endpoints, any redirect is blocked."""
    limits = OutboundLimits(max_redirects=0)

    error = _blocked(LOOPBACK, f"{server_url}/once", limits=limits)

    assert error.code == "redirect_not_allowed"


def test_redirect_returned_when_not_followed(server_url):
    """allow_redirects=False returns the 3xx response to the caller."""
    response = _get(LOOPBACK, f"{server_url}/once", allow_redirects=False)

    assert response.status_code == 302
    assert response.headers["Location"] == "/doc"


def test_post_redirect_becomes_get(server_url):
    """A 302 after a POST is followed with a GET and no body."""
    with GuardedSession(LOOPBACK, QUICK) as session:
        response = session.post(f"{server_url}/form", data={"a": "b"})

    assert response.json() == {"ok": True}
    assert response.request.method == "GET"
    assert response.request.body is None


def test_redirect_drops_authorization(server_url, fake_dns):
    """A redirect to another host does not carry the Authorization header."""
    answers, _ = fake_dns
    answers["other.test"] = [["127.0.0.1"]]

    same_host = _get(
        LOOPBACK, f"{server_url}/headers", headers={"Authorization": "Bearer s3cret"}
    )
    other_host = _get(
        LOOPBACK,
        f"{server_url}/to-other-host",
        headers={"Authorization": "Bearer s3cret"},
    )

    assert same_host.content == b"Bearer s3cret"
    assert other_host.status_code == 200
    assert other_host.content == b""


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/x", "https://"],
)
def test_scheme_other_than_http_blocked(url):
    """Only http(s) URLs with a host are sent."""
    assert _blocked(LOOPBACK, url).code == "invalid_url"


def test_scheme_http_blocked_without_loopback():
    """Plain http is blocked outright when loopback is not allowed."""
    assert _blocked(STRICT, "http://example.test/x").code == "insecure_url"


def test_url_credentials_blocked():
    """A URL carrying a user name and password is blocked, and neither is shown."""
    error = _blocked(LOOPBACK, "https://admin:hunter2@badges.test/x")

    assert error.code == "invalid_url"
    assert "hunter2" not in str(error)
    assert "admin" not in str(error)


def test_errors_hide_query_values(caplog):
    """Query values, where some services put keys, never reach errors or logs."""
    caplog.set_level(logging.WARNING, logger="badge_engine.outbound.session")

    error = _blocked(STRICT, "https://10.0.0.5/api?wstoken=abc123secret&id=4")

    assert "abc123secret" not in str(error)
    assert "wstoken=REDACTED" in str(error)
    assert "abc123secret" not in caplog.text
    assert "blocked_address" in caplog.text


def test_redact_url():
    """Redaction drops user info and query values and keeps the rest."""
    shown = redact_url("https://u:p@lms.example.org:8443/a/b?key=v&x=1#frag")

    assert shown == "https://lms.example.org:8443/a/b?key=REDACTED&x=REDACTED"


def test_error_subclasses_requests():
    """Timeouts and connection failures are also the matching requests errors."""
    import requests

    assert issubclass(OutboundTimeout, requests.Timeout)
    assert issubclass(OutboundConnectionFailed, requests.ConnectionError)
    assert not issubclass(OutboundBlocked, requests.RequestException)


def test_connection_blocked(server_url):
    """A closed loopback port fails with a connection error, not a block."""
    error = _blocked(LOOPBACK, "http://127.0.0.1:9/x", OutboundConnectionFailed)

    assert error.code == "connection_failed"


def test_unknown_keyword_rejected(server_url):
    """An option the guard cannot honour, such as proxies, is a TypeError."""
    with GuardedSession(LOOPBACK, QUICK) as session:
        with pytest.raises(TypeError):
            session.get(f"{server_url}/doc", proxies={"https": "http://127.0.0.1:9"})


def test_document_fetcher_status(server_url):
    """The verifier's document fetch turns a non-2xx status into an error."""
    with pytest.raises(OutboundStatusError) as raised:
        DocumentFetcher(LOOPBACK).get(f"{server_url}/nope")

    assert raised.value.code == "http_404"
    assert raised.value.status == 404


def test_document_fetcher_body(server_url):
    """The verifier's document fetch returns the body and final URL."""
    fetched = DocumentFetcher(LOOPBACK).get(f"{server_url}/once")

    assert fetched.body == b'{"ok": true}'
    assert fetched.url == f"{server_url}/doc"
    assert isinstance(DocumentFetcher().get, object)


def test_error_base_class():
    """Every guard error is an OutboundError carrying url, code and hint."""
    error = OutboundBlocked("Refused", url="https://x.test/", code="c", hint="Fix it")

    assert isinstance(error, OutboundError)
    assert str(error) == "Refused (url='https://x.test/'). Fix it"
