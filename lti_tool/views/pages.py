"""Pages inside the LMS: the course's badges for learners and instructors.

Both arrive through an LTI launch, which puts the course, the role and the provider in
the session; every query below is scoped by that provider. The pages are plain HTML
forms that work without JavaScript; `static/bridge.js` adds the copy button and
follows backfill progress.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from dataclasses import dataclass
from itertools import zip_longest

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from badge_engine.alignments import (
    MAX_ALIGNMENTS,
    InvalidAlignment,
    list_alignment_errors,
    validate_alignments,
)
from badge_engine.corrections import correct_achievement
from badge_engine.errors import InvalidCredential
from badge_engine.models import Achievement, Credential, CredentialStatus
from badge_engine.explain import missing_rules
from badge_engine.rules import (
    GradeProgress,
    InvalidAwardRule,
    LearnerProgress,
    same_award_rule,
    validate_award_rule,
)
from badge_engine.status import MAX_REASON_LENGTH, AlreadyRevoked, revoke_credential
from badge_engine.urls import credential_url
from connectors.hpass.deliveries import requeue_for_revocation
from connectors.hpass.models import (
    Delivery,
    DeliveryStatus,
    PortfolioAccount,
    RouteName,
)
from connectors.models import ConnectionState, LmsConnection
from lti_tool import i18n
from lti_tool.accounts import record_audit
from lti_tool.backfill import ACTIVE as BACKFILL_ACTIVE
from lti_tool.badge_text import character_label, first_bidi_control, is_invisible
from lti_tool.backfill import BackfillJob, BackfillTrigger, job_summary, send_backfill
from lti_tool.logs import get_logger
from lti_tool.bridge import current_bridge, db_session
from lti_tool.ags_progress import ags_grades, merge_grades
from lti_tool.course_activities import (
    ActivitiesUnavailable,
    Activity,
    completed_activity_ids,
    read_course_activities,
    stored_activity_names,
    stored_progress,
)
from lti_tool.errors import BadRequest, Forbidden, NotFound
from lti_tool.i18n import gettext as _
from lti_tool.images import AchievementImage, ImageRejected, check_image
from lti_tool.models import LtiCourse, Registration
from lti_tool.operations import ActionError
from lti_tool.row_ids import shortened
from lti_tool.operations import achievements as achievement_ops
from lti_tool.operations.backfills import (
    BackfillNotActive,
    cancel_backfill,
    start_achievement_backfill,
    start_automatic_backfill,
)
from lti_tool.pipeline import queue_deliveries
from lti_tool.tasks import dispatch
from lti_tool.urls_for import base_url
from lti_tool.views.account_session import page_session
from lti_tool.views.image_errors import image_rejection_text
from lti_tool.views.rule_form import (
    ActivityRuleFields,
    InvalidMinPercent,
    activity_rule_fields,
    build_activities_rule,
    is_activity_id,
    is_ags_activity,
    parse_min_percent,
)
from lti_tool.views.rule_text import RuleDescription, describe_rule
from lti_tool.views.step_text import Grades, describe_step, progress_grades
from lti_tool.views.headers import (
    allow_form_redirects_to_other_sites,
    allow_framing_by,
    image_response,
    session_frame_origins,
    session_registration,
)

log = get_logger(__name__)
bp = Blueprint("pages", __name__)

NAME_MAX = 200
TEXT_MAX = 4000
# Award rule kinds the form offers, in the order shown. Each kind must be one that
# badge_engine/rules.py accepts; a new kind there gets a line here and a template block.
RULE_KINDS = ("course_completed", "activities_completed")
ACTIVITY_MATCHES = ("all", "any")
# The rule builder names the minimum grade field of an AGS line item this prefix and
# the item's activity id.
MIN_PERCENT_FIELD = "min_percent-"
BACKFILLS_SHOWN = 10


@bp.record_once
def _install_languages(state) -> None:
    i18n.init_app(state.app)


def csrf_token() -> str:
    """Return the CSRF token of this page's session, made on first use.

    The admin area and the course pages keep separate tokens in separate cookies,
    so a course launch, which replaces the course session, leaves open admin forms
    valid.
    """
    stored = page_session()
    if "csrf" not in stored:
        stored["csrf"] = secrets.token_urlsafe(32)
    return stored["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    expected = page_session().get("csrf", "")
    # Without a token in the session (a first visit, or a post from another site
    # without the cookie) an empty field would equal the empty expected value.
    if not expected or not hmac.compare_digest(sent, expected):
        raise BadRequest(
            _(
                "The form expired or was not sent from this page. Reload the page "
                "and submit it again."
            ),
            code="csrf_failed",
        )


@bp.app_context_processor
def inject_csrf():
    return {"csrf_token": csrf_token}


@bp.after_request
def _frame_inside_platform(response: Response) -> Response:
    if request.endpoint == "pages.achievement_image":
        return response
    return allow_framing_by(response, session_frame_origins(session_registration()))


def _course_in_session(course_id: int) -> LtiCourse:
    if session.get("course_id") != course_id:
        raise Forbidden(
            _(
                "This page belongs to a course you did not launch. Open the tool "
                "from the course in your LMS."
            ),
            course_id=course_id,
        )
    course = db_session().scalar(
        select(LtiCourse).where(
            LtiCourse.id == course_id, LtiCourse.provider_id == session["provider_id"]
        )
    )
    if course is None:
        raise NotFound(
            f"course {course_id} not found for this provider",
            shown_message=_(
                "Course %(id)s was not found. Open the tool again from your course "
                "in the LMS.",
                id=course_id,
            ),
            course_id=course_id,
        )
    return course


def _instructor_course(course_id: int) -> LtiCourse:
    course = _course_in_session(course_id)
    if session.get("role") != "instructor":
        raise Forbidden(
            _("Only instructors can change this course's badges."), course_id=course_id
        )
    return course


def _course_achievements(course: LtiCourse) -> list[Achievement]:
    registration = db_session().get(Registration, course.registration_id)
    return list(
        db_session().scalars(
            select(Achievement)
            .where(
                Achievement.provider_id == course.provider_id,
                Achievement.lms_connection_id == registration.lms_connection_id,
                Achievement.lms_course_id == course.lms_course_id,
            )
            .order_by(Achievement.id)
        )
    )


def _course_achievement(course: LtiCourse, public_id: str) -> Achievement:
    for achievement in _course_achievements(course):
        if achievement.public_id == public_id:
            return achievement
    raise NotFound(
        f"badge {public_id!r} not found in course {course.id}",
        shown_message=i18n.gettext_html(
            "This course has no badge with the id %(id)s. It may have been deleted: "
            "the course page lists the course's badges.",
            id=i18n.isolate_ltr(public_id),
        ),
        course_id=course.id,
    )


def missing_steps(
    award_rule: dict,
    names: dict[str, str],
    done: set[str] | None = None,
    grades: Grades | None = None,
) -> list[RuleDescription]:
    """Return the steps a learner still has to take under a rule-builder rule.

    `names` maps activity ids to their names; `done` contains the activities the
    learner has completed. `grades` gives the learner's current grades, which the
    learner's own page shows beside a minimum grade. A rule of another shape is
    described whole, because `done` cannot show which of its parts are met.
    `unmet_requirements` reads the learner's progress instead.
    """
    node = award_rule.get("rule") or {}
    if node.get("kind") == "course_completed" and "window" not in node:
        return [describe_step(node, names)]
    fields = activity_rule_fields(node)
    if fields is None:
        return [describe_step(node, names, grades)]
    steps = [
        describe_step(_activity_node(activity_id, fields), names, grades)
        for activity_id in fields.activity_ids
        if activity_id not in (done or set())
    ]
    if fields.match == "any" and len(steps) > 1:
        # One step of the set is enough, so the steps are the parts of one item. A
        # single step is listed alone, because "one of these" needs a choice.
        heading = Markup.escape(_("Complete one of these activities:"))
        return [RuleDescription(heading, steps)]
    return steps


def _activity_node(activity_id: str, fields: ActivityRuleFields) -> dict:
    """Return the rule node of one activity of a rule-builder rule."""
    if activity_id in fields.min_percent:
        return {
            "kind": "grade_at_least",
            "activity_id": activity_id,
            "min_percent": fields.min_percent[activity_id],
        }
    return {"kind": "activity_completed", "activity_id": activity_id}


def is_builder_rule(award_rule: dict) -> bool:
    """Return whether `missing_steps` can list the rule's steps one by one."""
    node = award_rule.get("rule") or {}
    if node.get("kind") == "course_completed":
        return "window" not in node
    return activity_rule_fields(node) is not None


