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
import hmac
import json
from collections.abc import Callable

from flask import Flask
from itsdangerous import TimestampSigner
from itsdangerous.encoding import base64_encode, int_to_bytes
from itsdangerous.signer import HMACAlgorithm
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
        self._sign = _prekeyed_sign(self._signer) or self._signer.sign
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
        return self._sign(encoded).decode()

    def header(self, data: dict) -> str:
        """Return the Set-Cookie header value of a session holding `data`."""
        return dump_cookie(value=self.value(data), **self._attributes)


def _prekeyed_sign(signer) -> Callable[[bytes], bytes] | None:
    """Return `signer.sign` with its derived key and HMAC key schedule made once.

    Flask's signer derives its key with HMAC and signs with HMAC through a digest
    function that Python's `hmac` runs in pure Python, twice per cookie. Here the
    derived key is computed once and each cookie copies a keyed OpenSSL HMAC. The
    output is itsdangerous 2.2's `TimestampSigner.sign`: value, separator, base64url
    timestamp, separator, base64url MAC. Returns None, so the caller keeps
    `signer.sign`, for any other signer or when the MAC differs from the signer's.
    """
    algorithm = getattr(signer, "algorithm", None)
    if not isinstance(signer, TimestampSigner) or not isinstance(
        algorithm, HMACAlgorithm
    ):
        return None
    try:
        keyed = hmac.new(signer.derive_key(), digestmod=algorithm.digest_method().name)
    except ValueError:  # a digest that OpenSSL does not name
        return None
    separator = signer.sep.encode() if isinstance(signer.sep, str) else signer.sep

    def sign(value: bytes) -> bytes:
        timestamp = base64_encode(int_to_bytes(signer.get_timestamp()))
        value = value + separator + timestamp
        mac = keyed.copy()
        mac.update(value)
        return value + separator + base64_encode(mac.digest())

    # A signer subclass that computes its MAC differently fails this check.
    sample = b"e30.check"
    mac = keyed.copy()
    mac.update(sample)
    if base64_encode(mac.digest()) != signer.get_signature(sample):
        return None
    return sign


def _is_plain(value: object) -> bool:
    # A dict of one key such as " t" would be untagged on load, and a tuple would
    # come back as a list, so both go through Flask's serializer.
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if type(value) is list:
        return all(isinstance(item, _PLAIN_SCALARS) for item in value)
    return False
