"""Page texts of launches rejected because their course or user ids cannot be trusted.

A launch can name the LMS's own course or user id in a custom parameter. It is
rejected when that id differs from the launch's claims (on Moodle) or from what
Canvas reports, when the ids cannot be checked, or when the id is bound to
another context or LTI user already. The log keeps the English message of the
error. These functions write the same facts in the page language for the error
page's details, with every id, parameter name and setting isolated by
`isolate_ltr`.

The errors may be raised outside a Flask request, in the launch dispatcher, so
the raisers pass these functions unevaluated (`LtiError(page_detail=...)`) and
the page calls them while it renders.
"""

from __future__ import annotations

from markupsafe import Markup

from lti_tool.i18n import gettext_html, isolate_ltr, localized_list

# Maximum length of an id that a page repeats, as the English messages cut them.
SHOWN_ID_MAX = 64

# The variables that fill the custom parameters lms_course_id and lms_user_id with
# the LMS's own ids, when the LMS admin sets them at the tool level.
MOODLE_COURSE_VARIABLE = "$Context.id"
MOODLE_USER_VARIABLE = "$User.id"
CANVAS_COURSE_VARIABLE = "$Canvas.course.id"
CANVAS_USER_VARIABLE = "$Canvas.user.id"
CANVAS_IDENTITY_SCOPES = (
    "url:GET|/api/v1/courses/:id",
    "url:GET|/api/v1/courses/:course_id/users/:id",
    "url:GET|/api/v1/users/:id",
)
CONNECTION_TEST_COMMAND = "hpass-bridge lms test"
# The Canvas account role permission that lets an admin's token read other users.
USERS_PERMISSION = "Users - view list"


def _id(value: str) -> Markup:
    return isolate_ltr(value[:SHOWN_ID_MAX])


def _sentences(*parts: Markup) -> Markup:
    return Markup(" ").join(parts)


def moodle_id_differs(parameter: str, value: str, claim: str, own: str) -> Markup:
    """Describe a Moodle launch whose custom id differs from its sub or context.id."""
    return _sentences(
        gettext_html(
            "The custom parameter %(parameter)s (%(value)s) differs from the "
            "launch's %(claim)s (%(own)s), which Moodle fills with its own id.",
            parameter=isolate_ltr(parameter),
            value=_id(value),
            claim=isolate_ltr(claim),
            own=_id(own),
        ),
        gettext_html(
            "Remove %(parameter)s from the activity's custom parameters in Moodle, "
            "because the tool reads the id from the launch itself.",
            parameter=isolate_ltr(parameter),
        ),
    )


def course_without_context(parameter: str) -> Markup:
    """Describe a deep linking launch that names a course but has no context claim."""
    return _sentences(
        gettext_html(
            "The deep linking launch names a course in the custom parameter "
            "%(parameter)s, but it has no course (context claim) to check it "
            "against.",
            parameter=isolate_ltr(parameter),
        ),
        gettext_html("Add the tool's content from inside a course."),
    )


def course_of_other_context(lms_course_id: str, other_context: str) -> Markup:
    """Describe a launch whose LMS course id is bound to another context already."""
    return _sentences(
        gettext_html(
            "LMS course %(course)s belongs to another course of this LMS (context "
            "%(context)s), so this launch would act in a course that is not its own.",
            course=_id(lms_course_id),
            context=_id(other_context),
        ),
        gettext_html(
            "The LMS admin must set the tool placement's custom parameter "
            "%(parameter)s at the tool level (%(moodle)s in Moodle, %(canvas)s in "
            "Canvas), where a teacher cannot change it.",
            parameter=isolate_ltr("lms_course_id"),
            moodle=isolate_ltr(MOODLE_COURSE_VARIABLE),
            canvas=isolate_ltr(CANVAS_COURSE_VARIABLE),
        ),
    )


def learner_of_other_sub(lms_user_id: str) -> Markup:
    """Describe a launch whose LMS user id is bound to another LTI user already."""
    return _sentences(
        gettext_html(
            "LMS user %(user)s first launched the tool as another LTI user (sub), "
            "so this launch would act as someone else.",
            user=_id(lms_user_id),
        ),
        gettext_html(
            "The LMS admin must set the tool placement's custom parameter "
            "%(parameter)s at the tool level (%(moodle)s in Moodle, %(canvas)s in "
            "Canvas), where a teacher cannot change it.",
            parameter=isolate_ltr("lms_user_id"),
            moodle=isolate_ltr(MOODLE_USER_VARIABLE),
            canvas=isolate_ltr(CANVAS_USER_VARIABLE),
        ),
    )


def canvas_has_no_course(context_id: str) -> Markup:
    return gettext_html(
        "Canvas has no course with the launch's context.id %(value)s.",
        value=_id(context_id),
    )


def canvas_has_no_course_user(sub: str) -> Markup:
    return gettext_html(
        "Canvas has no user with the launch's sub %(value)s in the launch's course.",
        value=_id(sub),
    )