def unmet_requirements(
    award_rule: dict, progress: LearnerProgress, names: dict[str, str]
) -> list[RuleDescription]:
    """Return the steps for the parts of a valid award rule not yet met."""
    grades = progress_grades(progress)
    return [
        describe_step(node, names, grades)
        for node in missing_rules(award_rule, progress)
    ]


def _live_credential(course: LtiCourse, achievement: Achievement, learner_id: int):
    return db_session().scalar(
        select(Credential).where(
            Credential.provider_id == course.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.learner_id == learner_id,
            Credential.status == CredentialStatus.LIVE.value,
        )
    )


def _revoked_credential(course: LtiCourse, achievement: Achievement, learner_id: int):
    """Return the learner's most recently revoked credential of the achievement."""
    return db_session().scalar(
        select(Credential)
        .where(
            Credential.provider_id == course.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.learner_id == learner_id,
            Credential.status == CredentialStatus.REVOKED.value,
        )
        .order_by(Credential.revoked_at.desc(), Credential.id.desc())
        .limit(1)
    )


def _deliveries(provider_id: int, credential_ids: list[int]) -> dict[int, list]:
    if not credential_ids:
        return {}
    found: dict[int, list] = {}
    for delivery in db_session().scalars(
        select(Delivery)
        .where(
            Delivery.provider_id == provider_id,
            Delivery.credential_id.in_(credential_ids),
        )
        .order_by(Delivery.id)
    ):
        found.setdefault(delivery.credential_id, []).append(delivery)
    return found


def _activity_names(course: LtiCourse) -> dict[str, str]:
    registration = db_session().get(Registration, course.registration_id)
    if registration.lms_connection_id is None:
        return {}
    return stored_activity_names(
        db_session(),
        course.provider_id,
        registration.lms_connection_id,
        course.lms_course_id or "",
    )


def _learner_missing(
    course: LtiCourse, achievement: Achievement, names: dict[str, str]
) -> list[RuleDescription]:
    """Return what the launched learner still has to do, from the stored facts.

    NOTE: like `completed_activity_ids`, this reads the facts and AGS grades the
    bridge has received, not the LMS, so it can lag behind the LMS.
    """
    lms_user_id = str(session.get("lms_user_id"))
    grades = ags_grades(
        db_session(),
        provider_id=course.provider_id,
        lms_connection_id=achievement.lms_connection_id,
        lms_course_id=achievement.lms_course_id,
        lms_user_id=lms_user_id,
    )
    if is_builder_rule(achievement.award_rule):
        done = _done_activities(course, achievement, grades)
        percents = {
            activity_id: grade.percent
            for activity_id, grade in grades.items()
            if grade.percent is not None
        }
        return missing_steps(achievement.award_rule, names, done, percents)

    progress, _read_at = stored_progress(db_session(), achievement, lms_user_id)
    try:
        return unmet_requirements(
            achievement.award_rule, merge_grades(progress, grades), names
        )
    except InvalidAwardRule:
        # A stored rule that no longer validates is described node by node, where
        # each malformed node gets the general sentence.
        return [describe_step(achievement.award_rule.get("rule"), names)]


def _done_activities(
    course: LtiCourse, achievement: Achievement, grades: dict[str, GradeProgress]
) -> set[str]:
    """Return the rule's activities the learner has completed or graded high enough.

    `grades` contains the learner's AGS grades by activity id.
    """
    fields = activity_rule_fields(achievement.award_rule.get("rule") or {})
    if fields is None:
        return set()
    lms_user_id = str(session.get("lms_user_id"))
    plain = [
        activity_id
        for activity_id in fields.activity_ids
        if activity_id not in fields.min_percent
    ]
    done = set()
    if plain:
        done = completed_activity_ids(
            db_session(),
            provider_id=course.provider_id,
            connection_id=achievement.lms_connection_id,
            lms_course_id=achievement.lms_course_id,
            lms_user_id=lms_user_id,
            activity_ids=plain,
        )
    for activity_id, minimum in fields.min_percent.items():
        grade = grades.get(activity_id)
        if grade is None or grade.percent is None:
            continue
        if grade.percent >= minimum:
            done.add(activity_id)
    return done


def disconnected_connection_ids(
    provider_id: int, achievements: list[Achievement]
) -> set[int]:
    """Return the ids of the achievements' LMS connections that were disconnected.

    The badges of such a connection can no longer be earned, because the bridge
    reads no completions for it.
    """
    connection_ids = {achievement.lms_connection_id for achievement in achievements}
    if not connection_ids:
        return set()
    return set(
        db_session().scalars(
            select(LmsConnection.id).where(
                LmsConnection.provider_id == provider_id,
                LmsConnection.id.in_(connection_ids),
                LmsConnection.state == ConnectionState.DISCONNECTED.value,
            )
        )
    )


def _learner_rows(course: LtiCourse, learner_id: int | None) -> list[dict]:
    rows = []
    names = _activity_names(course)
    achievements = _course_achievements(course)
    disconnected = disconnected_connection_ids(course.provider_id, achievements)
    for achievement in achievements:
        credential = None
        revoked = None
        if learner_id is not None:
            credential = _live_credential(course, achievement, learner_id)
        if credential is None and learner_id is not None:
            revoked = _revoked_credential(course, achievement, learner_id)
        # A badge still to earn on a disconnected connection lists no steps,
        # because completing them would award nothing. A revoked badge lists none
        # either, because the learner met its rule once and the card shows the
        # revocation instead.
        unavailable = (
            credential is None
            and revoked is None
            and achievement.lms_connection_id in disconnected
        )
        missing = []
        if credential is None and revoked is None and not unavailable:
            missing = _learner_missing(course, achievement, names)
        rows.append(
            {
                "achievement": achievement,
                "credential": credential,
                "credential_url": credential
                and credential_url(base_url(), credential.public_id),
                "missing": missing,
                "revoked": revoked,
                "unavailable": unavailable,
            }
        )
    # A revoked badge lists its deliveries too, so the page shows which
    # portfolios received it and whether each was sent the revocation.
    shown_credentials = [row["credential"] or row["revoked"] for row in rows]
    credential_ids = [credential.id for credential in shown_credentials if credential]
    deliveries = _deliveries(course.provider_id, credential_ids)
    accounts = _delivery_accounts(course.provider_id, deliveries)
    for row, credential in zip(rows, shown_credentials):
        row["deliveries"] = credential and deliveries.get(credential.id, [])
        row["portfolios"] = accounts
    return rows


