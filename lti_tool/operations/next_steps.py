"""The next step an action's error message names, in the caller's own interface.

The same actions serve the `hpass-bridge` commands and the JSON API, so a message
that names the caller's next step takes a `NextSteps`: `CLI_STEPS` names
commands and options, `API_STEPS` names routes and body fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class NextSteps:
    """The steps that LMS errors point to, as one interface spells them.

    The templates take `{connection}` (a connection's public id) and `{course}` (an
    LMS course id). `fields` spells a badge's fields (keys course, name, description,
    criteria, alignments and rule) as the interface takes them: an option or a
    body field.
    """

    skip_check: str
    list_connections: str
    list_activities: str
    test_connection: str
    fields: Mapping[str, str]

    def field(self, name: str) -> str:
        """Return how the interface spells the badge field `name`."""
        return self.fields[name]

    def field_list(self, names: list[str]) -> str:
        """Return the fields `names` as an "a, b or c" list in the interface's spelling."""
        spelled = [self.fields[name] for name in names]
        return f"{', '.join(spelled[:-1])} or {spelled[-1]}"

    def activities(self, connection: str, course: str) -> str:
        """Return the step that lists a course's activity ids."""
        return self.list_activities.format(connection=connection, course=course)

    def test(self, connection: str) -> str:
        """Return the step that tests a stored connection."""
        return self.test_connection.format(connection=connection, course="")


CLI_STEPS = NextSteps(
    skip_check="--skip-lms-check",
    list_connections="`hpass-bridge lms list`",
    list_activities="`hpass-bridge lms activities {connection} --course {course}`",
    test_connection="`hpass-bridge lms test {connection}`",
    fields=MappingProxyType(
        {
            "course": "--course",
            "name": "--name",
            "description": "--description",
            "criteria": "--criteria",
            "alignments": "--alignments",
            "rule": "--rule",
        }
    ),
)
API_STEPS = NextSteps(
    skip_check='"skip_lms_check": true',
    list_connections="GET /api/v1/lms-connections",
    list_activities="GET /api/v1/lms-connections/{connection}/courses/{course}"
    "/activities",
    test_connection="POST /api/v1/lms-connections/{connection}/test",
    fields=MappingProxyType(
        {
            "course": "course_id",
            "name": "name",
            "description": "description",
            "criteria": "criteria",
            "alignments": "alignments",
            "rule": "award_rule",
        }
    ),
)
