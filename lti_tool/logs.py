"""Structured logging: JSON lines in production, readable lines in a terminal.

The standard library's loggers all flow through structlog's formatter, so a log line
from pylti1p3 or Celery carries the same bound ids (request, task, provider) as ours.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

_configured = False
ROUTINE_CELERY_LOGGERS = ("celery.beat", "celery.app.trace", "celery.worker.strategy")

# Paths whose last segment is a secret that opens something: a password reset link
# (valid 1 hour), an invitation (7 days) and a dynamic registration URL (7 days).
TOKEN_PATH_PREFIXES = ("/account/reset/", "/account/invitation/", "/lti/register/")
REDACTED = "[redacted]"
_TOKEN_SEGMENT = re.compile(
    "("
    + "|".join(re.escape(prefix) for prefix in TOKEN_PATH_PREFIXES)
    + r")[^/?#\s'\"]+"
)
# Query parameters that carry a secret: the Canvas webhook's token, the LTI
# registration_token, OAuth codes and access tokens.
_SECRET_QUERY_VALUE = re.compile(
    r"([?&](?:[\w.-]*token|[\w.-]*secret|code|password)=)[^&#\s'\"]+", re.IGNORECASE
)


def redact_url_secrets(_logger, _method_name, event_dict: dict) -> dict:
    """Replace secret path segments and query values in a log line's string values.

    The bridge's handler runs it on its own lines and on other libraries' lines (a
    server's access line contains the request line), so a path is redacted under
    any key. Strings nested in a dict or list value are not searched.
    """
    for key, value in event_dict.items():
        if isinstance(value, str) and ("/" in value or "=" in value):
            redacted = _TOKEN_SEGMENT.sub(r"\1" + REDACTED, value)
            event_dict[key] = _SECRET_QUERY_VALUE.sub(r"\1" + REDACTED, redacted)
    return event_dict


def configure_logging(log_format: str = "console", level: str = "INFO") -> None:
    global _configured

    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # Last before rendering, so a traceback's text is covered too.
            redact_url_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_hpass", False):
            root.removeHandler(old)
    handler._hpass = True
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Celery logs each task received and finished, and the scheduler each task it
    # sends: several idle lines every few seconds. They show at DEBUG; a failing
    # task is still logged as an error.
    routine = logging.DEBUG if str(level).upper() == "DEBUG" else logging.WARNING
    for name in ROUTINE_CELERY_LOGGERS:
        logging.getLogger(name).setLevel(routine)

    if not _configured:
        structlog.configure(
            # Dropping a line below the level first skips the other processors,
            # which cost as much as a webhook's own work on the intake path.
            processors=[
                structlog.stdlib.filter_by_level,
                *shared,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    _configured = True


def get_logger(name: str):
    return structlog.get_logger(name)