def _delivery_accounts(
    provider_id: int, deliveries: dict[int, list]
) -> dict[int, PortfolioAccount]:
    """Return the portfolio accounts the deliveries go to, by account id."""
    ids = {
        delivery.portfolio_account_id
        for found in deliveries.values()
        for delivery in found
        if delivery.portfolio_account_id is not None
    }
    if not ids:
        return {}
    accounts = db_session().scalars(
        select(PortfolioAccount).where(
            PortfolioAccount.provider_id == provider_id,
            PortfolioAccount.id.in_(ids),
        )
    )
    return {account.id: account for account in accounts}


def _award_rows(course: LtiCourse) -> list[dict]:
    ids = [achievement.id for achievement in _course_achievements(course)]
    if not ids:
        return []
    credentials = list(
        db_session().scalars(
            select(Credential)
            .where(
                Credential.provider_id == course.provider_id,
                Credential.achievement_id.in_(ids),
            )
            .order_by(Credential.issued_at.desc())
        )
    )
    deliveries = _deliveries(course.provider_id, [c.id for c in credentials])
    return [
        {"credential": credential, "deliveries": deliveries.get(credential.id, [])}
        for credential in credentials
    ]


def delivery_status_text(status: str) -> str:
    """Label a `DeliveryStatus` value in the page language.

    An unknown value is returned as it is, so a status added to the enum without a
    label here still shows.
    """
    labels = {
        DeliveryStatus.QUEUED.value: _("Waiting to be sent"),
        DeliveryStatus.DELIVERED.value: _("Delivered"),
        DeliveryStatus.RETRYING.value: _("Sending failed, retrying"),
        DeliveryStatus.FAILED.value: _("Sending failed"),
        DeliveryStatus.NO_PORTFOLIO.value: _("No portfolio linked"),
        # Instructors and learners both see this label, so it names no one.
        DeliveryStatus.NEEDS_CONSENT.value: _(
            "Waiting for the portfolio to be linked again"
        ),
        # The route passed the revocation on to the portfolio.
        DeliveryStatus.REVOKED.value: _("Revoked in the portfolio"),
    }
    return labels.get(status, status)


def delivery_text(delivery: Delivery, credential_revoked: bool = False) -> str:
    """Label a delivery in the page language, saying whether the revocation of its
    credential was sent to the portfolio.

    While a revoked credential's route passes the revocation on, the delivery goes
    through the usual statuses again, so those statuses get revocation labels once
    the credential had landed.
    """
    status = delivery.status
    landed = delivery.delivered_at is not None
    if not credential_revoked or status in (
        DeliveryStatus.NEEDS_CONSENT.value,
        DeliveryStatus.NO_PORTFOLIO.value,
    ):
        return delivery_status_text(status)

    if status == DeliveryStatus.REVOKED.value:
        if delivery.revocation_sent_at is not None:
            return _("Delivered, then told that the badge is revoked")
        if landed and delivery.route == RouteName.BADGE_CONNECT.value:
            return _("Delivered. The portfolio reads the revocation from the badge.")
        if landed:
            return _("Delivered, but not told that the badge is revoked")
        return _("Revoked before it reached the portfolio, so nothing was sent")
    if status == DeliveryStatus.DELIVERED.value:
        return _("Delivered, but not told that the badge is revoked")
    if not landed:
        return delivery_status_text(status)
    if status == DeliveryStatus.QUEUED.value:
        return _("Delivered. The revocation is waiting to be sent.")
    if status == DeliveryStatus.RETRYING.value:
        return _("Delivered. Sending the revocation failed, retrying.")
    if status == DeliveryStatus.FAILED.value:
        return _("Delivered. Sending the revocation failed.")

    return delivery_status_text(status)


@bp.app_template_global()
def delivery_label(delivery: Delivery, credential: Credential) -> str:
    """Label a delivery of `credential`, naming the revocation when there is one."""
    revoked = credential.status == CredentialStatus.REVOKED.value
    return delivery_text(delivery, revoked)


@bp.app_template_global()
def badge_image_src(achievement: Achievement) -> str | None:
    """Return the address a page of this bridge loads the badge's image from.

    An image uploaded here is linked by its path, because the stored URL names
    `public_base_url` and the page's `img-src 'self'` would block it when the visitor
    reached the bridge under another host name. Other URLs are returned unchanged.
    """
    url = achievement.image_url
    if not url:
        return None
    own_prefix = base_url() + url_for("pages.achievement_image", public_id="x")[:-1]
    if url.startswith(own_prefix):
        return url[len(base_url()) :]
    return url


def _activities_or_error(course: LtiCourse) -> tuple[list[Activity], str | None]:
    """Read the course's activities for the rule builder, once per request."""
    if "course_activities" in g:
        return g.course_activities
    registration = db_session().get(Registration, course.registration_id)
    connection = None
    if registration.lms_connection_id is not None:
        connection = db_session().scalar(
            select(LmsConnection).where(
                LmsConnection.id == registration.lms_connection_id,
                LmsConnection.provider_id == course.provider_id,
            )
        )
    if connection is None:
        g.course_activities = ([], _("The LMS has no API connection yet."))
        return g.course_activities
    if connection.disconnected:
        g.course_activities = ([], _disconnected_message())
        return g.course_activities
    try:
        activities = read_course_activities(
            current_bridge(), db_session(), connection, course.lms_course_id or ""
        )
        db_session().commit()
        g.course_activities = (activities, None)
    except ActivitiesUnavailable as error:
        g.course_activities = ([], str(error))
    return g.course_activities


def _render_instructor(
    course: LtiCourse,
    *,
    form=None,
    errors=None,
    editing=None,
    preview=None,
    revoke_errors=None,
    revoke_reason="",
    notice=None,
):
    status = 400 if errors or revoke_errors else 200
    activities, activities_error = _activities_or_error(course)
    names = _activity_names(course)
    achievements = _course_achievements(course)
    return (
        render_template(
            "instructor.html",
            course=course,
            achievements=achievements,
            disconnected_connections=disconnected_connection_ids(
                course.provider_id, achievements
            ),
            course_disconnected=_connection_disconnected(
                db_session().get(Registration, course.registration_id)
            ),
            awards=_award_rows(course),
            form=form or {},
            errors=errors or {},
            editing=editing,
            rule_kinds=RULE_KINDS,
            activities=activities,
            activities_error=activities_error,
            describe_rule=lambda rule: describe_rule(rule, names),
            preview=preview,
            activity_names=names,
            skill_rows=_padded_skill_rows((form or {}).get("skills", [])),
            revoke_errors=revoke_errors or {},
            revoke_reason=revoke_reason,
            notice=notice,
        ),
        status,
    )


def _set_notice(course_id: int, kind: str, **values: str | None) -> None:
    """Keep a notice for the instructor page that the redirect after a form opens.

    The session contains its kind and values, not its text, so the page shows it
    in the language it is rendered in.
    """
    session["course_notice"] = {"course_id": course_id, "kind": kind, **values}


