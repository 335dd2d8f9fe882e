"""Pages inside the LMS: the course's badges for learners and instructors."""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from sqlalchemy import select

from badge_engine.models import Achievement, Credential, CredentialStatus
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.urls import credential_url
from connectors.hpass.models import Delivery
from lti_tool.bridge import db_session
from lti_tool.errors import BadRequest, Forbidden
from lti_tool.models import LtiCourse, Registration
from lti_tool.urls_for import base_url

bp = Blueprint("pages", __name__)

NAME_MAX = 200
TEXT_MAX = 4000


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        raise BadRequest(
            "the form expired or was not sent from this page; reload the page and "
            "submit it again",
            code="csrf_failed",
        )


@bp.app_context_processor
def inject_csrf():
    return {"csrf_token": csrf_token}


def _course_in_session(course_id: int) -> LtiCourse:
    if session.get("course_id") != course_id:
        raise Forbidden(
            "this page belongs to a course you did not launch; open the tool from "
            "the course in your LMS",
            course_id=course_id,
        )
    course = db_session().scalar(
        select(LtiCourse).where(
            LtiCourse.id == course_id, LtiCourse.provider_id == session["provider_id"]
        )
    )
    if course is None:
        abort(404)
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


def _learner_rows(course: LtiCourse, learner_id: int | None) -> list[dict]:
    db = db_session()
    rows = []
    for achievement in _course_achievements(course):
        credential = None
        deliveries = []
        if learner_id is not None:
            credential = db.scalar(
                select(Credential).where(
                    Credential.provider_id == course.provider_id,
                    Credential.achievement_id == achievement.id,
                    Credential.learner_id == learner_id,
                    Credential.status == CredentialStatus.LIVE.value,
                )
            )
        if credential is not None:
            deliveries = db.scalars(
                select(Delivery).where(
                    Delivery.provider_id == course.provider_id,
                    Delivery.credential_id == credential.id,
                )
            ).all()
        rows.append(
            {
                "achievement": achievement,
                "credential": credential,
                "credential_url": credential
                and credential_url(base_url(), credential.public_id),
                "deliveries": deliveries,
                "missing": [] if credential else ["Complete the course"],
            }
        )
    return rows


def _award_rows(course: LtiCourse) -> list[Credential]:
    ids = [achievement.id for achievement in _course_achievements(course)]
    if not ids:
        return []
    return list(
        db_session().scalars(
            select(Credential)
            .where(
                Credential.provider_id == course.provider_id,
                Credential.achievement_id.in_(ids),
            )
            .order_by(Credential.issued_at.desc())
        )
    )


@bp.get("/course/<int:course_id>")
def course(course_id: int):
    found = _course_in_session(course_id)
    if session.get("role") == "instructor":
        return render_template(
            "instructor.html",
            course=found,
            achievements=_course_achievements(found),
            awards=_award_rows(found),
        )
    return render_template(
        "learner.html",
        course=found,
        rows=_learner_rows(found, session.get("learner_id")),
    )


def _form_text(name: str, label: str, limit: int) -> str:
    value = (request.form.get(name) or "").strip()
    if not value:
        raise BadRequest(f"{label} is required; fill it in and save again")
    if len(value) > limit:
        raise BadRequest(
            f"{label} is {len(value)} characters long; shorten it to {limit} or fewer"
        )
    return value


@bp.post("/course/<int:course_id>/achievements")
def create_achievement(course_id: int):
    found = _course_in_session(course_id)
    if session.get("role") != "instructor":
        raise Forbidden("only instructors can create badges", course_id=course_id)
    _check_csrf()
    name = _form_text("name", "Badge name", NAME_MAX)
    description = _form_text("description", "Description", TEXT_MAX)
    criteria = _form_text("criteria", "Criteria", TEXT_MAX)

    registration = db_session().get(Registration, found.registration_id)
    if registration.lms_connection_id is None:
        raise BadRequest(
            "this course's LMS has no API connection yet, so completions cannot be "
            "read; ask the provider admin to connect the LMS first"
        )
    db = db_session()
    db.add(
        Achievement(
            provider_id=found.provider_id,
            lms_connection_id=registration.lms_connection_id,
            lms_course_id=found.lms_course_id,
            name=name,
            description=description,
            criteria_narrative=criteria,
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()

    return redirect(url_for("pages.course", course_id=course_id), code=303)
