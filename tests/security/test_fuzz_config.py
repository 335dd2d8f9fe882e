"""Fuzz configuration from the environment: Settings or ConfigError, nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.config import ConfigError, load_settings
from tests.security.fuzzing import fuzz_settings

NAMES = [
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "BROKER_URL",
    "LOOPBACK_DEV",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "OUTBOX_SWEEP_SECONDS",
    "OUTBOX_LEASE_SECONDS",
    "OUTBOX_MAX_ATTEMPTS",
    "HTTP_TIMEOUT_SECONDS",
    "LMS_CHECK_TIMEOUT_SECONDS",
    "WORKER_CONCURRENCY",
    "DEMO",
    "TRUSTED_PROXIES",
    "LTI_CLOCK_LEEWAY_SECONDS",
]
VALUES = st.text(max_size=30) | st.sampled_from(
    [
        "1e400",
        "-1",
        "0",
        "nan",
        "inf",
        "true",
        "false",
        "10.0.0.0/8",
        "::1/200",
        "1" * 400,
    ]
)


@fuzz_settings
@given(environ=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6))
def test_settings_fuzz(environ, tmp_path_factory):
    """Any environment gives valid Settings or a ConfigError naming the variable."""
    instance = tmp_path_factory.mktemp("instance")
    environ = {"HPASS_" + name: value for name, value in environ.items()}
    try:
        load_settings(environ=environ, overrides={"instance_path": instance})
    except ConfigError as error:
        assert str(error)
