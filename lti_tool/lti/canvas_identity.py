"""Confirm a launch's custom LMS ids through the Canvas REST API before they bind.

A launch names the LMS's own course and user ids in the custom parameters
`lms_course_id` and `lms_user_id` (see `lms_id`). On Moodle they must equal
`context.id` and `sub`, which the validator checks. Canvas sends opaque values
there, so the custom ids cannot be compared with the claims. A teacher who adds a
custom parameter could otherwise bind another course or learner to their own
launch, sign audit entries as another instructor, or list another course's badges
in the Deep Linking picker. So before a custom id is used for the first time, the
bridge requests from Canvas, with the connection's credentials, the course and
user that the launch's `context.id` and `sub` belong to. The user is looked up
among the course's users, but an admin is looked up account-wide through the
Users API, because a Canvas account admin need not be a user of the course.
Canvas's Object IDs page documents the `lti_context_id:` course reference and
the `lti_1_3_id:` user reference, whose value is the `sub` of LTI 1.3 launches.

A launch whose custom ids differ from its claims is rejected when Canvas reports
other ids, or when they cannot be checked: a platform other than Moodle without
a Canvas connection, missing scopes, or Canvas unreachable.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from sqlalchemy import select
from sqlalchemy.engine import Connection

from badge_engine.models import Learner
from connectors.canvas.connection import client_for_connection
from connectors.canvas.errors import (
    CanvasAccessDenied,
    CanvasError,
    CanvasNotFound,
    CanvasScopeMissing,
)
from connectors.models import LmsConnection, LmsKind
from lti_tool.logs import get_logger
from lti_tool.lti import identity_text, roles
from lti_tool.lti.errors import LaunchIdentityUnverified
from lti_tool.lti.launch import (
    CLAIM,
    COURSE_ID_PARAMETERS,
    RESOURCE_LINK,
    USER_ID_PARAMETERS,
    lms_id,
)
from lti_tool.models import LtiCourse

log = get_logger(__name__)

# One launch waits for these calls, so they get one retry and a short read timeout.
CANVAS_TIMEOUT_SECONDS = (3.05, 10.0)
CANVAS_MAX_RETRIES = 1


@dataclass(frozen=True)
class CustomIds:
    """The custom ids of one launch that differ from its `context.id` and `sub`."""

    context_id: str
    sub: str
    lms_course_id: str | None
    course_parameter: str | None
    lms_user_id: str | None
    user_parameter: str | None
    # True for an admin's launch, whose user is looked up outside the course.
    admin: bool = False


def custom_ids(registration, claims: dict) -> CustomIds | None:
    """Return the launch's custom ids that Canvas must confirm, or None if none.

    Moodle launches return None, because the validator already requires their
    custom ids to equal the claims. A deep linking launch without a context
    returns None too, because the validator rejects a custom course id there.
    A user id is returned for a resource link launch of any role, because a
    learner's launch stores a learner row and the user id of an instructor or an
    admin names the actor in the audit log. A deep linking launch uses no user id.
    """
    platform = claims.get(CLAIM + "tool_platform")
    family = platform.get("product_family_code") if isinstance(platform, dict) else None
    if "moodle" in (registration.platform_family, family):
        return None
    context = claims.get(CLAIM + "context")
    if not isinstance(context, dict) or not context.get("id"):
        return None

    context_id = context["id"]
    sub = claims["sub"]
    lms_course_id, course_parameter = lms_id(claims, COURSE_ID_PARAMETERS, "context.id")
    course_parameter = course_parameter.removeprefix("custom ")
    if lms_course_id == context_id:
        lms_course_id, course_parameter = None, None

    lms_user_id, user_parameter = None, None
    role = roles.map_roles(claims.get(CLAIM + "roles") or [])
    if claims.get(CLAIM + "message_type") == RESOURCE_LINK:
        lms_user_id, user_parameter = lms_id(claims, USER_ID_PARAMETERS, "sub")
        user_parameter = user_parameter.removeprefix("custom ")
        if lms_user_id == sub:
            lms_user_id, user_parameter = None, None

    if lms_course_id is None and lms_user_id is None:
        return None
    return CustomIds(
        context_id,
        sub,
        lms_course_id,
        course_parameter,
        lms_user_id,
        user_parameter,
        admin=lms_user_id is not None and role == roles.ADMIN,
    )


@dataclass(frozen=True)
class PendingCheck:
    """The custom ids of one launch that Canvas must confirm, with their cache keys.

    A key is None when its id needs no confirmation.
    """

    ids: CustomIds
    course_key: tuple | None
    user_key: tuple | None


class CanvasIdentityCheck:
    """Checks of custom ids against Canvas, with the pairs confirmed lately.

    Canvas never changes which course a context id or which user a `sub` belongs
    to, so a confirmed pair stays confirmed, and this process keeps up to
    `max_entries` of them to spare Canvas a call on each launch.
    """

    def __init__(self, bridge, max_entries: int = 10_000) -> None:
        self.bridge = bridge
        self.max_entries = max_entries
        self._confirmed: OrderedDict[tuple, None] = OrderedDict()
        self._lock = threading.Lock()

    def pending(
        self, connection: Connection, registration, claims: dict
    ) -> PendingCheck | None:
        """Return the custom ids that Canvas must still confirm, or None if none.

        A course row of the launch's context with the same LMS course id, or a
        learner row with the same LMS user id and `sub`, is bound already and
        needs no confirmation. This reads the database and sends no request.
        """
        ids = custom_ids(registration, claims)
        if ids is None:
            return None

        course_key = (registration.id, ids.context_id, ids.lms_course_id)
        user_key = (registration.id, ids.context_id, ids.sub, ids.lms_user_id)
        check_course = ids.lms_course_id is not None and not self._known(course_key)
        check_user = ids.lms_user_id is not None and not self._known(user_key)
        if check_course and _course_bound(connection, registration, ids):
            check_course = False
        if check_user and _learner_bound(connection, registration, ids):
            check_user = False
        if not check_course and not check_user:
            return None
        return PendingCheck(
            ids,
            course_key if check_course else None,
            user_key if check_user else None,
        )

    def confirm(self, pending: PendingCheck, registration, validated_ids: dict) -> None:
        """Request the pending ids from Canvas and reject the launch unless they match.

        Raises LaunchIdentityUnverified.
        """
        ids = pending.ids
        check_course = pending.course_key is not None
        check_user = pending.user_key is not None
        with self.bridge.session() as session:
            lms_connection = None
            if registration.lms_connection_id is not None:
                lms_connection = session.get(
                    LmsConnection, registration.lms_connection_id
                )
            if lms_connection is None or lms_connection.kind != LmsKind.CANVAS.value:
                raise _without_canvas(ids, validated_ids)
            try:
                client = client_for_connection(
                    session,
                    self.bridge.vault,
                    lms_connection,
                    policy=self.bridge.outbound_policy,
                    timeout=CANVAS_TIMEOUT_SECONDS,
                    max_retries=CANVAS_MAX_RETRIES,
                )
                if check_course:
                    _confirm_course(client, ids, validated_ids)
                if check_user:
                    _confirm_user(client, ids, validated_ids)
            finally:
                # An OAuth2 refresh during the check wrote new tokens to the session.
                session.commit()

        log.info(
            "lti_custom_ids_confirmed",
            lms_course_id=ids.lms_course_id if check_course else None,
            lms_user_id=ids.lms_user_id if check_user else None,
            **validated_ids,
        )
        if check_course:
            self._remember(pending.course_key)
        if check_user:
            self._remember(pending.user_key)

    def _known(self, key: tuple) -> bool:
        with self._lock:
            if key not in self._confirmed:
                return False
            self._confirmed.move_to_end(key)
            return True

    def _remember(self, key: tuple) -> None:
        with self._lock:
            self._confirmed[key] = None
            while len(self._confirmed) > self.max_entries:
                self._confirmed.popitem(last=False)


def _course_bound(connection: Connection, registration, ids: CustomIds) -> bool:
    # NOTE: a course bound before launches were checked with Canvas counts as
    # bound, so such a binding is kept as it is.
    stored = connection.execute(
        select(LtiCourse.lms_course_id).where(
            LtiCourse.registration_id == registration.id,
            LtiCourse.lti_context_id == ids.context_id,
        )
    ).scalar()
    return stored == ids.lms_course_id


def _learner_bound(connection: Connection, registration, ids: CustomIds) -> bool:
    if registration.lms_connection_id is None:
        return False
    stored_sub = connection.execute(
        select(Learner.lti_sub).where(
            Learner.provider_id == registration.provider_id,
            Learner.lms_connection_id == registration.lms_connection_id,
            Learner.lms_user_id == ids.lms_user_id,
        )
    ).scalar()
    return stored_sub is not None and stored_sub == ids.sub


def _confirm_course(client, ids: CustomIds, validated_ids: dict) -> None:
    _confirm_lms_id(
        lambda: client.get_course_by_lti_context_id(ids.context_id),
        kind="course",
        claim="context.id",
        claim_value=ids.context_id,
        parameter=ids.course_parameter,
        lms_id=ids.lms_course_id,
        not_found_scope="",
        not_found_text=identity_text.canvas_has_no_course,
        ids=ids,
        validated_ids=validated_ids,
    )


def _confirm_user(client, ids: CustomIds, validated_ids: dict) -> None:
    if ids.admin:
        fetch = functools.partial(client.get_user_by_lti_1_3_id, ids.sub)
        not_found_scope = " that the Canvas connection's token can read"
        not_found_text = identity_text.canvas_has_no_readable_user
    else:
        fetch = functools.partial(
            client.get_course_user_by_lti_1_3_id, ids.context_id, ids.sub
        )
        not_found_scope = " in the launch's course"
        not_found_text = identity_text.canvas_has_no_course_user
    _confirm_lms_id(
        fetch,
        kind="user",
        claim="sub",
        claim_value=ids.sub,
        parameter=ids.user_parameter,
        lms_id=ids.lms_user_id,
        not_found_scope=not_found_scope,
        not_found_text=not_found_text,
        ids=ids,
        validated_ids=validated_ids,
    )


def _confirm_lms_id(
    fetch,
    *,
    kind: str,
    claim: str,
    claim_value: str,
    parameter: str,
    lms_id: str,
    not_found_scope: str,
    not_found_text: Callable[[str], Markup],
    ids: CustomIds,
    validated_ids: dict,
) -> None:
    """Raise LaunchIdentityUnverified unless Canvas confirms `lms_id`.

    `fetch` requests the Canvas `kind` ("course" or "user") that the launch's
    `claim` belongs to. The check passes when that record's id equals `lms_id`,
    the value of the custom `parameter`. `not_found_scope` ends the English message
    when Canvas has no such record, and `not_found_text` writes that message in the
    page language.
    """
    subject = f"the launch's {kind} ({claim} {claim_value[:64]!r})"
    admin_lookup = ids.admin and kind == "user"
    try:
        record = fetch()
    except CanvasNotFound:
        raise _unconfirmed(
            f"Canvas has no {kind} with the launch's {claim} "
            f"{claim_value[:64]!r}{not_found_scope}",
            functools.partial(not_found_text, claim_value),
            validated_ids,
            admin_lookup=admin_lookup,
        ) from None
    except CanvasError as error:
        raise _not_checked(
            subject,
            error,
            validated_ids,
            kind=kind,
            claim_value=claim_value,
            admin_lookup=admin_lookup,
        ) from None

    reported = str(record.get("id", ""))
    if reported != lms_id:
        if kind == "course":
            differs_text = identity_text.canvas_course_differs
        else:
            differs_text = identity_text.canvas_user_differs
        raise _unconfirmed(
            f"the custom parameter {parameter} names LMS {kind} {lms_id[:64]!r}, "
            f"but Canvas reports that the launch's {claim} belongs to {kind} "
            f"{reported[:64]!r}",
            functools.partial(differs_text, parameter, lms_id, reported),
            validated_ids,
        )


def _unconfirmed(
    problem: str,
    problem_text: Callable[[], Markup],
    validated_ids: dict,
    *,
    admin_lookup: bool = False,
):
    """Return the rejection of ids that Canvas did not confirm.

    `problem_text` writes `problem` in the page language.
    """
    check = (
        "the custom parameters must be set by the Canvas admin in the "
        "developer key, as lms_course_id=$Canvas.course.id and "
        "lms_user_id=$Canvas.user.id, and no course-level tool or link may set "
        "them; instructors should ask the provider admin"
    )
    if admin_lookup:
        check += (
            ". An admin's user is looked up account-wide, so the Canvas connection "
            "must be authorised by an admin of an account that contains the "
            "launching admin, and that admin's role must have the permission "
            "Users - view list"
        )
    return LaunchIdentityUnverified(
        problem,
        check=check,
        page_detail=lambda: identity_text.canvas_ids_unconfirmed(
            problem_text(), admin_lookup=admin_lookup
        ),
        **validated_ids,
    )


def _not_checked(
    subject: str,
    error: CanvasError,
    validated_ids: dict,
    *,
    kind: str,
    claim_value: str,
    admin_lookup: bool,
):
    if isinstance(error, CanvasScopeMissing):
        check = (
            "add the scopes url:GET|/api/v1/courses/:id, "
            "url:GET|/api/v1/courses/:course_id/users/:id and "
            "url:GET|/api/v1/users/:id to the Canvas developer key and authorise "
            "the bridge again"
        )
    elif isinstance(error, CanvasAccessDenied) and admin_lookup:
        check = (
            "the user of the Canvas connection's token must be an admin of an "
            "account that contains the launching admin, with a role that has the "
            "permission Users - view list. Give that user such a role in Canvas, or "
            "connect Canvas again as such an admin"
        )
    elif admin_lookup:
        check = (
            "the Canvas connection must work (run hpass-bridge lms test), and its "
            "token's user must be an admin of an account that contains the "
            "launching admin"
        )
    else:
        check = (
            "the Canvas connection must work (run hpass-bridge lms test); "
            "instructors and learners should try again later or ask the provider admin"
        )
    return LaunchIdentityUnverified(
        f"the bridge could not confirm {subject} with Canvas, which the launch's "
        f"custom LMS ids need before their first use: {error}",
        check=check,
        page_detail=functools.partial(
            identity_text.canvas_not_checked,
            kind,
            claim_value,
            str(error),
            scope_missing=isinstance(error, CanvasScopeMissing),
            access_denied=isinstance(error, CanvasAccessDenied),
            admin_lookup=admin_lookup,
        ),
        **validated_ids,
    )


def _without_canvas(ids: CustomIds, validated_ids: dict):
    names = [name for name in (ids.course_parameter, ids.user_parameter) if name]
    return LaunchIdentityUnverified(
        f"the launch's custom parameter {' and '.join(names)} differs from its "
        "context.id or sub, and only a Moodle platform or a Canvas connection lets "
        "the bridge confirm such ids",
        check="connect the registration to the Canvas site's REST API, or remove "
        "the custom parameters so the launch's own context.id and sub are used; "
        "instructors should ask the provider admin",
        page_detail=functools.partial(identity_text.custom_ids_without_canvas, names),
        **validated_ids,
    )
