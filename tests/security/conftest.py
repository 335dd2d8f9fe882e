"""Two providers, "alpha" (the attacker's) and "beta" (the target), for the security tests."""

from __future__ import annotations

# The page tests already seed two full tenants; the security tests reuse that seed.
from tests.lti_tool.pages.conftest import moodle_url, tenants  # noqa: F401
