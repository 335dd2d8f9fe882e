"""A requests session with a default timeout, for calls made during a launch."""

from __future__ import annotations

import requests


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._default_timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", (3.05, self._default_timeout))
        return super().request(method, url, **kwargs)


def timeout_session(timeout: float) -> requests.Session:
    return _TimeoutSession(timeout)
