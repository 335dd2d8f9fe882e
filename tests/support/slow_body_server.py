"""An HTTP server on loopback that sends its response headers, then its body slowly.

It stands for an LMS whose web server responds to the request but then stalls or
trickles the body, which only a timeout applied while the body is read can end.
"""

from __future__ import annotations

import socket
import threading

# How the body follows the headers: all at once, its first byte and then nothing
# until the server stops, or one byte every `byte_interval` seconds.
BODY_MODES = ("whole", "stall", "trickle")


class SlowBodyServer:
    """Serves one fixed response on 127.0.0.1, with the headers and body delayed.

    Each request gets status 200, `headers_after` seconds after the request arrived,
    with a Content-Length of the whole body, which then arrives as `mode` sets
    (see BODY_MODES). `accepted` counts the connections taken, and `bytes_sent`
    the body bytes written over all connections.
    """

    def __init__(
        self,
        body: bytes,
        *,
        mode: str,
        headers_after: float = 0.0,
        byte_interval: float = 0.1,
        content_type: str = "application/json",
    ) -> None:
        if mode not in BODY_MODES:
            raise ValueError(f"mode must be one of {BODY_MODES}, got {mode!r}")
        self.body = body
        self.mode = mode
        self.headers_after = headers_after
        self.byte_interval = byte_interval
        self.content_type = content_type
        self.accepted = 0
        self.bytes_sent = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SlowBodyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            thread = threading.Thread(
                target=self._respond, args=(connection,), daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _respond(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._read_request_head(connection)
                if self._stopping.wait(self.headers_after):
                    return
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\n"
                    + f"Content-Type: {self.content_type}\r\n".encode()
                    + f"Content-Length: {len(self.body)}\r\n".encode()
                    + b"Connection: close\r\n\r\n"
                )
                self._send_body(connection)
            except OSError:
                # The client hung up, which the timeout tests expect it to do.
                return

    def _read_request_head(self, connection: socket.socket) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            data = connection.recv(4096)
            if not data:
                raise ConnectionResetError("the client closed before its request")
            received += data

    def _send_body(self, connection: socket.socket) -> None:
        if self.mode == "whole":
            connection.sendall(self.body)
            self.bytes_sent += len(self.body)
            return

        if self.mode == "stall":
            connection.sendall(self.body[:1])
            self.bytes_sent += 1
            self._stopping.wait()
            return

        for index in range(len(self.body)):
            if self._stopping.wait(self.byte_interval):
                return
            connection.sendall(self.body[index : index + 1])
            self.bytes_sent += 1