@dataclass(frozen=True)
class CourseNotice:
    """A translated notice of the instructor page and the kind of form it follows."""

    kind: str
    text: str


def _pop_notice(course_id: int) -> CourseNotice | None:
    """Return the course's kept notice, translated, and forget it."""
    notice = session.pop("course_notice", None)
    if not isinstance(notice, dict) or notice.get("course_id") != course_id:
        return None
    kind = notice.get("kind")
    text = _notice_text(notice)
    if not isinstance(kind, str) or text is None:
        return None
    return CourseNotice(kind, text)


def _notice_text(notice: dict) -> str | None:
    kind = notice.get("kind")
    name = i18n.isolate(notice.get("name") or "")
    job = notice.get("job")

    if kind == "created" and job:
        return i18n.gettext_html(
            "The badge “%(name)s” was created. Awarding it to learners who already "
            "qualify has started (job %(job)s); its progress is shown below.",
            name=name,
            job=job,
        )
    if kind == "created":
        return i18n.gettext_html(
            "The badge “%(name)s” was created, but it could not be awarded to "
            "learners who already qualify now. Use “Award to learners who already "
            "qualify” to try again.",
            name=name,
        )
    if kind == "saved":
        return i18n.gettext_html("The badge “%(name)s” was saved.", name=name)
    if kind == "revoked":
        return i18n.gettext_html(
            "The badge “%(name)s” of %(learner)s was revoked. Anyone who checks it "
            "now sees that it is revoked, and why.",
            name=name,
            learner=i18n.isolate(notice.get("learner") or ""),
        )
    if kind == "rule_changed" and job:
        return i18n.gettext_html(
            "The badge “%(name)s” was saved. Its award rule changed, so awarding it "
            "to learners who now qualify has started (job %(job)s); its progress is "
            "shown below. Badges already awarded stay as they are.",
            name=name,
            job=job,
        )
    if kind == "rule_changed":
        return i18n.gettext_html(
            "The badge “%(name)s” was saved, but it could not be awarded to learners "
            "who qualify under the new award rule now. Use “Award to learners who "
            "already qualify” to try again. Badges already awarded stay as they are.",
            name=name,
        )
    if kind == "backfill_started":
        return i18n.gettext_html(
            "Awarding “%(name)s” to learners who already qualify has started (job "
            "%(job)s); its progress is shown below.",
            name=name,
            job=job,
        )
    if kind == "backfill_joined":
        return i18n.gettext_html(
            "Awarding “%(name)s” to learners who already qualify was already under "
            "way (job %(job)s), so no second job was started; its progress is shown "
            "below.",
            name=name,
            job=job,
        )
    if kind == "cancel_not_active":
        return _(
            "Job %(job)s had already ended (%(status)s), so there was nothing to "
            "cancel.",
            job=job,
            status=backfill_status_text(notice.get("status") or ""),
        )
    return None


@bp.get("/course/<int:course_id>")
def course(course_id: int):
    found = _course_in_session(course_id)
    if session.get("role") == "instructor":
        return _render_instructor(found, notice=_pop_notice(course_id))
    if session.get("role") == "observer":
        # An observer may watch several learners, so the page lists none of them.
        return render_template("observer.html", course=found)
    # The page contains the portfolio link form.
    allow_form_redirects_to_other_sites()
    return render_template(
        "learner.html",
        course=found,
        rows=_learner_rows(found, session.get("learner_id")),
    )


@bp.get("/course/<int:course_id>/achievements/<public_id>/edit")
def edit_achievement(course_id: int, public_id: str):
    found = _instructor_course(course_id)
    achievement = _course_achievement(found, public_id)
    node = achievement.award_rule.get("rule") or {}
    form = {
        "name": achievement.name,
        "description": achievement.description,
        "criteria": achievement.criteria_narrative,
        "rule_kind": node.get("kind"),
        "activity_ids": [],
        "match": "all",
        "min_percent": {},
        "skills": _skill_rows(achievement.alignments),
    }
    fields = activity_rule_fields(node)
    if fields is not None:
        form["rule_kind"] = "activities_completed"
        form["activity_ids"] = fields.activity_ids
        form["match"] = fields.match
        form["min_percent"] = {
            activity_id: i18n.localized_number(value)
            for activity_id, value in fields.min_percent.items()
        }
    return _render_instructor(found, form=form, editing=achievement)


def _read_text(form: dict, errors: dict, name: str, label: str, limit: int) -> str:
    # NUL cannot be stored in PostgreSQL text and means nothing in a badge text.
    value = (request.form.get(name) or "").replace("\x00", "").strip()
    form[name] = value
    bidi_control = first_bidi_control(value)
    if not value or is_invisible(value):
        errors[name] = _(
            "%(label)s is required. Fill it in and save again.", label=label
        )
    elif bidi_control is not None:
        errors[name] = _(
            "%(label)s contains the direction control character %(character)s, "
            "which can make the text read differently from what is saved. Delete "
            "it and save again. Right-to-left text and the marks U+200E and "
            "U+200F are accepted.",
            label=label,
            character=character_label(bidi_control[1]),
        )
    elif len(value) > limit:
        errors[name] = _(
            "%(label)s is %(length)s characters long. Shorten it to %(limit)s or fewer.",
            label=label,
            length=len(value),
            limit=limit,
        )
    return value


def _read_rule(form: dict, errors: dict, course: LtiCourse) -> dict | None:
    kind = request.form.get("rule_kind", "")
    form["rule_kind"] = kind
    if kind not in RULE_KINDS:
        errors["rule_kind"] = _("Choose when the badge is awarded.")
        return None
    node: dict = {"kind": kind}
    if kind == "activities_completed":
        node = _read_activities_node(form, errors, course)
        if node is None:
            return None
    document = {"version": 1, "rule": node}
    try:
        validate_award_rule(document)
    except InvalidAwardRule as error:
        errors["rule_kind"] = str(error)
        return None
    return document


def _read_activities_node(form: dict, errors: dict, course: LtiCourse) -> dict | None:
    chosen = list(dict.fromkeys(request.form.getlist("activity_ids")))
    match = request.form.get("match", "all")
    form["activity_ids"] = chosen
    form["match"] = match
    # Kept as typed, so the page shows them again beside any error.
    form["min_percent"] = {
        name.removeprefix(MIN_PERCENT_FIELD): value
        for name, value in request.form.items()
        if name.startswith(MIN_PERCENT_FIELD)
    }
    if not chosen:
        errors["activity_ids"] = _("Choose at least one activity.")
        return None
    if match not in ACTIVITY_MATCHES:
        errors["activity_ids"] = _("Choose whether all or any of the activities count.")
        return None
    activities, activities_error = _activities_or_error(course)
    if activities_error:
        errors["activity_ids"] = _(
            "The course's activities could not be read from the LMS: %(reason)s",
            reason=activities_error,
        )
        return None
    existing = {activity.activity_id for activity in activities}
    unknown = [activity_id for activity_id in chosen if activity_id not in existing]
    malformed = [
        activity_id for activity_id in unknown if not is_activity_id(activity_id)
    ]
    if malformed:
        # No LMS gives such an id, so it was typed or altered, not deleted.
        log.info(
            "activity_ids_rejected",
            course_id=course.id,
            activity_ids=[shortened(activity_id) for activity_id in malformed],
        )
        errors["activity_ids"] = _(
            "These are not valid activity ids: %(ids)s. Choose the activities from "
            "the list again.",
            ids=i18n.list_separator().join(
                shortened(activity_id) for activity_id in malformed
            ),
        )
        return None
    if unknown:
        # A rule naming a deleted activity could never be met.
        errors["activity_ids"] = _(
            "These activities no longer exist in the course: %(ids)s. Choose from "
            "the list again.",
            ids=i18n.list_separator().join(unknown),
        )
        return None
    fields = ActivityRuleFields(chosen, match)
    if not _read_min_percents(form, errors, activities, fields):
        return None
    return build_activities_rule(fields)


