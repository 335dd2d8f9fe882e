"""Role mapping from LIS URIs, short names and LTI 1.1 URNs."""

from __future__ import annotations

import pytest

from lti_tool.lti.roles import ADMIN, INSTRUCTOR, LEARNER, OBSERVER, is_staff, map_roles

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
MEMBERSHIP = LIS + "membership#"
INSTITUTION = LIS + "institution/person#"
SYSTEM = LIS + "system/person#"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([MEMBERSHIP + "Learner"], LEARNER),
        ([MEMBERSHIP + "Instructor"], INSTRUCTOR),
        (["Instructor"], INSTRUCTOR),
        (["Learner"], LEARNER),
        ([LIS + "membership/Instructor#TeachingAssistant"], INSTRUCTOR),
        (["urn:lti:role:ims/lis/Instructor"], INSTRUCTOR),
        ([INSTITUTION + "Administrator"], ADMIN),
        ([SYSTEM + "Administrator", MEMBERSHIP + "Learner"], ADMIN),
        ([MEMBERSHIP + "Learner", INSTITUTION + "Instructor"], LEARNER),
        ([INSTITUTION + "Faculty"], INSTRUCTOR),
        ([SYSTEM + "User"], LEARNER),
        ([], LEARNER),
        (["http://example.org/other#Role", 42], LEARNER),
    ],
    ids=[
        "context_learner",
        "context_instructor",
        "short_instructor",
        "short_learner",
        "sub_role",
        "lti11_urn",
        "institution_admin",
        "system_admin_wins",
        "context_beats_institution",
        "institution_only",
        "canvas_system_user",
        "empty",
        "unknown_values",
    ],
)
def test_map_roles(roles, expected):
    """Each roles claim maps to the expected tool role."""
    assert map_roles(roles) == expected


# Every principal context role of the LTI 1.3 vocabulary, as a full URI, a short
# name and an LTI 1.1 URN.
CONTEXT_ROLES = {
    "Administrator": ADMIN,
    "ContentDeveloper": INSTRUCTOR,
    "Instructor": INSTRUCTOR,
    "Learner": LEARNER,
    "Manager": INSTRUCTOR,
    "Member": LEARNER,
    "Mentor": OBSERVER,
    # Officer gives nothing, so it falls back to learner.
    "Officer": LEARNER,
}


