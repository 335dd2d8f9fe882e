"""Role mapping from LIS URIs, short names and LTI 1.1 URNs."""

from __future__ import annotations

import pytest

from lti_tool.lti.roles import ADMIN, INSTRUCTOR, LEARNER, map_roles

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([LIS + "membership#Learner"], LEARNER),
        ([LIS + "membership#Instructor"], INSTRUCTOR),
        (["Instructor"], INSTRUCTOR),
        (["Learner"], LEARNER),
        ([LIS + "membership/Instructor#TeachingAssistant"], INSTRUCTOR),
        (["urn:lti:role:ims/lis/Instructor"], INSTRUCTOR),
        ([LIS + "institution/person#Administrator"], ADMIN),
        ([LIS + "system/person#Administrator", LIS + "membership#Learner"], ADMIN),
        ([LIS + "membership#Learner", LIS + "institution/person#Instructor"], LEARNER),
        ([LIS + "institution/person#Faculty"], INSTRUCTOR),
        ([LIS + "system/person#User"], LEARNER),
        ([], LEARNER),
        (["http://example.org/other#Role", 42], LEARNER),
    ],
    ids=[
        "context_learner", "context_instructor", "short_instructor", "short_learner",
        "sub_role", "lti11_urn", "institution_admin", "system_admin_wins",
        "context_beats_institution", "institution_only", "canvas_system_user",
        "empty", "unknown_values",
    ],
)
def test_map_roles(roles, expected):
    """Each roles claim maps to the expected tool role."""
    assert map_roles(roles) == expected
