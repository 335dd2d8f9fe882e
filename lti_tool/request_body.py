"""Flask's request class with an exact size limit for bodies sent without Content-Length.

A chunked request (`Transfer-Encoding: chunked`) has no Content-Length, so Werkzeug
cannot reject it before reading. When the server ends the body itself (granian and
Werkzeug's server set `wsgi.input_terminated`), Werkzeug 3.1 wraps the input in a
stream that stops at MAX_CONTENT_LENGTH. But `read()` on that stream returns the
first MAX_CONTENT_LENGTH bytes without an error, so a view saw a cut-off body and
rejected it as invalid JSON (400) instead of too large (413).

`BridgeRequest` reads such a body itself, up to one byte past the limit, and raises
`RequestEntityTooLarge` when that byte exists. The app's 413 handler then returns
the response it returns for a Content-Length over the limit, and no view has run.
"""

from __future__ import annotations

import io
import typing as t

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property

READ_SIZE = 64 * 1024


def read_streamed_body(stream: t.IO[bytes], limit: int) -> bytes:
    """Read a body of unknown length, or raise RequestEntityTooLarge past `limit` bytes.

    At most `limit + 1` bytes are read, so an endless body costs no more memory than
    one at the limit.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(READ_SIZE, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge()

    return b"".join(chunks)


class BridgeRequest(Request):
    """Flask's request, which rejects a streamed body over MAX_CONTENT_LENGTH with 413."""

    @cached_property
    def stream(self) -> t.IO[bytes]:
        limit = self.max_content_length
        streamed = (
            self.content_length is None
            and limit is not None
            and not self.shallow
            and "wsgi.input_terminated" in self.environ
        )
        if not streamed:
            return super().stream

        return io.BytesIO(read_streamed_body(self.environ["wsgi.input"], limit))
