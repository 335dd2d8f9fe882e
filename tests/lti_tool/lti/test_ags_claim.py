"""The AGS endpoint claim of a launch is stored on its course, and the learner's `sub`."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from badge_engine.models import Learner
from lti_tool.lti.ags import (
    ENDPOINT_CLAIM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    InvalidEndpointClaim,
    endpoint_from_claims,
)
from lti_tool.models import LtiCourse

LINEITEMS = "https://lms.example/api/lti/courses/7/line_items"
LINEITEM = "https://lms.example/api/lti/courses/7/line_items/12"


def _claim(**members) -> dict:
    claim = {
        "scope": [SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY],
        "lineitems": LINEITEMS,
        "lineitem": LINEITEM,
    }
    claim.update(members)
    return {key: value for key, value in claim.items() if value is not None}


def _launch(tool, platform, **changes):
    login = tool.start()
    claims = platform.claims(login.nonce, tool.target_link_uri, **changes)
    response = tool.launch(platform.sign(claims), login.state)
    assert response.status_code == 302, response.text
    return response


def _course(db) -> LtiCourse:
    db.expire_all()
    return db.scalars(select(LtiCourse)).one()


def test_launch_stores_ags_endpoint(tool, platform, db):
    """A launch with the AGS claim stores its line item URLs and scopes on the course."""
    _launch(tool, platform, **{ENDPOINT_CLAIM: _claim()})

    course = _course(db)
    assert course.ags_lineitems_url == LINEITEMS
    assert course.ags_lineitem_url == LINEITEM
    assert course.ags_scopes == f"{SCOPE_LINEITEM_READONLY} {SCOPE_RESULT_READONLY}"


def test_launch_without_claim_keeps_endpoint(tool, platform, db):
    """A later launch without the AGS claim leaves the stored endpoint as it was."""
    _launch(tool, platform, **{ENDPOINT_CLAIM: _claim()})
    _launch(tool, platform)

    course = _course(db)
    assert course.ags_lineitems_url == LINEITEMS
    assert course.ags_lineitem_url == LINEITEM


def test_launch_with_new_claim_replaces_endpoint(tool, platform, db):
    """A launch whose claim lacks `lineitem` clears the one an earlier launch stored."""
    _launch(tool, platform, **{ENDPOINT_CLAIM: _claim()})
    _launch(tool, platform, **{ENDPOINT_CLAIM: _claim(lineitem=None)})

    course = _course(db)
    assert course.ags_lineitems_url == LINEITEMS
    assert course.ags_lineitem_url is None


def test_launch_malformed_claim_still_accepted(tool, platform, db):
    """A malformed AGS claim is dropped and logged, and the launch still succeeds."""
    _launch(tool, platform, **{ENDPOINT_CLAIM: _claim(lineitems="ftp://x/items")})

    course = _course(db)
    assert course.ags_lineitems_url is None
    assert course.ags_scopes is None


def test_launch_stores_learner_sub(tool, platform, db):
    """A learner launch records the LTI `sub` beside the LMS user id."""
    _launch(tool, platform, sub="sub-abc")

    db.expire_all()
    learner = db.scalars(select(Learner)).one()
    assert learner.lms_user_id == "sub-abc"
    assert learner.lti_sub == "sub-abc"


@pytest.mark.parametrize(
    ("claim", "problem"),
    [
        ([], "not an object"),
        ({"scope": "a b"}, "scope is not a list of strings"),
        ({"scope": [1]}, "scope is not a list of strings"),
        ({"scope": [], "lineitems": 5}, "lineitems is not an absolute http(s) URL"),
        ({"scope": [], "lineitem": "/relative"}, "lineitem is not an absolute"),
    ],
)
def test_endpoint_claim_invalid_shapes(claim, problem):
    """Each malformed AGS claim raises an error naming the wrong member."""
    with pytest.raises(InvalidEndpointClaim, match=re.escape(problem)):
        endpoint_from_claims({ENDPOINT_CLAIM: claim})


def test_endpoint_claim_absent():
    """A launch without the AGS claim has no endpoint."""
    assert endpoint_from_claims({}) is None
