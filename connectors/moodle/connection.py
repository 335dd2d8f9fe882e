"""Test a Moodle connection: reach the site, and check the token's web service functions.

`core_webservice_get_site_info` returns, in `functions`, every function of the
external service that the token belongs to, so one call shows which of the
functions in `REQUIRED_FUNCTIONS` an admin still has to add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.moodle.client import REQUIRED_FUNCTIONS, MoodleClient
from connectors.moodle.errors import MoodleError, MoodleTokenInvalid, MoodleUnavailable

ADD_FUNCTION_HINT = (
    "Add it to the token's external service under Site administration > Server > "
    "Web services > External services > Functions."
)


@dataclass(frozen=True)
class MissingFunction:
    """A web service function the token cannot call, and what the bridge needs it for."""

    name: str
    purpose: str

    @property
    def fix(self) -> str:
        return f"{self.name} is needed to {self.purpose}. {ADD_FUNCTION_HINT}"


@dataclass(frozen=True)
class ConnectionTestResult:
    """Outcome of "Test connection".

    `ok` is True when the site answered and the token can call every required
    function. `error` is the message of the Moodle error that stopped the test,
    `token_invalid` is True when that error was Moodle's `invalidtoken`, and
    `site_unavailable` is True when the site could not be reached or answered with
    a timeout, HTTP 5xx or 429 (MoodleUnavailable).
    """

    site_url: str
    ok: bool
    site_name: str | None = None
    release: str | None = None
    missing_functions: tuple[MissingFunction, ...] = ()
    error: str | None = None
    errorcode: str | None = None
    token_invalid: bool = False
    site_unavailable: bool = False
    advice: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "site_url": self.site_url,
            "ok": self.ok,
            "site_name": self.site_name,
            "release": self.release,
            "missing_functions": [
                {"name": missing.name, "purpose": missing.purpose, "fix": missing.fix}
                for missing in self.missing_functions
            ],
            "error": self.error,
            "errorcode": self.errorcode,
            "token_invalid": self.token_invalid,
            "site_unavailable": self.site_unavailable,
            "advice": list(self.advice),
        }


def test_connection(client: MoodleClient) -> ConnectionTestResult:
    """Call `core_webservice_get_site_info` and list each required function missing.

    Never raises a MoodleError: a failure is a result whose `error` names the next step.
    """
    try:
        info = client.get_site_info()
    except MoodleError as error:
        return ConnectionTestResult(
            site_url=client.site_url,
            ok=False,
            error=str(error),
            errorcode=error.errorcode,
            token_invalid=isinstance(error, MoodleTokenInvalid),
            site_unavailable=isinstance(error, MoodleUnavailable),
        )

    allowed = {
        entry.get("name")
        for entry in info.get("functions") or []
        if isinstance(entry, dict)
    }
    missing = tuple(
        MissingFunction(name, purpose)
        for name, purpose in REQUIRED_FUNCTIONS.items()
        if name not in allowed
    )
    advice = _feature_advice(info)

    return ConnectionTestResult(
        site_url=client.site_url,
        ok=not missing and not advice,
        site_name=info.get("sitename"),
        release=info.get("release"),
        missing_functions=missing,
        advice=advice,
    )


# Prevent pytest from collecting the function above as a test when a test imports it.
test_connection.__test__ = False


def _feature_advice(info: dict[str, Any]) -> tuple[str, ...]:
    features = {
        entry.get("name"): entry.get("value")
        for entry in info.get("advancedfeatures") or []
        if isinstance(entry, dict)
    }
    if features.get("enablecompletion") == 0:
        return (
            (
                "Completion tracking is disabled on the site, so no completion can "
                "be read. Enable it under Site administration > Advanced features "
                "> Enable completion tracking."
            ),
        )
    return ()
