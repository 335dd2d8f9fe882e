"""Log configuration: routine Celery lines stay out of the way at INFO."""

from __future__ import annotations

import logging

import pytest

from lti_tool.logs import ROUTINE_CELERY_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def _restore_levels():
    before = {name: logging.getLogger(name).level for name in ROUTINE_CELERY_LOGGERS}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_routine_celery_lines_hidden_at_info():
    """At INFO the per-task and scheduler lines are hidden, and task errors still show."""
    configure_logging("console", "INFO")

    for name in ROUTINE_CELERY_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.ERROR)


def test_routine_celery_lines_shown_at_debug():
    """At DEBUG every Celery line shows."""
    configure_logging("console", "DEBUG")

    for name in ROUTINE_CELERY_LOGGERS:
        assert logging.getLogger(name).isEnabledFor(logging.INFO)
