"""Inputs the fuzzers found that once crashed a parser, kept as fixed cases."""

from __future__ import annotations

import pytest

from connectors.moodle.events import parse_xapi_hints
from lti_tool.config import ConfigError, load_settings
from tests.security.fuzzing import load_fixture


def test_xapi_grouping_not_list():
    """An xAPI statement whose grouping is a number is skipped, not a TypeError."""
    statement = load_fixture("moodle/xapi_statement_module_completed.json")[0]
    statement["context"]["contextActivities"]["grouping"] = 0
    statement["object"]["id"] = "not a course URL"

    hints, skipped = parse_xapi_hints([statement])

    assert hints == []
    assert skipped == 1


@pytest.mark.parametrize("raw", ["inf", "1e400", "nan", "-inf"])
def test_settings_reject_non_finite(tmp_path, raw):
    """A non-finite number of attempts or seconds is a ConfigError, not an OverflowError."""
    with pytest.raises(ConfigError, match="finite"):
        load_settings(
            environ={"HPASS_OUTBOX_MAX_ATTEMPTS": raw},
            overrides={"instance_path": tmp_path},
        )