@pytest.mark.parametrize(("name", "expected"), sorted(CONTEXT_ROLES.items()))
def test_context_role_table(name, expected):
    """Each context role maps the same in all three spellings."""
    assert map_roles([MEMBERSHIP + name]) == expected
    assert map_roles([name]) == expected
    assert map_roles(["urn:lti:role:ims/lis/" + name]) == expected


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (LIS + "membership/Instructor#TeachingAssistant", INSTRUCTOR),
        (LIS + "membership/Instructor#Grader", INSTRUCTOR),
        (LIS + "membership/Instructor#GuestInstructor", INSTRUCTOR),
        (LIS + "membership/Learner#NonCreditLearner", LEARNER),
        (LIS + "membership/Learner#GuestLearner", LEARNER),
        (LIS + "membership/ContentDeveloper#Librarian", INSTRUCTOR),
        (LIS + "membership/Manager#CourseCoordinator", INSTRUCTOR),
        (LIS + "membership/Manager#AreaManager", INSTRUCTOR),
        (LIS + "membership/Manager#Observer", OBSERVER),
        (LIS + "membership/Manager#ExternalObserver", OBSERVER),
        (LIS + "membership/Mentor#Advisor", OBSERVER),
        (LIS + "membership/Mentor#Tutor", OBSERVER),
        (LIS + "membership/Mentor#ExternalMentor", OBSERVER),
        (LIS + "membership/Administrator#Support", ADMIN),
        (LIS + "membership/Member#Member", LEARNER),
        (LIS + "membership/Officer#Chair", LEARNER),
        ("urn:lti:role:ims/lis/TeachingAssistant", INSTRUCTOR),
        ("urn:lti:role:ims/lis/Instructor/PrimaryInstructor", INSTRUCTOR),
        ("urn:lti:role:ims/lis/Learner/NonCreditLearner", LEARNER),
        ("urn:lti:role:ims/lis/Manager/Observer", OBSERVER),
        ("urn:lti:role:ims/lis/Mentor/Advisor", OBSERVER),
    ],
)
def test_context_sub_role_table(role, expected):
    """A sub-role maps as its principal role, except the Manager's observers."""
    assert map_roles([role]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Administrator", ADMIN),
        ("Faculty", INSTRUCTOR),
        ("Instructor", INSTRUCTOR),
        ("Student", LEARNER),
        ("Learner", LEARNER),
        ("Mentor", OBSERVER),
        ("Observer", OBSERVER),
        # Staff are not necessarily teachers, so they manage no course's badges.
        ("Staff", LEARNER),
        ("Alumni", LEARNER),
        ("Guest", LEARNER),
        ("Member", LEARNER),
        ("None", LEARNER),
        ("Other", LEARNER),
        ("ProspectiveStudent", LEARNER),
    ],
)
def test_institution_role_table(name, expected):
    """Each institution role, alone in the claim, maps as both URI and URN."""
    assert map_roles([INSTITUTION + name]) == expected
    assert map_roles(["urn:lti:instrole:ims/lis/" + name]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Administrator", ADMIN),
        ("SysAdmin", ADMIN),
        ("SysSupport", LEARNER),
        ("AccountAdmin", LEARNER),
        ("Creator", LEARNER),
        ("User", LEARNER),
        ("None", LEARNER),
    ],
)
def test_system_role_table(name, expected):
    """Only the system administrator roles map to admin, and the rest to learner."""
    assert map_roles([SYSTEM + name]) == expected
    assert map_roles(["urn:lti:sysrole:ims/lis/" + name]) == expected


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([MEMBERSHIP + "Mentor"], OBSERVER),
        # Canvas maps an observer enrolment to both roles.
        (
            [LIS + "membership/Learner#NonCreditLearner", MEMBERSHIP + "Mentor"],
            OBSERVER,
        ),
        ([MEMBERSHIP + "Learner", MEMBERSHIP + "Mentor"], OBSERVER),
        (
            [
                "urn:lti:role:ims/lis/Learner/NonCreditLearner",
                "urn:lti:role:ims/lis/Mentor",
            ],
            OBSERVER,
        ),
        ([MEMBERSHIP + "Mentor", INSTITUTION + "Instructor"], OBSERVER),
        ([MEMBERSHIP + "Mentor", INSTITUTION + "Student", SYSTEM + "User"], OBSERVER),
        ([MEMBERSHIP + "Instructor", MEMBERSHIP + "Mentor"], INSTRUCTOR),
        ([MEMBERSHIP + "Administrator", MEMBERSHIP + "Mentor"], ADMIN),
        ([MEMBERSHIP + "Mentor", INSTITUTION + "Administrator"], ADMIN),
        ([MEMBERSHIP + "Mentor", SYSTEM + "SysAdmin"], ADMIN),
        ([INSTITUTION + "Observer", INSTITUTION + "Student"], OBSERVER),
        ([MEMBERSHIP + "Learner", INSTITUTION + "Observer"], LEARNER),
    ],
    ids=[
        "mentor",
        "canvas_observer",
        "learner_and_mentor",
        "canvas_lti11_observer",
        "institution_instructor_ignored",
        "canvas_observer_full_claim",
        "instructor_and_mentor",
        "context_admin_and_mentor",
        "institution_admin_and_mentor",
        "system_admin_and_mentor",
        "institution_observer",
        "context_learner_beats_institution_observer",
    ],
)
def test_observer_combinations(roles, expected):
    """A Mentor gets instructor powers only with an instructor or admin role."""
    assert map_roles(roles) == expected


def test_is_staff():
    """Only instructors and admins manage a course's badges."""
    assert is_staff(INSTRUCTOR)
    assert is_staff(ADMIN)
    assert not is_staff(OBSERVER)
    assert not is_staff(LEARNER)
