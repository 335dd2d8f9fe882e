"""Map the LTI roles claim to the tool's roles: learner, observer, instructor, admin.

Platforms send LIS v2 role URIs (`http://purl.imsglobal.org/vocab/lis/v2/...`), short
names allowed by LTI 1.3 Core for context roles ("Instructor"), and sometimes LTI 1.1
URNs (`urn:lti:role:ims/lis/Instructor`). Context (membership) roles decide the role in
the course, because an institution role says nothing about this course: Canvas sends
`institution/person#Instructor` to a teacher who takes another course as a student.
Institution and system roles count only when no context role is present, except an
administrator, who is admin everywhere.

Within one scope the highest role wins: admin, then instructor, then observer, then
learner. An observer (LIS Mentor, or the Manager sub-roles Observer and
ExternalObserver) gets a read-only page and never instructor powers, also when the
claim lists Learner too, because Canvas's role documentation maps an observer
enrolment to both Learner/NonCreditLearner and Mentor. docs/lti-setup.md has the
whole table.
"""

from __future__ import annotations

from collections.abc import Iterable

LEARNER = "learner"
OBSERVER = "observer"
INSTRUCTOR = "instructor"
ADMIN = "admin"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

# Principal context roles of LTI 1.3 Core (and TeachingAssistant, a principal role
# in LTI 1.1) and the tool role each gives. A sub-role maps as its principal role
# unless _CONTEXT_SUB_ROLES names it. Officer (a group's chair or secretary) is left
# out on purpose because it grants no teaching rights, so it falls back to learner.
_CONTEXT_ROLES = {
    "Learner": LEARNER,
    "Member": LEARNER,
    "Mentor": OBSERVER,
    "Instructor": INSTRUCTOR,
    "TeachingAssistant": INSTRUCTOR,
    # Course designers build the course's content, and its badges are part of it.
    "ContentDeveloper": INSTRUCTOR,
    # Area managers and course coordinators run the course.
    "Manager": INSTRUCTOR,
    "Administrator": ADMIN,
}
# Sub-roles whose rights differ from their principal role's: a Manager#Observer
# watches the course and manages nothing.
_CONTEXT_SUB_ROLES = {
    ("Manager", "Observer"): OBSERVER,
    ("Manager", "ExternalObserver"): OBSERVER,
}
# Institution roles of LTI 1.3 Core. Staff, Guest, Other, None, Alumni, Member and
# ProspectiveStudent give no role, so alone they fall back to learner.
_INSTITUTION_ROLES = {
    "Student": LEARNER,
    "Learner": LEARNER,
    "Mentor": OBSERVER,
    "Observer": OBSERVER,
    "Instructor": INSTRUCTOR,
    "Faculty": INSTRUCTOR,
    "Administrator": ADMIN,
}
# System roles: only administrators count. SysSupport, AccountAdmin (user accounts),
# Creator, User and None give nothing.
_SYSTEM_ROLES = {"Administrator": ADMIN, "SysAdmin": ADMIN}

_RANK = {LEARNER: 0, OBSERVER: 1, INSTRUCTOR: 2, ADMIN: 3}


def _classify(role: str) -> tuple[str, str, str | None] | None:
    """Return (scope, principal role, sub-role) for one role value.

    Returns None when the value is not a LIS role.
    """
    role = role.strip()
    if role.startswith(LIS):
        rest = role[len(LIS) :]
        scope, _, name = rest.partition("#")
        if scope.startswith("membership/"):
            # Sub-role such as membership/Instructor#TeachingAssistant.
            return "context", scope.split("/", 1)[1], name or None
        kinds = {
            "membership": "context",
            "institution/person": "institution",
            "system/person": "system",
        }
        return (kinds[scope], name, None) if scope in kinds else None
    if role.startswith("urn:lti:role:ims/lis/"):
        # LTI 1.1 writes a sub-role as a second path segment: Learner/NonCreditLearner.
        path = role[len("urn:lti:role:ims/lis/") :].split("#")[0]
        principal, _, sub_role = path.partition("/")
        return "context", principal, sub_role or None
    if role.startswith("urn:lti:instrole:ims/lis/"):
        return "institution", role.rsplit("/", 1)[1], None
    if role.startswith("urn:lti:sysrole:ims/lis/"):
        return "system", role.rsplit("/", 1)[1], None
    if role and ":" not in role and "/" not in role:
        return "context", role, None
    return None


def _tool_role(scope: str, principal: str, sub_role: str | None) -> str | None:
    if scope == "context":
        special = _CONTEXT_SUB_ROLES.get((principal, sub_role))
        return special or _CONTEXT_ROLES.get(principal)
    if scope == "institution":
        return _INSTITUTION_ROLES.get(principal)
    return _SYSTEM_ROLES.get(principal)


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
        mapped = _tool_role(*found)
        if mapped is None:
            continue
        if found[0] == "context":
            context.append(mapped)
        else:
            institution.append(mapped)

    if ADMIN in institution:
        return ADMIN
    chosen = context or institution
    if not chosen:
        return LEARNER
    return max(chosen, key=_RANK.__getitem__)


def is_staff(role: str) -> bool:
    """Return whether the tool role may manage the course's badges."""
    return role in (INSTRUCTOR, ADMIN)
