"""Canvas ids: global ids (shard x 10^13 + local id) and local ids in one form.

Canvas numbers rows per database shard. The REST API answers with local ids, while
Live Events often carry global ids, for example user 123 on shard 1 as
10000000000123. The bridge stores every id as the local id in decimal, which is
only unambiguous for ids on the connection's own shard, so a global id from any
other shard is rejected instead of guessed.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.canvas.errors import CanvasEventInvalid

SHARD_FACTOR = 10**13
# Canvas ids are signed 64-bit database ids.
MAX_CANVAS_ID = 2**63 - 1
_DECIMAL_PATTERN = re.compile(r"[0-9]{1,19}")
_DIGITS_PATTERN = re.compile(r"[0-9]+")


def parse_id(value: Any, field: str) -> int:
    """Parse a Canvas id sent as an integer or a decimal string."""
    if isinstance(value, bool):
        value = None
    if _out_of_range(value):
        # The value is not echoed: it may be thousands of digits long.
        raise CanvasEventInvalid(
            f"Live Event field {field} is a number of {_digit_count(value)} digits, "
            f"larger than {MAX_CANVAS_ID}, the largest Canvas id; send Canvas's id "
            f"unchanged.",
            field=field,
            received=f"{_digit_count(value)} digits",
        )
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and _DECIMAL_PATTERN.fullmatch(value) and int(value) > 0:
        return int(value)

    raise CanvasEventInvalid(
        f"Live Event field {field} must be a positive Canvas id (an integer or a "
        f"decimal string), got {value!r}.",
        field=field,
        received=value,
    )


def _digit_count(value: Any) -> int:
    return len(str(abs(value))) if isinstance(value, int) else len(value)


def _out_of_range(value: Any) -> bool:
    if isinstance(value, int):
        return value > MAX_CANVAS_ID
    if isinstance(value, str) and _DIGITS_PATTERN.fullmatch(value):
        return len(value) > 19 or int(value) > MAX_CANVAS_ID
    return False


def shard_of(canvas_id: int) -> int:
    """Return the shard of a global id, or 0 for a local id."""
    return canvas_id // SHARD_FACTOR


def local_id(value: Any, *, field: str, home_shard: int | None) -> str:
    """Return the local id of `value` in decimal.

    A global id must be on `home_shard`, the shard of the provider's root account.
    With `home_shard` None only local ids are accepted.
    """
    canvas_id = parse_id(value, field)
    shard = shard_of(canvas_id)
    if shard == 0:
        return str(canvas_id)

    if shard != home_shard:
        expected = "no global ids" if home_shard is None else f"shard {home_shard}"
        raise CanvasEventInvalid(
            f"Live Event field {field} carries global id {canvas_id} on shard "
            f"{shard}, but this connection's root account is on {expected}. Check "
            f"that the Data Services subscription belongs to this connection's "
            f"Canvas account.",
            field=field,
            received=value,
        )
    return str(canvas_id % SHARD_FACTOR)
