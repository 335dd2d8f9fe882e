"""Map the LTI roles claim to the tool's three roles: learner, instructor, admin.

Platforms send LIS v2 role URIs (`http://purl.imsglobal.org/vocab/lis/v2/...`), short
names allowed by LTI 1.3 Core for context roles ("Instructor"), and sometimes LTI 1.1
URNs (`urn:lti:role:ims/lis/Instructor`). Context (membership) roles decide the role in
the course, because an institution role says nothing about this course: Canvas sends
`institution/person#Instructor` to a teacher who takes another course as a student.
Institution and system roles count only when no context role is present, except an
administrator, who is admin everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

LEARNER = "learner"
INSTRUCTOR = "instructor"
ADMIN = "admin"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

# Context role names (and sub-role parents) and what they map to.
_CONTEXT_ROLES = {
    "Learner": LEARNER,
    "Member": LEARNER,
    "Instructor": INSTRUCTOR,
    "ContentDeveloper": INSTRUCTOR,
    "Mentor": INSTRUCTOR,
    "TeachingAssistant": INSTRUCTOR,
    "Manager": INSTRUCTOR,
    "Administrator": ADMIN,
}
_INSTITUTION_ROLES = {
    "Student": LEARNER,
    "Learner": LEARNER,
    "Instructor": INSTRUCTOR,
    "Faculty": INSTRUCTOR,
    "Staff": INSTRUCTOR,
    "Administrator": ADMIN,
}
_SYSTEM_ROLES = {"Administrator": ADMIN, "SysAdmin": ADMIN}

_RANK = {LEARNER: 0, INSTRUCTOR: 1, ADMIN: 2}


def _classify(role: str) -> tuple[str, str] | None:
    """Return (scope, name) for one role value, or None when it is not a LIS role."""
    role = role.strip()
    if role.startswith(LIS):
        rest = role[len(LIS) :]
        scope, _, name = rest.partition("#")
        if scope.startswith("membership/"):
            # Sub-role such as membership/Instructor#TeachingAssistant: the parent
            # role after the slash decides.
            return "context", scope.split("/", 1)[1]
        kinds = {
            "membership": "context",
            "institution/person": "institution",
            "system/person": "system",
        }
        return (kinds[scope], name) if scope in kinds else None
    if role.startswith("urn:lti:role:ims/lis/"):
        return "context", role.rsplit("/", 1)[1].split("#")[0]
    if role.startswith("urn:lti:instrole:ims/lis/"):
        return "institution", role.rsplit("/", 1)[1]
    if role.startswith("urn:lti:sysrole:ims/lis/"):
        return "system", role.rsplit("/", 1)[1]
    if role and ":" not in role and "/" not in role:
        return "context", role
    return None


def map_roles(roles: Iterable[str]) -> str:
    """Return the tool role for a roles claim; learner when nothing matches."""
    context: list[str] = []
    institution: list[str] = []
    for value in roles:
        if not isinstance(value, str):
            continue
        found = _classify(value)
        if found is None:
            continue
        scope, name = found
        if scope == "context" and name in _CONTEXT_ROLES:
            context.append(_CONTEXT_ROLES[name])
        elif scope == "institution" and name in _INSTITUTION_ROLES:
            institution.append(_INSTITUTION_ROLES[name])
        elif scope == "system" and name in _SYSTEM_ROLES:
            institution.append(ADMIN)

    if ADMIN in institution:
        return ADMIN
    chosen = context or institution
    if not chosen:
        return LEARNER
    return max(chosen, key=_RANK.__getitem__)
