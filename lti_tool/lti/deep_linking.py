"""LTI Deep Linking 2.0: the instructor picks a badge or the course's badge page.

The LtiDeepLinkingRequest launch stores the platform's deep linking settings in the
session and shows the picker. The picker's form posts back here, and the tool returns
an LtiDeepLinkingResponse JWT, signed with the registration's key, that the browser
posts to the platform's `deep_link_return_url`.
"""

from __future__ import annotations

import time
import uuid

from flask import redirect, render_template, request, session, url_for
from sqlalchemy import select

from badge_engine.models import Achievement
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import BadRequest, Forbidden
from lti_tool.lti import roles, tool_keys
from lti_tool.lti.launch import (
    CLAIM,
    COURSE_ID_PARAMETERS,
    DL_CLAIM,
    ValidatedLaunch,
    lms_id,
)
from lti_tool.models import Registration
from lti_tool.urls_for import launch_url_of

# The instructor may wait on the platform's confirmation page before it reads the
# response, so the JWT lives ten minutes (at least five are needed in practice).
RESPONSE_LIFETIME_SECONDS = 600
COURSE_PAGE = "course-page"


def start(validated: ValidatedLaunch):
    """Keep the deep linking settings in the session and show the picker."""
    claims = validated.claims
    role = roles.map_roles(claims.get(CLAIM + "roles") or [])
    if not roles.is_staff(role):
        raise Forbidden(
            "only instructors and admins can add badges to a course; ask the "
            "course's instructor to add the tool",
            **validated.ids,
        )
    settings = claims[DL_CLAIM + "deep_linking_settings"]
    context = claims.get(CLAIM + "context") or {}
    # The launch checked this id as it checks a resource link's. On Moodle it
    # equals context.id, and elsewhere it is bound already or confirmed by Canvas.
    lms_course_id = ""
    if isinstance(context, dict) and context.get("id"):
        lms_course_id, _ = lms_id(claims, COURSE_ID_PARAMETERS, "context.id")
    session.clear()
    session["deep_linking"] = {
        "registration_id": validated.registration.id,
        "provider_id": validated.registration.provider_id,
        "issuer": claims["iss"],
        "deployment_id": validated.deployment.deployment_id,
        "return_url": settings["deep_link_return_url"],
        "data": settings.get("data"),
        "accept_multiple": bool(settings.get("accept_multiple", True)),
        "context_title": context.get("title") if isinstance(context, dict) else None,
        "lms_course_id": lms_course_id,
    }
    return redirect(
        url_for("lti.deep_link", public_id=validated.registration.public_id)
    )


def _settings_for(registration: Registration) -> dict:
    settings = session.get("deep_linking")
    if not settings or settings.get("registration_id") != registration.id:
        raise Forbidden(
            "no content selection is in progress for this registration; start it "
            "again from the platform's add-activity dialog",
            registration=registration.public_id,
        )
    return settings


def _achievements(registration: Registration, lms_course_id: str) -> list[Achievement]:
    if registration.lms_connection_id is None or not lms_course_id:
        return []
    return list(
        db_session().scalars(
            select(Achievement)
            .where(
                Achievement.provider_id == registration.provider_id,
                Achievement.lms_connection_id == registration.lms_connection_id,
                Achievement.lms_course_id == lms_course_id,
            )
            .order_by(Achievement.name)
        )
    )


def picker(registration: Registration):
    settings = _settings_for(registration)
    return render_template(
        "lti/deep_linking.html",
        registration=registration,
        settings=settings,
        achievements=_achievements(registration, settings["lms_course_id"]),
        course_page=COURSE_PAGE,
    )


def respond(registration: Registration):
    """Sign the LtiDeepLinkingResponse for the chosen items; return the post form."""
    # Imported here because the views package imports this module.
    from lti_tool.views.pages import check_csrf

    settings = _settings_for(registration)
    # The session cookie is SameSite=None for launches, so another site could post
    # this form in the instructor's browser without the token.
    check_csrf()
    chosen = request.form.getlist("item")
    if not chosen:
        raise BadRequest(
            "choose the course badge page or at least one badge, then select Add",
            registration=registration.public_id,
        )
    if len(chosen) > 1 and not settings["accept_multiple"]:
        raise BadRequest(
            "the platform accepts one item here; choose only one",
            registration=registration.public_id,
        )
    by_id = {
        item.public_id: item
        for item in _achievements(registration, settings["lms_course_id"])
    }
    items = []
    for value in chosen:
        if value == COURSE_PAGE:
            items.append(_link_item("Course badges", "Badges in this course", {}))
        elif value in by_id:
            achievement = by_id[value]
            items.append(
                _link_item(
                    achievement.name,
                    achievement.description,
                    {"hpass_achievement": achievement.public_id},
                )
            )
        else:
            raise BadRequest(
                f"badge {value!r} is not a badge of this course; reload the list",
                registration=registration.public_id,
            )

    now = int(time.time())
    claims = {
        "iss": registration.client_id,
        "aud": [settings["issuer"]],
        "iat": now,
        "exp": now + RESPONSE_LIFETIME_SECONDS,
        "nonce": uuid.uuid4().hex,
        CLAIM + "deployment_id": settings["deployment_id"],
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        DL_CLAIM + "content_items": [
            dict(item, url=launch_url_of(registration)) for item in items
        ],
    }
    if settings.get("data") is not None:
        claims[DL_CLAIM + "data"] = settings["data"]
    token = tool_keys.sign(registration, current_bridge().vault, claims)
    session.pop("deep_linking", None)

    return render_template(
        "lti/deep_linking_return.html", action=settings["return_url"], jwt=token
    )


def _link_item(title: str, text: str, custom: dict) -> dict:
    item = {"type": "ltiResourceLink", "title": title, "text": text[:1000]}
    if custom:
        item["custom"] = custom
    return item
