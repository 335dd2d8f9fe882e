"""Routes for "why not yet?", badge corrections, version histories and archives.

- GET  /course/<id>/achievements/<public_id>/explain: JSON explanation for the
  launched learner, or for `?learner=<LMS user id>` in an instructor's request.
- POST /course/<id>/achievements/<public_id>/correct: an instructor corrects the
  badge's text or image; every holder receives a new version.
- GET  /credentials/<public_id>/versions: the public version history (JSON).
- GET  /course/<id>/credentials/<public_id>/archive: the learner's archive of a
  credential, verifiable without this server.

Every query is scoped by the provider the LTI launch put in the session.
"""

from __future__ import annotations


from flask import Blueprint, abort, jsonify, redirect, request, session, url_for
from sqlalchemy import select

from badge_engine.archive import build_archive
from badge_engine.corrections import (
    CorrectionRejected,
    correct_achievement,
    versions_document,
)
from badge_engine.db import utcnow
from badge_engine.explain import Explanation, award_blockers, explain_award
from badge_engine.models import (
    Achievement,
    Credential,
    Learner,
)
from badge_engine.rules import LearnerProgress
from connectors.hpass.models import Delivery, DeliveryStatus
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.errors import MoodleError
from connectors.moodle.progress import read_learner_progress
from lti_tool.ags_progress import ags_grades, merge_grades
from lti_tool.accounts import record_audit
from lti_tool.bridge import current_bridge, db_session
from lti_tool.course_activities import stored_activity_names, stored_progress
from lti_tool.errors import BadRequest, Forbidden, NotFound
from lti_tool.i18n import gettext as _
from lti_tool.logs import get_logger
from lti_tool.pipeline import moodle_client_for, queue_deliveries
from lti_tool.tasks import dispatch
from lti_tool.urls_for import base_url
from lti_tool.views.blocker_text import BlockerText, blocker_text
from lti_tool.views.explain_text import ExplanationText, explanation_text
from lti_tool.views.pages import (
    _course_achievement,
    _course_in_session,
    _instructor_course,
    check_csrf,
    instructor_audit_detail,
)

bp = Blueprint("explain", __name__)
log = get_logger(__name__)


@bp.get("/course/<int:course_id>/achievements/<public_id>/explain")
def explain(course_id: int, public_id: str):
    course = _course_in_session(course_id)
    if session.get("role") == "observer":
        raise Forbidden(
            "an observer cannot read a badge's explanation for a learner; each "
            "learner reads their own when they open the tool from the course",
            shown_message=_(
                "Observers cannot see how learners progress towards a badge. Each "
                "learner sees this when they open the tool from the course themselves."
            ),
            course_id=course_id,
        )
    achievement = _course_achievement(course, public_id)
    learner = _learner_asked_about(course.provider_id, achievement)
    explanation = explain_learner(achievement, learner)
    body = {"achievement": achievement.public_id, **explanation.to_json()}
    if session.get("role") != "instructor":
        # Blockers name enrolment and review states that are for staff.
        body.pop("blockers")
    return jsonify(body)


def _learner_asked_about(provider_id: int, achievement: Achievement) -> Learner | None:
    if session.get("role") == "instructor" and request.args.get("learner"):
        lms_user_id = request.args["learner"]
        return db_session().scalar(
            select(Learner).where(
                Learner.provider_id == provider_id,
                Learner.lms_connection_id == achievement.lms_connection_id,
                Learner.lms_user_id == lms_user_id,
            )
        ) or Learner(
            provider_id=provider_id,
            lms_connection_id=achievement.lms_connection_id,
            lms_user_id=lms_user_id,
        )
    learner_id = session.get("learner_id")
    if learner_id is None:
        return None
    return db_session().scalar(
        select(Learner).where(
            Learner.provider_id == provider_id, Learner.id == learner_id
        )
    )


def explain_learner(achievement: Achievement, learner: Learner | None) -> Explanation:
    """Explain the achievement's rule for the learner, from a fresh LMS read.

    The LMS is read with the bridge's short timeouts. When that read fails, the
    explanation uses the completion facts stored so far and sets `source` to
    "stored_facts".
    """
    enrolment_active = None
    names: dict[str, str] = {}
    if learner is None:
        progress, read_at, source = (
            LearnerProgress(course_completed=False),
            utcnow(),
            "none",
        )
    else:
        progress, read_at, source, enrolment_active, names = _read_progress(
            achievement, learner
        )
    explanation = explain_award(
        achievement.award_rule,
        progress,
        read_at=read_at,
        source=source,
        activity_names=names,
    )
    credential = _latest_credential(achievement, learner)
    explanation.blockers.extend(
        award_blockers(
            learner,
            credential,
            enrolment_active=enrolment_active,
            deliveries_waiting_for_consent=_consent_waits(credential),
        )
    )
    return explanation


def _read_progress(achievement: Achievement, learner: Learner):
    progress, read_at, source, enrolment_active, names = _read_lms_progress(
        achievement, learner
    )
    grades = ags_grades(
        db_session(),
        provider_id=achievement.provider_id,
        lms_connection_id=achievement.lms_connection_id,
        lms_course_id=achievement.lms_course_id,
        lms_user_id=learner.lms_user_id,
    )
    return merge_grades(progress, grades), read_at, source, enrolment_active, names


