"""LTI 1.3 endpoints per registration: OIDC login initiation, launch and JWKS."""

from __future__ import annotations

import structlog
from flask import Blueprint, jsonify, redirect, request, session, url_for
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException
from sqlalchemy import select

from badge_engine.models import Learner
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import LaunchRejected, NotFound
from lti_tool.lti.http import timeout_session
from lti_tool.lti.tool_conf import RegistrationToolConf
from lti_tool.logs import get_logger
from lti_tool.models import LtiCourse, Registration
from lti_tool.urls_for import launch_url_of

bp = Blueprint("lti", __name__, url_prefix="/lti")
log = get_logger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR_ROLES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
)


def _registration_or_404(public_id: str) -> Registration:
    registration = db_session().scalar(
        select(Registration).where(Registration.public_id == public_id)
    )
    if registration is None:
        raise NotFound(
            f"no LTI registration {public_id!r} exists on this bridge; check the tool "
            "URLs configured in the LMS against the provider admin page",
            registration=public_id,
        )
    return registration


def _tool_conf(registration: Registration) -> RegistrationToolConf:
    return RegistrationToolConf(db_session(), current_bridge().vault, registration)


def _flask_request() -> FlaskRequest:
    return FlaskRequest()


@bp.route("/<public_id>/login", methods=["GET", "POST"])
def login(public_id: str):
    registration = _registration_or_404(public_id)
    params = request.values
    issuer, client_id = params.get("iss"), params.get("client_id")
    ids = dict(registration=public_id, issuer=issuer, client_id=client_id)
    if issuer != registration.issuer or (client_id and client_id != registration.client_id):
        raise LaunchRejected(
            f"this login URL belongs to issuer {registration.issuer!r} and client "
            f"{registration.client_id!r}, but the platform sent issuer {issuer!r} and "
            f"client {client_id!r}; use the login URL of the matching registration",
            **ids,
        )
    oidc_login = FlaskOIDCLogin(_flask_request(), _tool_conf(registration))
    try:
        return oidc_login.redirect(launch_url_of(registration))
    except LtiException as error:
        raise LaunchRejected(f"OIDC login initiation failed: {error}", **ids) from None


def _launch_ids(message_launch) -> dict:
    try:
        body = message_launch._get_jwt_body() or {}
    except LtiException:
        # The token was rejected before it was decoded; no ids are known yet.
        body = {}
    return {
        "issuer": body.get("iss"),
        "client_id": body.get("aud") if isinstance(body.get("aud"), str) else None,
        "deployment_id": body.get(CLAIM + "deployment_id"),
    }


@bp.post("/<public_id>/launch")
def launch(public_id: str):
    registration = _registration_or_404(public_id)
    message_launch = FlaskMessageLaunch(
        _flask_request(),
        _tool_conf(registration),
        requests_session=timeout_session(current_bridge().settings.http_timeout_seconds),
    )
    try:
        data = message_launch.get_launch_data()
    except LtiException as error:
        raise LaunchRejected(
            f"the LTI launch failed validation: {error}. Launch the tool again from "
            "the course; if it keeps failing, the provider admin should check the "
            "registration's issuer, client id, deployment id and key set URL.",
            registration=public_id,
            **_launch_ids(message_launch),
        ) from None

    if not message_launch.is_resource_launch():
        raise LaunchRejected(
            f"message type {data.get(CLAIM + 'message_type')!r} is not supported here; "
            "add the tool as a resource link",
            registration=public_id,
        )
    return _start_course_session(registration, data)


def _start_course_session(registration: Registration, data: dict):
    db = db_session()
    context = data.get(CLAIM + "context") or {}
    custom = data.get(CLAIM + "custom") or {}
    roles = data.get(CLAIM + "roles") or []
    if not context.get("id"):
        raise LaunchRejected(
            "the launch has no course (context claim); launch the tool from inside a course",
            registration=registration.public_id,
        )
    lms_course_id = str(custom.get("lms_course_id") or context["id"])
    lms_user_id = str(custom.get("lms_user_id") or data["sub"])

    course = db.scalar(
        select(LtiCourse).where(
            LtiCourse.registration_id == registration.id,
            LtiCourse.lti_context_id == context["id"],
        )
    )
    if course is None:
        course = LtiCourse(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            lti_context_id=context["id"],
        )
        db.add(course)
    course.title = context.get("title") or course.title
    course.lms_course_id = lms_course_id

    is_instructor = any(role in INSTRUCTOR_ROLES for role in roles)
    learner_id = None
    if not is_instructor and registration.lms_connection_id is not None:
        learner = _upsert_learner(registration, lms_user_id, data)
        learner_id = learner.id
    db.commit()

    session.clear()
    session.update(
        provider_id=registration.provider_id,
        registration_id=registration.id,
        course_id=course.id,
        lms_user_id=lms_user_id,
        learner_id=learner_id,
        role="instructor" if is_instructor else "learner",
        name=data.get("name") or data.get("given_name") or "",
    )
    structlog.contextvars.bind_contextvars(
        provider_id=registration.provider_id, course_id=course.id
    )
    log.info("lti_launch_accepted", role=session["role"], lms_user_id=lms_user_id)
    return redirect(url_for("pages.course", course_id=course.id))


def _upsert_learner(registration: Registration, lms_user_id: str, data: dict) -> Learner:
    db = db_session()
    learner = db.scalar(
        select(Learner).where(
            Learner.provider_id == registration.provider_id,
            Learner.lms_connection_id == registration.lms_connection_id,
            Learner.lms_user_id == lms_user_id,
        )
    )
    if learner is None:
        learner = Learner(
            provider_id=registration.provider_id,
            lms_connection_id=registration.lms_connection_id,
            lms_user_id=lms_user_id,
        )
        db.add(learner)
    learner.name = data.get("name") or learner.name
    learner.email = data.get("email") or learner.email
    db.flush()

    return learner


@bp.get("/<public_id>/jwks")
def jwks(public_id: str):
    registration = _registration_or_404(public_id)
    return jsonify(_tool_conf(registration).get_jwks())
