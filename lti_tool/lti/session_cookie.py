"""The Flask session cookie that a launch sets, written without Flask's tagged JSON.

Flask's session interface (Flask 3.1, itsdangerous 2.2) serializes with its
tagged-JSON serializer, which walks every value to tag tuples, bytes, markup, UUIDs
and dates, and then compresses the JSON with zlib when that makes it shorter. A launch's session holds only strings, integers, None and lists of
strings, which the tagged-JSON serializer writes as plain JSON. So the writer
below signs the plain JSON with the interface's own itsdangerous signer, without
compression. The result is a cookie in the format Flask reads (itsdangerous
`URLSafeTimedSerializer`, HMAC with the app's secret key, no leading `.` when
uncompressed), and a session with any other value type goes through Flask's
serializer instead.
"""

from __future__ import annotations

import base64
import json

from flask import Flask
from werkzeug.http import dump_cookie

_PLAIN_SCALARS = (str, int, float, bool, type(None))


class SessionCookieWriter:
    """Builds the Set-Cookie header of a new Flask session for one app.

    The cookie's name and attributes are read from the app's session interface once,
    because the app's configuration does not change after startup.
    """

    def __init__(self, app: Flask) -> None:
        interface = app.session_interface
        self._serializer = interface.get_signing_serializer(app)
        if self._serializer is None:
            raise ValueError("the app has no secret key, so sessions cannot be signed")
        self._signer = self._serializer.make_signer(self._serializer.salt)
        empty = interface.session_class()
        self._attributes = {
            "key": interface.get_cookie_name(app),
            # A new session is not permanent, so the cookie ends with the browser
            # session, as Flask sets it.
            "expires": interface.get_expiration_time(app, empty),
            "httponly": interface.get_cookie_httponly(app),
            "domain": interface.get_cookie_domain(app),
            "path": interface.get_cookie_path(app),
            "secure": interface.get_cookie_secure(app),
            "partitioned": interface.get_cookie_partitioned(app),
            "samesite": interface.get_cookie_samesite(app),
            # Flask warns above this size, as for the cookies it sets itself.
            "max_size": app.config["MAX_COOKIE_SIZE"],
        }

    def value(self, data: dict) -> str:
        """Return the signed cookie value of a session holding `data`."""
        if not all(_is_plain(item) for item in data.values()):
            return self._serializer.dumps(data)
        payload = json.dumps(data, separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(payload).rstrip(b"=")
        return self._signer.sign(encoded).decode()

    def header(self, data: dict) -> str:
        """Return the Set-Cookie header value of a session holding `data`."""
        return dump_cookie(value=self.value(data), **self._attributes)


def _is_plain(value: object) -> bool:
    # A dict of one key such as " t" would be untagged on load, and a tuple would
    # come back as a list, so both go through Flask's serializer.
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if type(value) is list:
        return all(isinstance(item, _PLAIN_SCALARS) for item in value)
    return False