def _read_min_percents(
    form: dict, errors: dict, activities: list[Activity], fields: ActivityRuleFields
) -> bool:
    """Read the minimum grade fields of the AGS line items into `fields`.

    Each problem is reported on its own field, so the error summary links to it.
    Returns False when any field is invalid.
    """
    form["min_percent"] = {}
    valid = True
    for activity in activities:
        if not is_ags_activity(activity.activity_id):
            continue
        name = MIN_PERCENT_FIELD + activity.activity_id
        text = (request.form.get(name) or "").strip()
        form["min_percent"][activity.activity_id] = text
        if not text:
            continue
        if activity.activity_id not in fields.activity_ids:
            errors[name] = i18n.gettext_html(
                "“%(activity)s” has a minimum grade but is not chosen. Tick it, or "
                "clear its minimum grade.",
                activity=i18n.isolate(activity.name),
            )
            valid = False
            continue
        try:
            fields.min_percent[activity.activity_id] = parse_min_percent(
                text, activity.activity_id
            )
        except InvalidMinPercent:
            errors[name] = _(
                "“%(value)s” is not a grade from 0 to 100. Enter a percentage such "
                "as 70, or leave the field empty.",
                value=text,
            )
            valid = False
    return valid


def _read_skills(form: dict, errors: dict, known: list[dict] | None = None) -> None:
    """Read the skill rows into form["skills"] (as typed) and form["alignments"].

    A row whose link matches one of `known` (the badge's saved alignments) keeps
    that alignment's code and type, which the form does not show. Every invalid
    input gets its own entry in `errors`, keyed by the input's id, so the page
    reports all of them at once. An error about a saved field the form does not
    show goes to errors["skills"], and form["skill_error_ids"] then lists the
    inputs of its row, for the page to mark those only.
    """
    rows = [
        {"name": name.strip(), "url": url.strip(), "framework": framework.strip()}
        for name, url, framework in zip_longest(
            request.form.getlist("skill_name"),
            request.form.getlist("skill_url"),
            request.form.getlist("skill_framework"),
            fillvalue="",
        )
    ]
    rows = [row for row in rows if any(row.values())]
    form["skills"] = rows
    form["alignments"] = []
    form["skill_error_ids"] = []
    saved = {item.get("targetUrl"): item for item in known or ()}
    alignments = []
    for number, row in enumerate(rows, start=1):
        if not row["name"]:
            errors[f"skill_name-{number}"] = _(
                "Skill %(number)s needs a name.", number=number
            )
        if not row["url"].startswith(("https://", "http://")):
            errors[f"skill_url-{number}"] = _(
                "Skill %(number)s needs a link to its description, starting with "
                "https://.",
                number=number,
            )
        alignment = {
            **saved.get(row["url"], {}),
            "targetName": row["name"],
            "targetUrl": row["url"],
        }
        alignment.pop("targetFramework", None)
        if row["framework"]:
            alignment["targetFramework"] = row["framework"]
        alignments.append(alignment)
    _add_alignment_errors(form, errors, list_alignment_errors(alignments))
    if not any(_is_skill_error(name) for name in errors):
        form["alignments"] = validate_alignments(alignments)


def _add_alignment_errors(
    form: dict, errors: dict, found: list[InvalidAlignment]
) -> None:
    """Add each validator error whose input has no error from the form's checks."""
    for error in found:
        input_ids = _skill_input_ids(error)
        if len(input_ids) == 1:
            errors.setdefault(input_ids[0], str(error))
            continue
        if "skills" not in errors:
            errors["skills"] = str(error)
            form["skill_error_ids"] = input_ids


def _is_skill_error(name: str) -> bool:
    return name == "skills" or name.startswith(tuple(_SKILL_INPUTS.values()))


# The form's input of each alignment field; the form has no input for the others.
_SKILL_INPUTS = {
    "targetName": "skill_name",
    "targetUrl": "skill_url",
    "targetFramework": "skill_framework",
}


def _skill_input_ids(error: InvalidAlignment) -> list[str]:
    """Return the ids of the skill inputs that `error` is about.

    An error about a field the form does not show (a saved alignment's code or
    type) marks the alignment's whole row, and an error about no one alignment
    marks no input.
    """
    if error.position is None:
        return []
    if error.field in _SKILL_INPUTS:
        return [f"{_SKILL_INPUTS[error.field]}-{error.position}"]
    return [f"{name}-{error.position}" for name in _SKILL_INPUTS.values()]


def _padded_skill_rows(rows: list[dict]) -> list[dict]:
    """Return the rows with empty ones added: at least three, one spare if room."""
    wanted = min(MAX_ALIGNMENTS, max(3, len(rows) + 1))
    empty = {"name": "", "url": "", "framework": ""}
    return rows + [empty] * (wanted - len(rows))


def _skill_rows(alignments: list[dict] | None) -> list[dict]:
    return [
        {
            "name": item.get("targetName", ""),
            "url": item.get("targetUrl", ""),
            "framework": item.get("targetFramework", ""),
        }
        for item in alignments or ()
    ]


def _read_image(errors: dict, provider_id: int) -> AchievementImage | None:
    upload = request.files.get("image")
    if upload is None or not upload.filename:
        return None
    content = upload.read()
    try:
        checked = check_image(content)
    except ImageRejected as error:
        log.info(
            "badge_image_rejected",
            provider_id=provider_id,
            code=error.code,
            reason=str(error),
        )
        errors["image"] = image_rejection_text(error)
        return None
    return AchievementImage(
        provider_id=provider_id,
        media_type=checked.media_type,
        content=content,
        width=checked.width,
        height=checked.height,
    )


def _read_achievement_form(course: LtiCourse, known_alignments: list | None = None):
    """Read and check the badge form; return (values, errors, rule, image)."""
    form: dict = {}
    errors: dict = {}
    try:
        check_csrf()
        _read_text(form, errors, "name", _("Badge name"), NAME_MAX)
        _read_text(form, errors, "description", _("Description"), TEXT_MAX)
        _read_text(form, errors, "criteria", _("Criteria"), TEXT_MAX)
        rule = _read_rule(form, errors, course)
        _read_skills(form, errors, known_alignments)
        image = _read_image(errors, course.provider_id)
    except RequestEntityTooLarge:
        # The whole request is over the app's limit, so no field can be read back.
        errors["image"] = _("The upload is too large. Use an image of at most 512 KB.")
        return form, errors, None, None
    return form, errors, rule, image


