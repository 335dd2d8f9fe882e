"""Row ids typed into forms, query strings and URLs, checked against the id range."""

from __future__ import annotations

# Largest signed 64-bit integer: no row id is larger, SQLite cannot bind a larger
# Python int, and it is PostgreSQL's largest bigint.
ROW_ID_MAX = 2**63 - 1
_ROW_ID_DIGITS = len(str(ROW_ID_MAX))


def parse_row_id(text: str | None) -> int | None:
    """Return `text` as a row id, or None when it cannot be one.

    Only ASCII digits from 0 to ROW_ID_MAX are accepted, with white space around
    them ignored. `int()` would also take signs, underscores and other scripts'
    digits, and a number over ROW_ID_MAX would fail in the database driver. So a
    caller treats None as an unknown id, and a blank field separately when blank
    has a meaning of its own.
    """
    digits = (text or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits.lstrip("0")) > _ROW_ID_DIGITS:
        return None
    number = int(digits)
    if number > ROW_ID_MAX:
        return None
    return number


# Maximum length of a typed id that a message or log line repeats. A row id has at
# most 19 digits, so a longer text is shown cut, ending in "…".
TYPED_ID_SHOWN_MAX = 40


def shortened(typed_id: str) -> str:
    """Return a typed id cut to TYPED_ID_SHOWN_MAX characters for a message."""
    if len(typed_id) <= TYPED_ID_SHOWN_MAX:
        return typed_id
    return typed_id[: TYPED_ID_SHOWN_MAX - 1] + "…"
