"""The provider's audit log page: who changed what, in the reader's language.

Events are stored with codes and ids (`lti:9`, `achievement:<uuid>`,
`trigger: manual`). This page looks up the people, badges and courses they name
within the provider, and shows labels in the page's language beside the codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import not_, or_, select

from badge_engine.models import Achievement, Credential, Learner
from connectors.models import LmsConnection
from lti_tool.accounts import Account, AuditEvent
from lti_tool.bridge import db_session
from lti_tool.lti import roles
from lti_tool.i18n import gettext as _
from lti_tool.i18n import gettext_html, isolate, isolate_ltr, localized_datetime
from lti_tool.models import LtiCourse, Registration
from lti_tool.views.admin import _provider_or_pick, account_required, bp
from lti_tool.views.audit_text import (
    READ_ACTION_SUFFIXES,
    action_labels,
    detail_labels,
    is_read_action,
    value_labels,
    yes_no,
)

PAGE_SIZE = 50


@dataclass
class AuditTarget:
    label: str
    code: str
    url: str | None = None


@dataclass
class AuditRow:
    created_at: datetime
    actor_label: str
    actor_code: str
    action_label: str | None
    action_code: str
    is_read: bool
    target: AuditTarget | None
    details: list[tuple[str, str]] = field(default_factory=list)


@bp.get("/audit")
@account_required
def audit_log(account: Account):
    provider = _provider_or_pick(account)
    include_reads = request.args.get("reads") == "1"
    query = select(AuditEvent).where(AuditEvent.provider_id == provider.id)
    if not include_reads:
        query = query.where(
            not_(
                or_(
                    *(
                        AuditEvent.action.endswith(suffix, autoescape=True)
                        for suffix in READ_ACTION_SUFFIXES
                    )
                )
            )
        )
    events = (
        db_session()
        .scalars(query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE))
        .all()
    )
    return render_template(
        "admin/audit.html",
        account=account,
        provider=provider,
        rows=AuditNames(provider.id, events).rows(),
        include_reads=include_reads,
    )


def _stored_time_text(value: str) -> str:
    """Format an ISO 8601 time stored in an event's detail as the page shows times,
    or return it as stored when it does not parse."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return localized_datetime(moment)


def _ids_with_prefix(values, prefix: str) -> set[str]:
    return {
        value.removeprefix(prefix)
        for value in values
        if value and value.startswith(prefix) and value != prefix
    }


def _learner_label(learner: Learner) -> Markup:
    """Return the learner's name, or else their email or LMS user id, isolated."""
    if learner.name:
        return isolate(learner.name)
    if learner.email:
        return isolate_ltr(learner.email)
    return gettext_html("LMS user %(user)s", user=isolate_ltr(learner.lms_user_id))


