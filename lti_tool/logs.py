"""Structured logging: JSON lines in production, readable lines in a terminal.

The standard library's loggers all flow through structlog's formatter, so a log line
from pylti1p3 or Celery carries the same bound ids (request, task, provider) as ours.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping

import structlog

_configured = False
ROUTINE_CELERY_LOGGERS = ("celery.beat", "celery.app.trace", "celery.worker.strategy")
GRANIAN_ACCESS_LOGGER = "granian.access"

# Paths whose last segment is a secret that opens something: a password reset link
# (valid 1 hour), an invitation (7 days) and a dynamic registration URL (7 days).
TOKEN_PATH_PREFIXES = ("/account/reset/", "/account/invitation/", "/lti/register/")
REDACTED = "[redacted]"
# Types whose values cannot contain a secret, so they are returned unchanged.
_SCALARS = (bool, int, float, type(None))
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


def redact_text(text: str) -> str:
    """Return `text` with secret path segments and secret query values redacted."""
    if "/" not in text and "=" not in text:
        return text
    redacted = _TOKEN_SEGMENT.sub(r"\1" + REDACTED, text)
    return _SECRET_QUERY_VALUE.sub(r"\1" + REDACTED, redacted)


def redact_value(value: object, _copies: dict[int, object] | None = None) -> object:
    """Return `value` with secrets redacted in every string it contains.

    Dicts, lists and tuples are searched at any depth and copied, so the caller's
    objects are never changed. Any other object whose `repr` contains a secret (an
    exception, a URL object) is replaced by the redacted text of its `repr`, which
    is what the JSON and console renderers print for an object.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _SCALARS):
        return value
    if _copies is None:
        _copies = {}
    if isinstance(value, (dict, list)):
        # A dict or list may contain itself. Its copy is registered before it is
        # filled, so a cycle ends at the copy instead of recursing for ever.
        copy = _copies.get(id(value))
        if copy is not None:
            return copy
        if isinstance(value, dict):
            copy = {}
            _copies[id(value)] = copy
            for key, item in value.items():
                copy[redact_value(key, _copies)] = redact_value(item, _copies)
        else:
            copy = []
            _copies[id(value)] = copy
            copy.extend(redact_value(item, _copies) for item in value)
        return copy
    if isinstance(value, tuple):
        items = [redact_value(item, _copies) for item in value]
        if hasattr(value, "_fields"):
            return value._make(items)
        return tuple(items)
    text = repr(value)
    redacted = redact_text(text)
    return value if redacted == text else redacted


def redact_url_secrets(_logger, _method_name, event_dict: dict) -> dict:
    """Replace secret path segments and query values anywhere in a log line.

    The bridge's handler runs it on its own lines and on other libraries' lines (a
    server's access line contains the request line), so a path is redacted under
    any key and inside dict, list and tuple values at any depth.
    """
    for key, value in event_dict.items():
        if isinstance(value, str):
            if "/" in value or "=" in value:
                event_dict[key] = redact_text(value)
        elif not isinstance(value, _SCALARS):
            event_dict[key] = redact_value(value)
    return event_dict


class AccessLineRedactor(logging.Filter):
    """A filter that redacts secrets in the values of granian's access lines.

    Granian (2.8) logs each request to the `granian.access` logger, whose own handler
    prints to stdout without passing through the bridge's formatter. The record's
    message is the operator's `--access-log-fmt` and its args are a dict of the
    request's fields: `path`, `query_string` without its `?`, and headers such as
    a Referer.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {
                key: _redact_access_field(key, value)
                for key, value in record.args.items()
            }
        elif record.args:
            record.args = redact_value(record.args)
        return True


def _redact_access_field(key: str, value: object) -> object:
    if key == "query_string" and isinstance(value, str) and value:
        # The secret-value pattern needs the `?` or `&` before a parameter's name.
        return redact_text("?" + value)[1:]
    return redact_value(value)


_ACCESS_LINE_REDACTOR = AccessLineRedactor()


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
    # Granian configures its loggers before it loads the app, so this filter is
    # added after its configuration and stays. Adding it again is a no-op.
    logging.getLogger(GRANIAN_ACCESS_LOGGER).addFilter(_ACCESS_LINE_REDACTOR)
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