def canvas_has_no_readable_user(sub: str) -> Markup:
    return gettext_html(
        "Canvas has no user with the launch's sub %(value)s that the Canvas "
        "connection's token can read.",
        value=_id(sub),
    )


def canvas_course_differs(parameter: str, lms_id: str, reported: str) -> Markup:
    return gettext_html(
        "The custom parameter %(parameter)s names LMS course %(lms_id)s, but "
        "Canvas reports that the launch's context.id belongs to course "
        "%(reported)s.",
        parameter=isolate_ltr(parameter),
        lms_id=_id(lms_id),
        reported=_id(reported),
    )


def canvas_user_differs(parameter: str, lms_id: str, reported: str) -> Markup:
    return gettext_html(
        "The custom parameter %(parameter)s names LMS user %(lms_id)s, but Canvas "
        "reports that the launch's sub belongs to user %(reported)s.",
        parameter=isolate_ltr(parameter),
        lms_id=_id(lms_id),
        reported=_id(reported),
    )


def canvas_ids_unconfirmed(problem: Markup, *, admin_lookup: bool) -> Markup:
    """Add what to check to a problem with ids that Canvas did not confirm."""
    parts = [
        problem,
        gettext_html(
            "The Canvas admin must set the custom parameters in the developer key, "
            "as %(course_setting)s and %(user_setting)s, and no course-level tool "
            "or link may set them. Instructors should ask the provider admin.",
            course_setting=isolate_ltr(f"lms_course_id={CANVAS_COURSE_VARIABLE}"),
            user_setting=isolate_ltr(f"lms_user_id={CANVAS_USER_VARIABLE}"),
        ),
    ]
    if admin_lookup:
        parts.append(
            gettext_html(
                "An admin's user is looked up account-wide, so the Canvas connection "
                "must be authorised by an admin of an account that contains the "
                "launching admin, and that admin's role must have the permission "
                "%(permission)s.",
                permission=isolate_ltr(USERS_PERMISSION),
            )
        )
    return _sentences(*parts)


def canvas_not_checked(
    kind: str,
    claim_value: str,
    error: str,
    *,
    scope_missing: bool,
    access_denied: bool = False,
    admin_lookup: bool,
) -> Markup:
    """Describe custom ids that could not be checked because a Canvas request failed.

    `kind` is "course" or "user". Canvas's `error` is English, so it is marked as
    such for the browser and screen readers.
    """
    if kind == "course":
        problem = gettext_html(
            "The bridge could not confirm the launch's course (context.id "
            "%(value)s) with Canvas, which it must do before the launch's custom LMS "
            "ids are used for the first time.",
            value=_id(claim_value),
        )
    else:
        problem = gettext_html(
            "The bridge could not confirm the launch's user (sub %(value)s) with "
            "Canvas, which it must do before the launch's custom LMS ids are used "
            "for the first time.",
            value=_id(claim_value),
        )
    canvas_error = gettext_html(
        "Canvas error: %(error)s",
        error=Markup('<span lang="en" dir="ltr">{}</span>').format(error),
    )
    if scope_missing:
        check = gettext_html(
            "Add the scopes %(scopes)s to the Canvas developer key and authorise "
            "the bridge again.",
            scopes=localized_list(
                isolate_ltr(scope) for scope in CANVAS_IDENTITY_SCOPES
            ),
        )
    elif access_denied and admin_lookup:
        check = gettext_html(
            "The user of the Canvas connection's token must be an admin of an "
            "account that contains the launching admin, with a role that has the "
            "permission %(permission)s. Give that user such a role in Canvas, or "
            "connect Canvas again as such an admin.",
            permission=isolate_ltr(USERS_PERMISSION),
        )
    elif admin_lookup:
        check = gettext_html(
            "The Canvas connection must work (run %(command)s), and its token's user "
            "must be an admin of an account that contains the launching admin.",
            command=isolate_ltr(CONNECTION_TEST_COMMAND),
        )
    else:
        check = gettext_html(
            "The Canvas connection must work (run %(command)s). Instructors and "
            "learners should try again later or ask the provider admin.",
            command=isolate_ltr(CONNECTION_TEST_COMMAND),
        )
    return _sentences(problem, canvas_error, check)


def custom_ids_without_canvas(parameters: list[str]) -> Markup:
    """Describe custom ids on a platform where the bridge has no way to check them."""
    names = localized_list(isolate_ltr(name) for name in parameters)
    if len(parameters) == 1:
        problem = gettext_html(
            "The launch's custom parameter %(parameters)s differs from its "
            "context.id or sub, and only a Moodle platform or a Canvas connection "
            "lets the bridge confirm such ids.",
            parameters=names,
        )
    else:
        problem = gettext_html(
            "The launch's custom parameters %(parameters)s differ from its "
            "context.id or sub, and only a Moodle platform or a Canvas connection "
            "lets the bridge confirm such ids.",
            parameters=names,
        )
    return _sentences(
        problem,
        gettext_html(
            "Connect the registration to the Canvas site's REST API, or remove the "
            "custom parameters so that the launch's own context.id and sub are "
            "used. Instructors should ask the provider admin."
        ),
    )
