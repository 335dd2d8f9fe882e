"""Shared hypothesis strategies and budgets for the fuzz tests.

The CI budget is `FUZZ_EXAMPLES` examples per target. A longer run sets the
environment variable HPASS_FUZZ_EXAMPLES, for example to 5000, and keeps the same
per-example deadline.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("HPASS_FUZZ_EXAMPLES", "60"))
# A single example that runs longer than this fails the test as a hang.
DEADLINE_MS = 2000
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=DEADLINE_MS,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def _paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, prefix + (index,))
    return found


@st.composite
def mutated(draw, document: Any) -> Any:
    """Draw a copy of a real document with one to three values replaced or removed."""
    result = copy.deepcopy(document)
    paths = [path for path in _paths(result) if path]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = result
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    return result