def _image_url(image: AchievementImage | None) -> str | None:
    """Store an uploaded image and return its public URL; None without an upload."""
    if image is None:
        return None
    db_session().add(image)
    db_session().flush()
    return base_url() + url_for("pages.achievement_image", public_id=image.public_id)


def _disconnected_message() -> str:
    return _(
        "The provider admin disconnected this course's LMS connection, so "
        "completions cannot be read and badges cannot be added or earned. Ask the "
        "provider admin to connect the LMS again and register the platform with "
        "the new connection. The new connection does not take over this course's "
        "badges, so add them again after that. Badges already issued stay valid."
    )


def _connection_disconnected(registration: Registration) -> bool:
    connection = db_session().scalar(
        select(LmsConnection).where(
            LmsConnection.id == registration.lms_connection_id,
            LmsConnection.provider_id == registration.provider_id,
        )
    )
    return connection is not None and connection.disconnected


def _name_taken_message(existing: Achievement, renaming: bool = False) -> Markup:
    if renaming:
        return i18n.gettext_html(
            "This course already has another badge named “%(name)s”. Choose "
            "another name.",
            name=i18n.isolate(existing.name),
        )
    return i18n.gettext_html(
        "This course already has a badge named “%(name)s”. Edit that badge "
        "instead of adding another one, or choose another name.",
        name=i18n.isolate(existing.name),
    )


def _instructor_actor() -> str:
    return f"lti:{session.get('lms_user_id')}"


def instructor_audit_detail() -> dict[str, str]:
    """Return the audit detail that records the launch role of the course page's user.

    Both instructors and LMS administrators use the instructor's view, so the audit
    page reads `actor_role` ("instructor" or "admin") to label who acted. A session
    without the launch role adds nothing.
    """
    role = session.get("lti_role")
    return {"actor_role": role} if isinstance(role, str) and role else {}


@bp.post("/course/<int:course_id>/achievements")
def create_achievement(course_id: int):
    found = _instructor_course(course_id)
    form, errors, rule, image = _read_achievement_form(found)
    if errors:
        return _render_instructor(found, form=form, errors=errors)

    registration = db_session().get(Registration, found.registration_id)
    if registration.lms_connection_id is None:
        raise BadRequest(
            _(
                "This course's LMS has no API connection yet, so completions cannot "
                "be read. Ask the provider admin to connect the LMS first."
            )
        )
    if _connection_disconnected(registration):
        raise BadRequest(_disconnected_message(), code="connection_disconnected")
    db = db_session()
    achievement = Achievement(
        provider_id=found.provider_id,
        lms_connection_id=registration.lms_connection_id,
        lms_course_id=found.lms_course_id,
        name=form["name"],
        description=form["description"],
        criteria_narrative=form["criteria"],
        alignments=form["alignments"] or None,
        award_rule=rule,
    )
    try:
        achievement_ops.insert_achievement(db, achievement)
    except achievement_ops.AchievementExists as error:
        errors["name"] = _name_taken_message(error.existing)
        return _render_instructor(found, form=form, errors=errors)
    achievement.image_url = _image_url(image)
    record_audit(
        db,
        provider_id=found.provider_id,
        actor=_instructor_actor(),
        action="achievement.created",
        target=f"achievement:{achievement.public_id}",
        # The LMS course id, as `achievement add` and the API record it.
        detail={
            "course_id": found.lms_course_id,
            "rule": rule["rule"]["kind"],
            **instructor_audit_detail(),
        },
    )
    # Learners who already meet the rule get the badge without waiting for another
    # completion event: a worker reads the roster and awards them.
    job, error = start_automatic_backfill(
        db,
        _instructor_actor(),
        achievement,
        trigger=BackfillTrigger.ACHIEVEMENT_CREATED,
        actor_detail=instructor_audit_detail(),
    )
    if error is not None:
        log.info(
            "backfill_not_started",
            achievement=achievement.public_id,
            reason=str(error),
        )
    db.commit()
    if job is not None and not job.joined:
        send_backfill(job.id)
    _set_notice(
        course_id,
        "created",
        name=achievement.name,
        job=job.public_id if job is not None else None,
    )

    return redirect(url_for("pages.course", course_id=course_id), code=303)


# Learners a rule preview reads, because each one costs one to four LMS requests
# while the instructor waits.
PREVIEW_LEARNERS = 100


def _rule_preview(
    course: LtiCourse, rule: dict, editing: Achievement | None = None
) -> dict:
    """Evaluate an award rule for the course's learners now, issuing nothing.

    When `editing` is a saved badge, its current holders are listed apart.
    """
    registration = db_session().get(Registration, course.registration_id)
    if registration.lms_connection_id is None:
        return {"error": _("This course's LMS has no API connection yet.")}
    if _connection_disconnected(registration):
        return {"error": _disconnected_message()}
    # A transient badge with the form's rule: never added to the session.
    draft = Achievement(
        provider_id=course.provider_id,
        lms_connection_id=registration.lms_connection_id,
        lms_course_id=course.lms_course_id,
        award_rule=rule,
    )
    try:
        rows = achievement_ops.preview(
            db_session(),
            current_bridge(),
            draft,
            max_learners=PREVIEW_LEARNERS + 1,
            holders_of=editing,
        )
    except ActionError as error:
        log.info("rule_preview_failed", course_id=course.id, reason=str(error))
        return {"error": str(error)}
    names = _activity_names(course)
    listed = rows[:PREVIEW_LEARNERS]
    return {
        "complete": len(rows) <= PREVIEW_LEARNERS,
        "would_earn": sum(1 for row in listed if row.would_earn),
        "already_hold": sum(1 for row in listed if row.holds),
        "rows": [
            {
                "name": row.name or row.lms_user_id,
                "met": row.met,
                "holds": row.holds,
                "missing": []
                if row.met
                else missing_steps(rule, names, set(row.completed_activities)),
            }
            for row in listed
        ],
    }


def _preview_form(course: LtiCourse, editing: Achievement | None):
    """Render the badge form with its values kept and the rule's preview below it."""
    check_csrf()
    form: dict = {
        name: request.form.get(name, "").strip()
        for name in ("name", "description", "criteria")
    }
    errors: dict = {}
    rule = _read_rule(form, errors, course)
    # The preview does not depend on the skills, so a skill error is shown beside
    # the skills (the inputs at fault point to it) without holding the preview back.
    skill_errors: dict = {}
    _read_skills(form, skill_errors)
    if errors:
        return _render_instructor(
            course, form=form, errors={**errors, **skill_errors}, editing=editing
        )
    preview = _rule_preview(course, rule, editing)
    # A Canvas token refresh during the reads updated the stored tokens.
    db_session().commit()
    return _render_instructor(
        course, form=form, errors=skill_errors, editing=editing, preview=preview
    )


@bp.post("/course/<int:course_id>/achievements/preview")
def preview_new_achievement(course_id: int):
    return _preview_form(_instructor_course(course_id), None)


@bp.post("/course/<int:course_id>/achievements/<public_id>/preview")
def preview_achievement(course_id: int, public_id: str):
    found = _instructor_course(course_id)
    return _preview_form(found, _course_achievement(found, public_id))


def _live_credential_count(achievement: Achievement) -> int:
    return db_session().scalar(
        select(func.count(Credential.id)).where(
            Credential.provider_id == achievement.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.status == CredentialStatus.LIVE.value,
        )
    )


