"""Two providers, "alpha" (the attacker's) and "beta" (the target), for the security tests."""

from __future__ import annotations

# The launch fuzz tests register the token platform as the LTI tests do.
from tests.lti_tool.lti.conftest import registration  # noqa: F401

# The page tests already seed two full tenants; the security tests reuse that seed.
from tests.lti_tool.pages.conftest import moodle_url, tenants  # noqa: F401