def _read_lms_progress(achievement: Achievement, learner: Learner):
    db = db_session()
    connection = db.scalar(
        select(LmsConnection).where(
            LmsConnection.id == achievement.lms_connection_id,
            LmsConnection.provider_id == achievement.provider_id,
        )
    )
    # A connection registered by LTI only has no API token to read Moodle with.
    if (
        connection is not None
        and connection.kind == LmsKind.MOODLE.value
        and connection.api_token_encrypted is not None
    ):
        client = moodle_client_for(current_bridge(), connection)
        try:
            names = {
                str(module.cmid): module.name
                for module in client.get_course_contents(int(achievement.lms_course_id))
            }
            progress = read_learner_progress(
                client, achievement.lms_course_id, learner.lms_user_id
            )
            return progress, utcnow(), "lms", True, names
        except MoodleError as error:
            log.warning(
                "explain_lms_read_failed",
                errorcode=error.errorcode,
                provider_id=achievement.provider_id,
                connection_id=connection.id,
            )
            enrolment_active = False if error.errorcode == "nottracked" else None
        finally:
            client.close()
    else:
        enrolment_active = None
    progress, read_at = stored_progress(db_session(), achievement, learner.lms_user_id)
    # The names the bridge kept from its last read of the course's activities.
    names = stored_activity_names(
        db_session(),
        achievement.provider_id,
        achievement.lms_connection_id,
        achievement.lms_course_id,
    )
    return progress, read_at, "stored_facts", enrolment_active, names


def _latest_credential(
    achievement: Achievement, learner: Learner | None
) -> Credential | None:
    if learner is None or learner.id is None:
        return None
    return db_session().scalar(
        select(Credential)
        .where(
            Credential.provider_id == achievement.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.learner_id == learner.id,
        )
        .order_by(Credential.id.desc())
    )


def _consent_waits(credential: Credential | None) -> int:
    if credential is None:
        return 0
    return len(
        db_session()
        .scalars(
            select(Delivery.id).where(
                Delivery.provider_id == credential.provider_id,
                Delivery.credential_id == credential.id,
                Delivery.status == DeliveryStatus.NEEDS_CONSENT.value,
            )
        )
        .all()
    )


@bp.post("/course/<int:course_id>/achievements/<public_id>/correct")
def correct(course_id: int, public_id: str):
    course = _instructor_course(course_id)
    achievement = _course_achievement(course, public_id)
    check_csrf()
    changes = {
        field: request.form[form_name].strip()
        for form_name, field in (
            ("name", "name"),
            ("description", "description"),
            ("criteria", "criteria_narrative"),
            ("image_url", "image_url"),
        )
        if form_name in request.form and request.form[form_name].strip()
    }
    db = db_session()
    try:
        correction = correct_achievement(
            db,
            vault=current_bridge().vault,
            base_url=base_url(),
            achievement=achievement,
            changes=changes,
        )
    except CorrectionRejected as error:
        raise BadRequest(
            f"The badge was not corrected: {error}.",
            code="correction_rejected",
            achievement=public_id,
        ) from None
    follow_ups = []
    for _old, new in correction.versions:
        follow_ups += queue_deliveries(db, new)
    record_audit(
        db,
        provider_id=course.provider_id,
        actor=f"lti:{session.get('lms_user_id')}",
        action="achievement.corrected",
        target=f"achievement:{achievement.public_id}",
        detail={
            "course_id": achievement.lms_course_id,
            "changed": list(correction.changed),
            "new_versions": [new.public_id for _old, new in correction.versions],
            **instructor_audit_detail(),
        },
    )
    db.commit()
    dispatch(follow_ups)
    log.info(
        "achievement_corrected",
        achievement_id=achievement.id,
        provider_id=course.provider_id,
        versions=len(correction.versions),
    )
    return redirect(url_for("pages.course", course_id=course_id) + "#awards", code=303)


@bp.get("/credentials/<public_id>/versions")
def versions(public_id: str):
    found = db_session().scalar(
        select(Credential).where(Credential.public_id == public_id)
    )
    if found is None:
        raise NotFound(f"no credential {public_id!r} exists on this bridge")
    return jsonify(versions_document(db_session(), base_url(), found))


@bp.get("/course/<int:course_id>/credentials/<public_id>/archive")
def archive(course_id: int, public_id: str):
    """Send the learner's archive of their credential (any version, any status)."""
    course = _course_in_session(course_id)
    db = db_session()
    credential = db.scalar(
        select(Credential).where(
            Credential.provider_id == course.provider_id,
            Credential.public_id == public_id,
            Credential.learner_id == session.get("learner_id"),
        )
    )
    if credential is None:
        abort(404)
    document = build_archive(
        db, vault=current_bridge().vault, base_url=base_url(), credential=credential
    )
    # Signing the status list may create the provider's first key.
    db.commit()
    response = jsonify(document)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="badge-{credential.public_id}-archive.json"'
    )
    return response


@bp.app_template_global()
def why_not_yet(achievement: Achievement) -> ExplanationText | None:
    """Explain the achievement for the launched learner, in the page language.

    Returns None for staff. Used by `_explain.html` on the course pages, and reads
    the LMS like the JSON route.
    """
    if session.get("role") == "instructor" or session.get("learner_id") is None:
        return None
    learner = _learner_asked_about(achievement.provider_id, achievement)
    return explanation_text(explain_learner(achievement, learner))


@bp.app_template_global()
def award_blockers_for(credential: Credential) -> list[BlockerText]:
    """Word what keeps an awarded learner's badge under review, for instructors."""
    blockers = award_blockers(
        credential.learner,
        credential,
        enrolment_active=None,
        deliveries_waiting_for_consent=_consent_waits(credential),
    )
    return [blocker_text(blocker) for blocker in blockers]


@bp.app_template_global()
def credential_versions(credential: Credential) -> dict:
    """Return the credential's public version history, for `_versions.html`."""
    return versions_document(db_session(), base_url(), credential)