@bp.post("/course/<int:course_id>/achievements/<public_id>")
def update_achievement(course_id: int, public_id: str):
    """Save an edited badge; with holders, correct it so each gets a new version.

    The award rule changes in place, because issued credentials do not contain it.
    A change to the name, description, criteria or image of a badge that learners
    already hold goes through `correct_achievement`: each holder receives a new
    version and the earlier one is marked superseded, so both stay verifiable.
    """
    found = _instructor_course(course_id)
    achievement = _course_achievement(found, public_id)
    form, errors, rule, image = _read_achievement_form(found, achievement.alignments)
    if errors:
        return _render_instructor(found, form=form, errors=errors, editing=achievement)

    existing = achievement_ops.same_name_achievement(
        db_session(),
        provider_id=achievement.provider_id,
        connection_id=achievement.lms_connection_id,
        course_id=achievement.lms_course_id,
        name=form["name"],
        exclude=achievement,
    )
    if existing is not None:
        errors["name"] = _name_taken_message(existing, renaming=True)
        return _render_instructor(found, form=form, errors=errors, editing=achievement)

    db = db_session()
    changes = {
        "name": form["name"],
        "description": form["description"],
        "criteria_narrative": form["criteria"],
        "image_url": _image_url(image) or achievement.image_url,
        "alignments": form["alignments"] or None,
    }
    changed = [
        field
        for field, value in changes.items()
        if value != (getattr(achievement, field) or None)
    ]
    rule_detail = {}
    # An equivalent rule written differently (the builder lists activities in page
    # order, for one) keeps the stored document, so it starts no backfill.
    if not same_award_rule(rule, achievement.award_rule):
        rule_detail = achievement_ops.rule_change_detail(achievement.award_rule, rule)
        achievement.award_rule = rule
    follow_ups: list[int] = []
    new_versions: list[str] = []
    # Only a text or image change gives holders a new version: issued credentials
    # do not contain the award rule.
    if changed and _live_credential_count(achievement):
        correction = correct_achievement(
            db,
            vault=current_bridge().vault,
            base_url=base_url(),
            achievement=achievement,
            changes=changes,
        )
        for _old, new in correction.versions:
            follow_ups += queue_deliveries(db, new)
            new_versions.append(new.public_id)
    else:
        for field in changed:
            setattr(achievement, field, changes[field])
    # A save that changes nothing, an equivalent rule included, leaves no entry.
    if changed or rule_detail:
        record_audit(
            db,
            provider_id=found.provider_id,
            actor=_instructor_actor(),
            action="achievement.corrected" if new_versions else "achievement.updated",
            target=f"achievement:{achievement.public_id}",
            detail={
                "course_id": found.lms_course_id,
                "rule": rule["rule"]["kind"],
                "changed": changed + (["award_rule"] if rule_detail else []),
                "new_versions": new_versions,
                **rule_detail,
                **instructor_audit_detail(),
            },
        )
    job = error = None
    if rule_detail:
        job, error = start_automatic_backfill(
            db,
            _instructor_actor(),
            achievement,
            actor_detail=instructor_audit_detail(),
        )
    if error is not None:
        log.info(
            "backfill_not_started",
            achievement=achievement.public_id,
            reason=str(error),
        )
    db.commit()
    dispatch(follow_ups)
    if job is not None and not job.joined:
        send_backfill(job.id)
    _set_notice(
        course_id,
        "rule_changed" if rule_detail else "saved",
        name=achievement.name,
        job=job.public_id if job is not None else None,
    )

    return redirect(url_for("pages.course", course_id=course_id), code=303)


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run a cell that starts with one of these as a formula.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


@bp.get("/course/<int:course_id>/awards.csv")
def export_awards(course_id: int):
    found = _instructor_course(course_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["learner", "lms_user_id", "badge", "awarded_at", "status", "delivery", "url"]
    )
    for row in _award_rows(found):
        credential = row["credential"]
        writer.writerow(
            [
                _csv_cell(credential.learner.name),
                _csv_cell(credential.learner.lms_user_id),
                _csv_cell(credential.achievement.name),
                credential.awarded_at.isoformat(),
                credential.status,
                ";".join(delivery.status for delivery in row["deliveries"]),
                credential_url(base_url(), credential.public_id),
            ]
        )
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="awards-course-{found.id}.csv"'
        },
    )


@bp.post("/course/<int:course_id>/awards/<public_id>/revoke")
def revoke_award(course_id: int, public_id: str):
    found = _instructor_course(course_id)
    check_csrf()
    ids = [achievement.id for achievement in _course_achievements(found)]
    db = db_session()
    credential = db.scalar(
        select(Credential).where(
            Credential.provider_id == found.provider_id,
            Credential.public_id == public_id,
            Credential.achievement_id.in_(ids),
        )
    )
    if credential is None:
        raise NotFound(
            f"credential {public_id!r} not found in course {found.id}",
            shown_message=i18n.gettext_html(
                "No badge awarded in this course has the id %(id)s. The course page "
                "lists the awarded badges.",
                id=i18n.isolate_ltr(public_id),
            ),
            course_id=found.id,
        )
    reason = (request.form.get("reason") or "").replace("\x00", "").strip()
    reason_error = _revocation_reason_error(reason)
    if reason_error is not None:
        return _render_instructor(
            found, revoke_errors={public_id: reason_error}, revoke_reason=reason
        )
    try:
        event = revoke_credential(db, credential, reason, actor=_instructor_actor())
    except AlreadyRevoked as error:
        raise BadRequest(
            _(
                "This badge was already revoked on %(date)s, and a revocation "
                "cannot be changed. Reload the page to see its status.",
                date=i18n.localized_date(error.revoked_at),
            ),
            code="already_revoked",
            credential=public_id,
        ) from None
    except InvalidCredential as error:
        # The reason was checked above, so the engine rejected something else.
        log.warning(
            "revocation_rejected",
            credential=public_id,
            course_id=found.id,
            error=str(error),
        )
        raise BadRequest(
            _("The badge could not be revoked. Reload the page and try again."),
            code="revocation_rejected",
            credential=public_id,
        ) from None
    # The revocation is queued for every portfolio the badge landed in, in this
    # transaction's outbox, so it reaches them even if this process stops now.
    message_ids = requeue_for_revocation(db, credential)
    record_audit(
        db,
        provider_id=found.provider_id,
        actor=event.actor,
        action="credential.revoked",
        target=f"credential:{credential.public_id}",
        # The LMS course id, as every other audit event records a course.
        detail={
            "reason": event.reason,
            "course_id": found.lms_course_id,
            **instructor_audit_detail(),
        },
    )
    learner = credential.learner
    _set_notice(
        course_id,
        "revoked",
        name=credential.achievement.name,
        learner=learner.name or learner.lms_user_id,
    )
    db.commit()
    dispatch(message_ids)

    # The fragment scrolls to the notice, which is in the awards table's section.
    return redirect(
        url_for("pages.course", course_id=course_id) + "#revoke-notice", code=303
    )


def _revocation_reason_error(reason: str) -> str | None:
    """Return the translated field error for a revocation reason, or None if valid."""
    if not reason or is_invisible(reason):
        return _(
            "Enter the reason for revoking this badge, such as “Issued in error”. "
            "Anyone who checks the badge sees it."
        )
    if len(reason) > MAX_REASON_LENGTH:
        return _(
            "The reason is %(length)s characters long. Shorten it to %(limit)s or "
            "fewer.",
            length=i18n.localized_number(len(reason)),
            limit=i18n.localized_number(MAX_REASON_LENGTH),
        )
    return None


