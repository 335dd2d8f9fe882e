"""Read and change a test client's account cookie, as `session_transaction` does for
Flask's session cookie."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask.sessions import SecureCookieSession

from lti_tool.views.account_session import ACCOUNT_COOKIE_NAME, account_interface


@contextmanager
def account_session_transaction(client) -> Iterator[SecureCookieSession]:
    """Yield the client's account session; changes are signed back into its cookie."""
    app = client.application
    serializer = account_interface.get_signing_serializer(app)
    cookie = client.get_cookie(ACCOUNT_COOKIE_NAME)
    data = {}
    if cookie is not None and cookie.value:
        data = serializer.loads(cookie.value)
    session = SecureCookieSession(data)

    yield session

    if not session.modified:
        return
    if session:
        client.set_cookie(ACCOUNT_COOKIE_NAME, serializer.dumps(dict(session)))
    else:
        client.delete_cookie(ACCOUNT_COOKIE_NAME)
