"""Admin page that creates, lists and revokes the provider's Dynamic Registration links.

A link is shown once, when it is created, because only its digest is stored. The
list shows the provider's open links (unused, unrevoked, unexpired) with who
created them, so an admin can revoke one that was sent to the wrong person.
"""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import or_, select

from badge_engine.models import Provider
from lti_tool.accounts import Account
from lti_tool.bridge import current_bridge, db_session
from lti_tool.i18n import gettext as _
from lti_tool.i18n import gettext_html, isolate_ltr
from lti_tool.logs import get_logger
from lti_tool.lti.registration_links import (
    issue_registration_link,
    open_registration_links,
    registration_url,
    revoke_registration_link,
)
from lti_tool.models import RegistrationLink
from lti_tool.views.admin import _actor, _provider_or_pick, account_required, bp
from lti_tool.views.pages import check_csrf

log = get_logger(__name__)

ACCOUNT_ACTOR = "account:"
COMMAND_LINE_ACTOR = "os:"


def _creator_names(provider: Provider, links: list[RegistrationLink]) -> dict[str, str]:
    """Return, for each link's `created_by` actor, the text the list shows.

    Only accounts of this provider and operators are looked up, so the page never
    names another provider's admin.
    """
    account_ids = {
        int(link.created_by.removeprefix(ACCOUNT_ACTOR))
        for link in links
        if link.created_by.startswith(ACCOUNT_ACTOR)
        and link.created_by.removeprefix(ACCOUNT_ACTOR).isdigit()
    }
    emails = {
        f"{ACCOUNT_ACTOR}{found.id}": found.email
        for found in db_session().scalars(
            select(Account).where(
                Account.id.in_(account_ids),
                or_(Account.provider_id == provider.id, Account.provider_id.is_(None)),
            )
        )
    }
    names = {}
    for link in links:
        actor = link.created_by
        if actor in emails:
            names[actor] = emails[actor]
        elif actor.startswith(ACCOUNT_ACTOR):
            names[actor] = _(
                "Removed account (number %(number)s)",
                number=actor.removeprefix(ACCOUNT_ACTOR),
            )
        elif actor.startswith(COMMAND_LINE_ACTOR):
            names[actor] = gettext_html(
                "Command line, as %(user)s",
                user=isolate_ltr(actor.removeprefix(COMMAND_LINE_ACTOR)),
            )
        else:
            names[actor] = actor
    return names


def _links_page(
    account: Account,
    provider: Provider,
    *,
    created: dict | None = None,
    revoked: RegistrationLink | None = None,
    problem: str | None = None,
    status: int = 200,
):
    links = open_registration_links(db_session(), provider.id)
    return (
        render_template(
            "admin/registration_links.html",
            account=account,
            provider=provider,
            links=links,
            creators=_creator_names(provider, links),
            created=created,
            revoked=revoked,
            problem=problem,
        ),
        status,
    )


@bp.get("/registration-links")
@account_required
def registration_links(account: Account):
    provider = _provider_or_pick(account)
    return _links_page(account, provider)


@bp.post("/registration-links")
@account_required
def create_registration_link(account: Account):
    check_csrf()
    provider = _provider_or_pick(account)
    db = db_session()
    link, token = issue_registration_link(
        db, provider_id=provider.id, actor=_actor(account)
    )
    db.commit()
    log.info(
        "lti_registration_link_issued",
        provider_id=provider.id,
        account_id=account.id,
        registration_link_id=link.id,
    )
    # The page is sent in reply to the POST, so the link is shown once and never
    # goes into a URL or the access log.
    created = {
        "url": registration_url(current_bridge().settings.public_base_url, token),
        "expires_at": link.expires_at,
    }
    return _links_page(account, provider, created=created)


@bp.post("/registration-links/<int:registration_link_id>/revoke")
@account_required
def revoke_link(account: Account, registration_link_id: int):
    check_csrf()
    provider = _provider_or_pick(account)
    db = db_session()
    link = revoke_registration_link(
        db,
        provider_id=provider.id,
        link_id=registration_link_id,
        actor=_actor(account),
    )
    if link is None:
        # Unknown ids, closed links and other providers' links get the same
        # response.
        log.warning(
            "request_rejected",
            status=404,
            code="registration_link_not_found",
            reason="the provider has no open registration link with this id",
            path=request.path,
            provider_id=provider.id,
            account_id=account.id,
            registration_link_id=registration_link_id,
        )
        problem = _(
            "This provider has no open registration link with this number. It may "
            "have been used, revoked or expired already. Nothing was changed."
        )
        return _links_page(account, provider, problem=problem, status=404)

    db.commit()
    log.info(
        "lti_registration_link_revoked",
        provider_id=provider.id,
        account_id=account.id,
        registration_link_id=link.id,
    )
    return _links_page(account, provider, revoked=link)