@bp.get("/course/<int:course_id>/credentials/<public_id>/download")
def download_credential(course_id: int, public_id: str):
    """Send the learner's own signed credential as a JSON file.

    The learner page links the baked PNG and SVG to the public routes
    `/credentials/<id>/badge.png` and `.svg`, which serve any credential by its id.
    """
    found = _course_in_session(course_id)
    credential = db_session().scalar(
        select(Credential).where(
            Credential.provider_id == found.provider_id,
            Credential.public_id == public_id,
            Credential.learner_id == session.get("learner_id"),
        )
    )
    if credential is None:
        abort(404)
    response = jsonify(credential.document)
    response.mimetype = "application/vc+ld+json"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="badge-{credential.public_id}.json"'
    )
    return response


@bp.get("/images/<public_id>")
def achievement_image(public_id: str):
    """Serve an uploaded badge image; public, like the achievement that shows it."""
    image = db_session().scalar(
        select(AchievementImage).where(AchievementImage.public_id == public_id)
    )
    if image is None:
        abort(404)
    response = image_response(image.content, image.media_type)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


# --- Backfills: award a badge to learners who already qualify ---------------------


def _course_jobs(course: LtiCourse) -> list[BackfillJob]:
    """Return the latest backfill jobs of the course's badges, newest first."""
    ids = {achievement.id for achievement in _course_achievements(course)}
    if not ids:
        return []
    registration = db_session().get(Registration, course.registration_id)
    jobs = db_session().scalars(
        select(BackfillJob)
        .where(
            BackfillJob.provider_id == course.provider_id,
            BackfillJob.lms_connection_id == registration.lms_connection_id,
            BackfillJob.lms_course_id == course.lms_course_id,
        )
        .order_by(BackfillJob.id.desc())
        .limit(BACKFILLS_SHOWN)
    )
    return [job for job in jobs if set(job.achievement_ids) <= ids]


def _job_row(job: BackfillJob, names: dict[int, str]) -> dict:
    return {
        "id": job.public_id,
        "badges": [
            names.get(achievement_id, "") for achievement_id in job.achievement_ids
        ],
        "active": job.status in BACKFILL_ACTIVE,
        "cancel_requested": job.cancel_requested,
        **job_summary(job),
        "status_text": backfill_status_text(job.status, job.cancel_requested),
        # Several jobs of one badge (created, then its rule changed) differ only
        # by why and when they were queued.
        "queued_text": _(
            "%(reason)s Queued on %(time)s.",
            reason=backfill_trigger_text(job.trigger),
            time=i18n.localized_datetime(job.created_at),
        ),
        # "Label: number" pairs read right for any count in every language, where
        # "1 learners" would need a plural form per count.
        "counts_text": _(
            "Learners checked: %(seen)s. Badges awarded: %(issued)s. Already held: "
            "%(held)s. Not yet qualified: %(not_met)s. Could not be read: %(failed)s. "
            "Could not be issued: %(rejected)s.",
            seen=job.learners_seen,
            issued=job.issued,
            held=job.already_held,
            not_met=job.not_met,
            failed=job.failed_reads,
            rejected=job.rejected,
        ),
    }


def backfill_status_text(status: str, cancel_requested: bool = False) -> str:
    if status in BACKFILL_ACTIVE and cancel_requested:
        return _("Stopping after the current page")
    labels = {
        "pending": _("Waiting for a worker"),
        "running": _("Checking learners"),
        "done": _("Finished"),
        "cancelled": _("Cancelled"),
        "failed": _("Failed"),
    }
    return labels.get(status, status)


def backfill_trigger_text(trigger: str) -> str:
    labels = {
        BackfillTrigger.ACHIEVEMENT_CREATED.value: _("The badge was created."),
        BackfillTrigger.RULE_CHANGED.value: _("The badge's award rule changed."),
        BackfillTrigger.MANUAL.value: _("Started on request."),
    }
    return labels.get(trigger, "")


@bp.app_template_global()
def course_backfills(course: LtiCourse) -> list[dict]:
    names = {
        achievement.id: achievement.name for achievement in _course_achievements(course)
    }
    return [_job_row(job, names) for job in _course_jobs(course)]


@bp.post("/course/<int:course_id>/achievements/<public_id>/backfill")
def start_course_backfill(course_id: int, public_id: str):
    """Queue a backfill of one badge; a Celery worker reads the roster, not this request."""
    found = _instructor_course(course_id)
    achievement = _course_achievement(found, public_id)
    check_csrf()
    db = db_session()
    try:
        job = start_achievement_backfill(
            db,
            _instructor_actor(),
            achievement,
            actor_detail=instructor_audit_detail(),
        )
    except ActionError as error:
        # Invalid input or a disconnected connection: the page shows the reason.
        rejected = BadRequest(
            _("The backfill was not started: %(reason)s", reason=str(error)),
            code="backfill_rejected",
            achievement=public_id,
        )
        rejected.status = error.http_status
        raise rejected from None
    db.commit()
    if job.joined:
        log.info("backfill_joined", achievement=public_id, job=job.public_id)
    else:
        send_backfill(job.id)
    _set_notice(
        course_id,
        "backfill_joined" if job.joined else "backfill_started",
        name=achievement.name,
        job=job.public_id,
    )
    # The fragment names the notice, as after a revocation: a fragment that names
    # another element makes the browser move the focus off the notice.
    return redirect(
        url_for("pages.course", course_id=course_id) + "#course-notice", code=303
    )


def _course_job(course: LtiCourse, job_public_id: str) -> BackfillJob:
    for job in _course_jobs(course):
        if job.public_id == job_public_id:
            return job
    raise NotFound(
        f"backfill {job_public_id!r} not found in course {course.id}",
        shown_message=i18n.gettext_html(
            "This course has no backfill with the id %(id)s. The course page lists "
            "the course's backfills.",
            id=i18n.isolate_ltr(job_public_id),
        ),
        course_id=course.id,
    )


@bp.post("/course/<int:course_id>/backfills/<job_public_id>/cancel")
def cancel_course_backfill(course_id: int, job_public_id: str):
    found = _instructor_course(course_id)
    job = _course_job(found, job_public_id)
    check_csrf()
    try:
        cancel_backfill(
            db_session(),
            _instructor_actor(),
            job,
            actor_detail=instructor_audit_detail(),
        )
    except BackfillNotActive as error:
        db_session().rollback()
        log.info("backfill_cancel_not_active", job=job_public_id, status=error.status)
        _set_notice(
            course_id, "cancel_not_active", job=job_public_id, status=error.status
        )
        # The notice takes the focus, which a fragment naming the backfills section
        # would move off it again.
        fragment = "#course-notice"
    else:
        db_session().commit()
        fragment = "#backfills"
    return redirect(url_for("pages.course", course_id=course_id) + fragment, code=303)


@bp.get("/course/<int:course_id>/backfills.json")
def course_backfills_json(course_id: int):
    """Return the course's backfill progress for the page's progress script."""
    found = _instructor_course(course_id)
    return jsonify({"backfills": course_backfills(found)})
