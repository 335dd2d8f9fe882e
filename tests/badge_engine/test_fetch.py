"""The guarded HTTP client: address checks, size and redirect limits, timeouts."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from badge_engine.fetch import FetchError, GuardedFetcher


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server interface
        if self.path == "/doc":
            self._send(200, b'{"ok": true}')
        elif self.path == "/big":
            self._send(200, b"x" * 5000)
        elif self.path == "/big-unannounced":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"{}")
        else:
            self._send(404, b"missing")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _code(fetcher, url):
    with pytest.raises(FetchError) as caught:
        fetcher.get(url)
    return caught.value.code


def test_fetch_loopback_in_dev_mode(server_url):
    """Loopback development mode reaches a loopback server over plain http."""
    fetched = GuardedFetcher(allow_loopback=True).get(f"{server_url}/doc")

    assert fetched.body == b'{"ok": true}'
    assert fetched.status_code == 200


def test_fetch_loopback_blocked(server_url):
    """Without loopback development mode, loopback addresses are never contacted."""
    assert _code(GuardedFetcher(), f"{server_url}/doc") == "insecure_url"
    assert _code(GuardedFetcher(), "https://127.0.0.1:1/doc") == "blocked_address"
    assert _code(GuardedFetcher(), "https://[::1]:1/doc") == "blocked_address"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x",
        "https://192.168.1.1/x",
        "https://172.16.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/x",
        "https://[fd00::1]/x",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
    ],
)
def test_fetch_private_addresses_blocked(url):
    """Private, link-local, metadata, unspecified and multicast hosts are blocked."""
    fetcher = GuardedFetcher(allow_loopback=True)

    assert _code(fetcher, url) == "blocked_address"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "https://"])
def test_fetch_other_schemes(url):
    """Only http(s) URLs with a host are fetched."""
    assert _code(GuardedFetcher(allow_loopback=True), url) == "invalid_url"


def test_fetch_size_limit(server_url):
    """A body over the limit is rejected, with or without Content-Length."""
    fetcher = GuardedFetcher(allow_loopback=True, max_bytes=1000)

    assert _code(fetcher, f"{server_url}/big") == "too_large"
    assert _code(fetcher, f"{server_url}/big-unannounced") == "too_large"


def test_fetch_redirect_limit(server_url):
    """A redirect loop stops after the redirect limit."""
    fetcher = GuardedFetcher(allow_loopback=True, max_redirects=2)

    assert _code(fetcher, f"{server_url}/loop") == "too_many_redirects"


def test_fetch_http_error(server_url):
    """A non-2xx status is an error carrying the status code."""
    assert (
        _code(GuardedFetcher(allow_loopback=True), f"{server_url}/nope") == "http_404"
    )


def test_fetch_timeout(server_url):
    """A server slower than the timeout gives a timeout error."""
    fetcher = GuardedFetcher(allow_loopback=True, timeout_seconds=0.2)

    assert _code(fetcher, f"{server_url}/slow") == "timeout"