class AuditNames:
    """Look up, in one query per kind, what a page of audit events names.

    Every lookup is scoped to the provider, so an id of another provider's object
    shows as stored and reveals nothing about it.
    """

    def __init__(self, provider_id: int, events) -> None:
        self.provider_id = provider_id
        self.events = list(events)
        self.db = db_session()
        targets = [event.target for event in self.events]
        achievement_ids = _ids_with_prefix(targets, "achievement:")
        for event in self.events:
            value = (event.detail or {}).get("achievement")
            if isinstance(value, str):
                achievement_ids.add(value)
        self.credentials = self._credentials(_ids_with_prefix(targets, "credential:"))
        self.achievements = self._by_public_id(Achievement, achievement_ids)
        for credential in self.credentials.values():
            self.achievements[credential.achievement.public_id] = credential.achievement
        self.connections = self._by_public_id(
            LmsConnection, _ids_with_prefix(targets, "lms_connection:")
        )
        self.registrations = self._by_public_id(
            Registration, _ids_with_prefix(targets, "lti_registration:")
        )
        self.legacy_courses = self._legacy_courses()
        self.found_account_ids: set[int] = set()
        self.accounts = self._account_names()
        self.learners = self._learners()
        self.course_titles = self._course_titles()

    def _by_public_id(self, model, public_ids: set[str]) -> dict:
        if not public_ids:
            return {}
        return {
            found.public_id: found
            for found in self.db.scalars(
                select(model).where(
                    model.public_id.in_(public_ids),
                    model.provider_id == self.provider_id,
                )
            )
        }

    def _credentials(self, public_ids: set[str]) -> dict[str, Credential]:
        return self._by_public_id(Credential, public_ids)

    def _legacy_courses(self) -> dict[int, str | None]:
        """Map the internal course ids that older revocation events stored.

        Until the page recorded the LMS course id, `credential.revoked` from the
        instructor page stored the bridge's own course number as an integer.
        """
        numbers = {
            event.detail["course_id"]
            for event in self.events
            if event.action == "credential.revoked"
            and isinstance((event.detail or {}).get("course_id"), int)
        }
        if not numbers:
            return {}
        return dict(
            self.db.execute(
                select(LtiCourse.id, LtiCourse.lms_course_id).where(
                    LtiCourse.id.in_(numbers),
                    LtiCourse.provider_id == self.provider_id,
                )
            ).all()
        )

    def _account_names(self) -> dict[str, str]:
        """Map each "account:<id>" that an actor or an `invited_by` detail names to
        the name the page shows.

        Only the provider's own accounts and operators are looked up, so another
        provider's admin shows as a removed account, as a deleted account does,
        and their email stays hidden.
        """
        account_ids = {
            int(number)
            for number in _ids_with_prefix(
                [event.actor for event in self.events], "account:"
            )
            if number.isdigit()
        }
        account_ids |= {
            inviter
            for inviter in (
                (event.detail or {}).get("invited_by") for event in self.events
            )
            if isinstance(inviter, int) and not isinstance(inviter, bool)
        }
        if not account_ids:
            return {}

        found = {
            found_account.id: found_account
            for found_account in self.db.scalars(
                select(Account).where(
                    Account.id.in_(account_ids),
                    or_(
                        Account.provider_id == self.provider_id,
                        Account.provider_id.is_(None),
                    ),
                )
            )
        }
        names = {}
        for account_id in account_ids:
            found_account = found.get(account_id)
            if found_account is None:
                name = _("Removed account (number %(number)s)", number=account_id)
            elif found_account.is_operator:
                name = gettext_html(
                    "%(email)s (HPass operator)",
                    email=isolate_ltr(found_account.email),
                )
            else:
                name = found_account.email
            names[f"account:{account_id}"] = name
        self.found_account_ids = set(found)

        return names

    def inviter_label(self, value: Any) -> str:
        """Return the inviting account's name, or the stored number when the account
        is gone or belongs to another provider."""
        if isinstance(value, int) and value in self.found_account_ids:
            return self.accounts[f"account:{value}"]
        return str(value)

    def _learners(self) -> dict[str, Learner]:
        """Map LMS user ids of LTI actors to a learner row with a name or email.

        The bridge stores names and emails only for people who launched as
        learners or were read from a course roster, so most instructors have none.
        """
        user_ids = _ids_with_prefix([event.actor for event in self.events], "lti:")
        if not user_ids:
            return {}
        found: dict[str, Learner] = {}
        for learner in self.db.scalars(
            select(Learner)
            .where(
                Learner.provider_id == self.provider_id,
                Learner.lms_user_id.in_(user_ids),
                or_(Learner.name.is_not(None), Learner.email.is_not(None)),
            )
            .order_by(Learner.id)
        ):
            found.setdefault(learner.lms_user_id, learner)
        return found

    def _course_titles(self) -> dict[str, str]:
        course_ids = {
            course_id
            for course_id in (self.course_of(event) for event in self.events)
            if course_id
        }
        if not course_ids:
            return {}
        titles: dict[str, str] = {}
        for lms_course_id, title in self.db.execute(
            select(LtiCourse.lms_course_id, LtiCourse.title)
            .where(
                LtiCourse.provider_id == self.provider_id,
                LtiCourse.lms_course_id.in_(course_ids),
                LtiCourse.title.is_not(None),
            )
            .order_by(LtiCourse.id)
        ):
            titles.setdefault(lms_course_id, title)
        return titles

    def course_of(self, event: AuditEvent) -> str | None:
        """Return the LMS course id an event is about, or None."""
        detail = event.detail or {}
        value = detail.get("course_id")
        if event.action == "credential.revoked" and isinstance(value, int):
            return self.legacy_courses.get(value)
        if value not in (None, ""):
            return str(value)
        achievement = self._achievement_of(event)
        return achievement.lms_course_id if achievement else None

    def _achievement_of(self, event: AuditEvent) -> Achievement | None:
        target = event.target or ""
        if target.startswith("achievement:"):
            return self.achievements.get(target.removeprefix("achievement:"))
        if target.startswith("credential:"):
            credential = self.credentials.get(target.removeprefix("credential:"))
            return credential.achievement if credential else None
        value = (event.detail or {}).get("achievement")
        return self.achievements.get(value) if isinstance(value, str) else None

    def actor_label(self, event: AuditEvent) -> str:
        actor = event.actor
        if actor in self.accounts:
            return self.accounts[actor]
        if actor.startswith("lti:"):
            return self._lti_actor_label(event, actor.removeprefix("lti:"))
        if actor.startswith("os:"):
            return gettext_html(
                "Command on the bridge's server (user %(user)s)",
                user=isolate_ltr(actor.removeprefix("os:")),
            )
        if actor.startswith("api-token:"):
            return gettext_html(
                "API token %(token)s",
                token=isolate_ltr(actor.removeprefix("api-token:")),
            )
        return actor

    def _lti_actor_label(self, event: AuditEvent, user_id: str) -> str:
        learner = self.learners.get(user_id)
        if learner is not None and learner.name and learner.email:
            return gettext_html(
                "%(name)s (%(email)s)",
                name=isolate(learner.name),
                email=isolate_ltr(learner.email),
            )
        if learner is not None:
            return learner.name or learner.email
        # Events recorded before the launch role was stored have no actor_role, so
        # they keep the instructor's label, although an LMS administrator may have
        # made some of them.
        admin = (event.detail or {}).get("actor_role") == roles.ADMIN
        course_id = self.course_of(event)
        user = isolate_ltr(user_id)
        if course_id is None and admin:
            return gettext_html("LMS administrator (LMS user id %(user)s)", user=user)
        if course_id is None:
            return gettext_html("Instructor (LMS user id %(user)s)", user=user)
        title = self.course_titles.get(course_id)
        if title:
            course = gettext_html("“%(title)s”", title=isolate(title))
        else:
            course = isolate_ltr(course_id)
        if admin:
            return gettext_html(
                "LMS administrator in course %(course)s (LMS user id %(user)s)",
                course=course,
                user=user,
            )
        return gettext_html(
            "Instructor in course %(course)s (LMS user id %(user)s)",
            course=course,
            user=user,
        )

    def target(self, event: AuditEvent) -> AuditTarget | None:
        code = event.target
        if not code:
            return None
        kind, _colon, public_id = code.partition(":")
        if kind == "achievement" and public_id in self.achievements:
            return AuditTarget(
                self.achievements[public_id].name,
                code,
                url_for("public.achievement", public_id=public_id),
            )
        if kind == "credential" and public_id in self.credentials:
            credential = self.credentials[public_id]
            learner = credential.learner
            return AuditTarget(
                gettext_html(
                    "“%(badge)s” of %(learner)s",
                    badge=isolate(credential.achievement.name),
                    learner=_learner_label(learner),
                ),
                code,
                url_for("public.credential", public_id=public_id),
            )
        if kind == "lms_connection" and public_id in self.connections:
            return AuditTarget(self.connections[public_id].name, code)
        if kind == "lti_registration" and public_id in self.registrations:
            registration = self.registrations[public_id]
            return AuditTarget(
                f"{registration.issuer} · {registration.client_id}", code
            )
        if kind == "email" and public_id:
            return AuditTarget(public_id, code)
        if kind == "account" and code in self.accounts:
            return AuditTarget(self.accounts[code], code)
        return AuditTarget(code, code)

    def details(self, event: AuditEvent) -> list[tuple[str, str]]:
        detail: dict[str, Any] = dict(event.detail or {})
        labels = detail_labels()
        values = value_labels()
        course_id = self.course_of(event)
        if course_id is not None:
            detail["course_id"] = course_id
        # The actor's label names the launch role.
        detail.pop("actor_role", None)
        lines = []
        for key in sorted(detail):
            value = detail[key]
            if key == "achievement" and value in self.achievements:
                text = self.achievements[value].name
            elif key == "invited_by":
                text = self.inviter_label(value)
            elif key == "expires_at" and isinstance(value, str):
                text = _stored_time_text(value)
            elif isinstance(value, bool):
                text = yes_no(value)
            elif isinstance(value, list):
                text = ", ".join(str(item) for item in value) or "—"
            elif isinstance(value, dict):
                text = ", ".join(f"{name}={item}" for name, item in value.items())
            else:
                text = values.get((key, str(value)), str(value))
            lines.append((labels.get(key, key), text))
        return lines

    def rows(self) -> list[AuditRow]:
        labels = action_labels()
        return [
            AuditRow(
                created_at=event.created_at,
                actor_label=self.actor_label(event),
                actor_code=event.actor,
                action_label=labels.get(event.action),
                action_code=event.action,
                is_read=is_read_action(event.action),
                target=self.target(event),
                details=self.details(event),
            )
            for event in self.events
        ]
