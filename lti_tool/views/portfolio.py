"""Linking a learner's portfolio, and the delivery status of each credential.

    POST {base}/portfolio/link                      start linking (OAuth with PKCE)
    GET  {base}/portfolio/callback                  the portfolio sends the learner back
    POST {base}/portfolio/accounts/<id>/unlink      delete the tokens
    GET  {base}/portfolio/deliveries                delivery status as JSON
    POST {base}/portfolio/deliveries/<id>/retry     an instructor sends a delivery again

Learners act on their own accounts only. Instructors act on the deliveries of the
launched course's badges only, and never on a delivery a provider admin discarded.
The admin area has the provider-wide delivery pages. The LTI launch put the ids of
the provider, the course and the learner in the session.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import delete, select

from badge_engine.db import utcnow
from badge_engine.dead_letter import DISCARDED, DeadLetterAction, DeadLetterActionKind
from badge_engine.models import Credential, CredentialStatus, Provider
from badge_engine.outbox import OutboxMessage
from connectors.hpass.badge_connect import discover_badge_connect
from connectors.hpass.deliveries import (
    ACTIVE_STATUSES,
    delivery_key,
    learner_deliveries,
    nothing_left_to_send,
    provider_deliveries,
    requeue,
    requeue_waiting_for_consent,
)
from connectors.hpass.download import download_links
from connectors.hpass.errors import PortfolioSetupError
from connectors.hpass.http import PortfolioHttp, check_portfolio_url
from connectors.hpass.models import (
    AccountState,
    Delivery,
    DeliveryStatus,
    PortfolioAccount,
    PortfolioClient,
    PortfolioLinkRequest,
    RouteName,
)
from connectors.hpass.ob3_oauth import (
    authorization_url,
    delete_tokens,
    discover_ob3,
    exchange_code,
    find_or_register_client,
    make_pkce_pair,
    store_tokens,
)
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import BadRequest, Forbidden, NotFound
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.models import LtiCourse
from lti_tool.logs import get_logger
from lti_tool.pipeline import queue_deliveries
from lti_tool.urls_for import base_url
from lti_tool.views import pages
from lti_tool.views.headers import allow_form_redirects_to_other_sites

log = get_logger(__name__)

bp = Blueprint("portfolio", __name__, url_prefix="/portfolio")

# An authorization the learner abandons is forgotten after this long.
LINK_REQUEST_LIFETIME = timedelta(hours=1)
URL_MAX = 500


@bp.app_context_processor
def inject_linked_portfolios():
    """Give templates the session learner's portfolio accounts and their relink URLs."""

    def linked_portfolios() -> list[PortfolioAccount]:
        learner_id, provider_id = session.get("learner_id"), session.get("provider_id")
        if learner_id is None or provider_id is None:
            return []
        return (
            db_session()
            .scalars(
                select(PortfolioAccount).where(
                    PortfolioAccount.provider_id == provider_id,
                    PortfolioAccount.learner_id == learner_id,
                    PortfolioAccount.state != AccountState.UNLINKED.value,
                )
            )
            .all()
        )

    def portfolio_relink_url(account: PortfolioAccount) -> str | None:
        """Return the address the account was linked with, to ask for consent again."""
        if account.client_id is None:
            return None
        return db_session().scalar(
            select(PortfolioClient.portfolio_url).where(
                PortfolioClient.id == account.client_id,
                PortfolioClient.provider_id == account.provider_id,
            )
        )

    return {
        "linked_portfolios": linked_portfolios,
        "portfolio_relink_url": portfolio_relink_url,
    }


def _learner_ids() -> tuple[int, int]:
    learner_id, provider_id = session.get("learner_id"), session.get("provider_id")
    if session.get("role") != "learner" or learner_id is None or provider_id is None:
        raise Forbidden(
            "only a learner can link a portfolio; open the tool from your course "
            "in the LMS as a learner"
        )

    return provider_id, learner_id


def _instructor_course() -> tuple[LtiCourse, list[int]]:
    """Return the session's course and the ids of its badges, for an instructor."""
    provider_id, course_id = session.get("provider_id"), session.get("course_id")
    if session.get("role") != "instructor" or provider_id is None or course_id is None:
        raise Forbidden(
            "only an instructor can list or retry the deliveries of a course's "
            "badges; open the tool from a course you teach"
        )
    course = db_session().scalar(
        select(LtiCourse).where(
            LtiCourse.id == course_id, LtiCourse.provider_id == provider_id
        )
    )
    if course is None:
        raise NotFound(
            f"course {course_id} not found for this provider; open the tool again "
            "from your course in the LMS",
            course_id=course_id,
        )
    achievement_ids = [
        achievement.id for achievement in pages._course_achievements(course)
    ]

    return course, achievement_ids


def _http(url: str) -> PortfolioHttp:
    bridge = current_bridge()
    return PortfolioHttp(
        bridge.outbound_policy,
        portfolio_url=url,
        timeout=(3.05, bridge.settings.http_timeout_seconds),
    )


def _callback_url() -> str:
    return base_url() + url_for("portfolio.callback")


class LinkFailed(Exception):
    """Linking failed; `message` is the learner's translated text for the field."""

    def __init__(self, message: str, detail: str, code: str, status: int = 400):
        super().__init__(detail)
        self.message = message
        self.detail = detail
        self.code = code
        self.status = status


def _portfolio_url_from_form() -> str:
    url = request.form.get("portfolio_url", "").strip().rstrip("/")
    if not url:
        raise LinkFailed(
            _(
                "Enter the address of your portfolio, for example "
                "https://portfolio.example.org."
            ),
            "portfolio_url is missing; enter the address of your portfolio, "
            "for example https://portfolio.example.org",
            "portfolio_url_missing",
        )
    if len(url) > URL_MAX:
        raise LinkFailed(
            _(
                "This address is %(length)s characters long. Shorten it to "
                "%(limit)s characters or fewer.",
                length=len(url),
                limit=URL_MAX,
            ),
            f"portfolio_url is {len(url)} characters long, over the limit of "
            f"{URL_MAX}; enter the portfolio's https:// address",
            "portfolio_url_too_long",
        )
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        # An unclosed "[" of an IPv6 host, for one.
        scheme = ""
    if scheme not in ("http", "https"):
        raise LinkFailed(
            _(
                "This is not a web address. Enter the full address of your "
                "portfolio, starting with https://."
            ),
            f"portfolio_url {url[:80]!r} is not an http(s) address of at most "
            f"{URL_MAX} characters; enter the portfolio's https:// address",
            "portfolio_url_invalid",
        )
    try:
        check_portfolio_url(current_bridge().outbound_policy, url)
    except PortfolioSetupError as error:
        raise LinkFailed(
            _(
                "The bridge may not connect to this address. Check that you "
                "entered the address of your portfolio."
            ),
            str(error),
            "portfolio_url_rejected",
        ) from None

    return url


def _setup_failed(error: PortfolioSetupError) -> LinkFailed:
    detail = f"the portfolio cannot be linked: {error}"
    if error.unreachable:
        return LinkFailed(
            _(
                "Your portfolio could not be reached at this address, so it was "
                "not linked. Check the address and try again. If it is right, the "
                "portfolio may be down: try again later."
            ),
            detail,
            "portfolio_unreachable",
            status=502,
        )
    return LinkFailed(
        _(
            "This address does not accept badges from the bridge, so the portfolio "
            "was not linked. Check that you entered the address of your portfolio."
        ),
        detail,
        "portfolio_setup_failed",
    )


def _link_failed_response(failure: LinkFailed, portfolio_url: str):
    """Show the failure beside the address field of the learner's course page.

    Without a launched course of this provider, the error page shows the detail.
    """
    course_id = session.get("course_id")
    course = None
    if course_id is not None:
        course = db_session().scalar(
            select(LtiCourse).where(
                LtiCourse.id == course_id,
                LtiCourse.provider_id == session.get("provider_id"),
            )
        )
    if course is None:
        raise BadRequest(failure.detail, code=failure.code)
    allow_form_redirects_to_other_sites()
    page = render_template(
        "learner.html",
        course=course,
        rows=pages._learner_rows(course, session.get("learner_id")),
        link_error=failure.message,
        link_url=portfolio_url,
    )
    return page, failure.status


@bp.post("/link")
def link():
    """Register with the portfolio if needed, then send the learner to its consent page."""
    pages.check_csrf()
    provider_id, learner_id = _learner_ids()
    typed_url = request.form.get("portfolio_url", "").strip()[:URL_MAX]
    try:
        portfolio_url = _portfolio_url_from_form()
    except LinkFailed as failure:
        log.info(
            "portfolio_link_rejected",
            reason=failure.detail,
            code=failure.code,
            provider_id=provider_id,
            learner_id=learner_id,
        )
        return _link_failed_response(failure, typed_url)
    db, bridge = db_session(), current_bridge()
    provider = db.scalar(select(Provider).where(Provider.id == provider_id))
    db.execute(
        delete(PortfolioLinkRequest).where(
            PortfolioLinkRequest.provider_id == provider_id,
            PortfolioLinkRequest.created_at < utcnow() - LINK_REQUEST_LIFETIME,
        )
    )
    try:
        client = _find_or_register_any(db, portfolio_url, provider)
    except PortfolioSetupError as error:
        db.rollback()
        log.warning(
            "portfolio_link_setup_failed",
            error=str(error),
            unreachable=error.unreachable,
            portfolio_url=portfolio_url,
            provider_id=provider_id,
            learner_id=learner_id,
        )
        return _link_failed_response(_setup_failed(error), typed_url)

    verifier, challenge = make_pkce_pair()
    state = secrets.token_urlsafe(32)
    db.add(
        PortfolioLinkRequest(
            provider_id=provider_id,
            learner_id=learner_id,
            client_id=client.id,
            state=state,
            code_verifier_encrypted=bridge.vault.encrypt(verifier),
            return_course_id=session.get("course_id"),
        )
    )
    db.commit()
    log.info("portfolio_link_started", learner_id=learner_id, client_id=client.id)

    return redirect(
        authorization_url(
            client, state=state, code_challenge=challenge, redirect_uri=_callback_url()
        )
    )


def _find_or_register_any(
    db, portfolio_url: str, provider: Provider
) -> PortfolioClient:
    """Register by the OB 3.0 API when the portfolio offers it, else by Badge Connect."""
    problems = []
    for route, discover in (
        (RouteName.OB3_API, discover_ob3),
        (RouteName.BADGE_CONNECT, discover_badge_connect),
    ):
        try:
            return find_or_register_client(
                db,
                current_bridge().vault,
                _http(portfolio_url),
                provider_id=provider.id,
                provider_name=provider.name,
                client_uri=provider.url,
                redirect_uri=_callback_url(),
                route=route.value,
                discover=discover,
            )
        except PortfolioSetupError as error:
            problems.append(error)

    raise PortfolioSetupError(
        "it offers neither the Open Badges 3.0 API nor Badge Connect ("
        + "; ".join(
            f"{route.value}: {error}"
            for route, error in zip(
                (RouteName.OB3_API, RouteName.BADGE_CONNECT), problems, strict=True
            )
        )
        + ")",
        portfolio_url=portfolio_url,
        unreachable=all(error.unreachable for error in problems),
    )


def _finish_page(message: str, course_id: int | None, status: int = 200):
    back = url_for("pages.course", course_id=course_id) if course_id else None
    return render_template("portfolio_finish.html", message=message, back=back), status


@bp.get("/callback")
def callback():
    """Handle the portfolio's redirect: store tokens on approval, show the reason otherwise.

    The learner reads every outcome in the page's language, and the English detail
    of a failure goes to the log.
    """
    db, bridge = db_session(), current_bridge()
    state = request.args.get("state", "")
    pending = None
    if state:
        pending = db.scalar(
            select(PortfolioLinkRequest).where(PortfolioLinkRequest.state == state)
        )
    if pending is None:
        raise BadRequest(
            "this portfolio response matches no link request of this bridge, or it "
            "expired; start linking again from your course",
            code="portfolio_state_unknown",
            shown_message=_(
                "This answer from your portfolio matches no link request, or the "
                "request has expired. Start linking again from your course."
            ),
        )
    if session.get("learner_id") not in (None, pending.learner_id):
        raise Forbidden(
            "this portfolio response belongs to another learner's request",
            shown_message=_(
                "This answer from your portfolio belongs to another learner's link "
                "request. Start linking again from your own course."
            ),
            learner_id=session.get("learner_id"),
        )

    db.delete(pending)
    if pending.created_at < utcnow() - LINK_REQUEST_LIFETIME:
        db.commit()
        log.info("portfolio_link_expired", learner_id=pending.learner_id)
        return _finish_page(
            _(
                "This consent took longer than an hour, so the bridge forgot the "
                "request. Start linking again from your course."
            ),
            pending.return_course_id,
            400,
        )
    client = db.scalar(
        select(PortfolioClient).where(
            PortfolioClient.id == pending.client_id,
            PortfolioClient.provider_id == pending.provider_id,
        )
    )
    error = request.args.get("error")
    if error:
        db.commit()
        reason = request.args.get("error_description", "")[:200] or error
        log.info("portfolio_link_declined", learner_id=pending.learner_id, error=error)
        message = _(
            "You did not allow the bridge to add badges to your portfolio "
            "(%(reason)s). Your badges stay here. Link the portfolio again any time.",
            reason=reason,
        )
        return _finish_page(message, pending.return_course_id)

    code = request.args.get("code", "")
    if not code:
        db.commit()
        raise BadRequest(
            "the portfolio sent neither a code nor an error; start linking again",
            code="portfolio_code_missing",
            shown_message=_(
                "Your portfolio sent back neither an approval nor a refusal, so it "
                "was not linked. Start linking again from your course."
            ),
            learner_id=pending.learner_id,
        )
    verifier = bridge.vault.decrypt(
        pending.code_verifier_encrypted, what="PKCE code verifier"
    ).decode()
    try:
        tokens = exchange_code(
            _http(client.portfolio_url),
            client,
            bridge.vault,
            code=code,
            code_verifier=verifier,
            redirect_uri=_callback_url(),
        )
    except PortfolioSetupError as problem:
        db.commit()
        log.warning(
            "portfolio_code_exchange_failed",
            error=str(problem),
            unreachable=problem.unreachable,
            learner_id=pending.learner_id,
            client_id=client.id,
        )
        return _finish_page(
            _exchange_failed_message(problem), pending.return_course_id, 502
        )

    account = _save_account(db, pending, client, tokens)
    message_ids = _queue_for_account(db, account)
    db.commit()
    _dispatch(message_ids)
    log.info("portfolio_linked", learner_id=account.learner_id, account_id=account.id)

    return _finish_page(
        i18n.gettext_html(
            "Your portfolio %(name)s is linked. Your badges are on their way.",
            name=i18n.isolate(client.name),
        ),
        pending.return_course_id,
    )


def _exchange_failed_message(problem: PortfolioSetupError) -> str:
    if problem.unreachable:
        return _(
            "Linking failed because your portfolio could not be reached to finish "
            "it. Your badges stay here. Start linking again later from your course."
        )
    return _(
        "Linking failed because your portfolio did not accept the approval. Your "
        "badges stay here. Start linking again from your course, and if it fails "
        "again, ask your course team for help."
    )


def _save_account(db, pending, client, tokens) -> PortfolioAccount:
    account = db.scalar(
        select(PortfolioAccount).where(
            PortfolioAccount.provider_id == pending.provider_id,
            PortfolioAccount.learner_id == pending.learner_id,
            PortfolioAccount.api_base_url == client.api_base_url,
        )
    )
    if account is None:
        account = PortfolioAccount(
            provider_id=pending.provider_id,
            learner_id=pending.learner_id,
            api_base_url=client.api_base_url,
        )
        db.add(account)
    account.route = client.route
    account.client_id = client.id
    store_tokens(account, current_bridge().vault, tokens, utcnow())
    db.flush()

    return account


def _queue_for_account(db, account: PortfolioAccount) -> list[int]:
    """Send the learner's live credentials to the newly linked portfolio."""
    message_ids = requeue_waiting_for_consent(db, account)
    credentials = db.scalars(
        select(Credential).where(
            Credential.provider_id == account.provider_id,
            Credential.learner_id == account.learner_id,
            Credential.status == CredentialStatus.LIVE.value,
        )
    ).all()
    for credential in credentials:
        message_ids += queue_deliveries(db, credential)

    return message_ids


def _dispatch(message_ids: list[int]) -> None:
    from lti_tool.tasks import dispatch

    dispatch(message_ids)


@bp.post("/accounts/<int:account_id>/unlink")
def unlink(account_id: int):
    """Delete the account's tokens and mark its waiting deliveries as needing consent."""
    pages.check_csrf()
    provider_id, learner_id = _learner_ids()
    db = db_session()
    account = db.scalar(
        select(PortfolioAccount).where(
            PortfolioAccount.id == account_id,
            PortfolioAccount.provider_id == provider_id,
            PortfolioAccount.learner_id == learner_id,
        )
    )
    if account is None:
        raise NotFound(
            f"the learner has no linked portfolio account {account_id}",
            shown_message=_(
                "You have no linked portfolio with the number %(number)s. It may "
                "have been unlinked already. Go back to your course to see your "
                "linked portfolios.",
                number=account_id,
            ),
            provider_id=provider_id,
            learner_id=learner_id,
            account_id=account_id,
        )

    delete_tokens(account, "the learner unlinked the portfolio", AccountState.UNLINKED)
    waiting = db.scalars(
        select(Delivery).where(
            Delivery.provider_id == provider_id,
            Delivery.portfolio_account_id == account.id,
            Delivery.status.in_(ACTIVE_STATUSES),
        )
    ).all()
    for delivery in waiting:
        delivery.status = DeliveryStatus.NEEDS_CONSENT.value
        delivery.last_error = "the learner unlinked the portfolio"
    db.commit()
    log.info("portfolio_unlinked", learner_id=learner_id, account_id=account.id)

    course_id = session.get("course_id")
    if course_id:
        return redirect(url_for("pages.course", course_id=course_id))
    return jsonify({"account_id": account.id, "state": account.state})


@bp.get("/deliveries")
def deliveries():
    """Return delivery status: a learner's own, or the course's badges' for instructors."""
    db = db_session()
    if session.get("role") == "instructor":
        course, achievement_ids = _instructor_course()
        provider_id = course.provider_id
        status = request.args.get("status")
        if status is not None and status not in {item.value for item in DeliveryStatus}:
            raise BadRequest(
                f"status {status[:40]!r} is unknown; use one of "
                + ", ".join(item.value for item in DeliveryStatus)
            )
        views = provider_deliveries(db, provider_id, status, achievement_ids)
        learner_id = None
    else:
        provider_id, learner_id = _learner_ids()
        views = learner_deliveries(db, provider_id, learner_id)

    return jsonify(
        {
            "deliveries": [
                {
                    "id": view.delivery_id,
                    "credential": view.credential_public_id,
                    "achievement": view.achievement_name,
                    "route": view.route,
                    "status": view.status,
                    "reason": view.reason,
                    "attempts": view.attempts,
                    "remote_url": view.remote_url,
                    "updated_at": view.updated_at.isoformat(),
                    "revocation_sent_at": (
                        view.revocation_sent_at.isoformat()
                        if view.revocation_sent_at is not None
                        else None
                    ),
                }
                for view in views
            ],
            "downloads": _downloads(provider_id, learner_id),
        }
    )


def _downloads(provider_id: int, learner_id: int | None) -> dict[str, dict[str, str]]:
    """Return the download route's links for each of a learner's credentials."""
    if learner_id is None:
        return {}
    public_ids = db_session().scalars(
        select(Credential.public_id).where(
            Credential.provider_id == provider_id,
            Credential.learner_id == learner_id,
        )
    )
    links = {}
    for public_id in public_ids:
        found = download_links(base_url(), public_id)
        links[public_id] = {
            "public_url": found.public_url,
            "baked_png_url": found.baked_png_url,
            "baked_svg_url": found.baked_svg_url,
        }

    return links


@bp.post("/deliveries/<int:delivery_id>/retry")
def retry(delivery_id: int):
    """Send one delivery of the course's badges again now.

    The route keeps it from landing twice. A delivery that a provider admin
    discarded stays discarded: only an admin can send it again.
    """
    pages.check_csrf()
    course, achievement_ids = _instructor_course()
    provider_id = course.provider_id
    db = db_session()
    delivery = db.scalar(
        select(Delivery)
        .join(Credential, Credential.id == Delivery.credential_id)
        .where(
            Delivery.id == delivery_id,
            Delivery.provider_id == provider_id,
            Credential.provider_id == provider_id,
            Credential.achievement_id.in_(achievement_ids),
        )
    )
    if delivery is None:
        # Another course's delivery gets the same response as an unknown id.
        raise NotFound(
            f"delivery {delivery_id} does not exist for this course's badges",
            course_id=course.id,
        )
    _check_not_discarded(db, delivery, provider_id)
    if nothing_left_to_send(db, delivery):
        raise BadRequest(
            f"delivery {delivery_id} already landed; there is nothing to retry",
            code="delivery_already_delivered",
        )
    try:
        message_id = requeue(db, delivery)
    except LookupError as error:
        raise NotFound(str(error)) from None
    db.commit()
    _dispatch([message_id])
    log.info("delivery_retry_requested", delivery_id=delivery.id, route=delivery.route)

    return jsonify({"id": delivery.id, "status": delivery.status})


def _check_not_discarded(db, delivery: Delivery, provider_id: int) -> None:
    """Raise Forbidden, naming the admin contact, if an admin discarded the delivery."""
    message = db.scalar(
        select(OutboxMessage).where(
            OutboxMessage.provider_id == provider_id,
            OutboxMessage.idempotency_key == delivery_key(delivery.id),
        )
    )
    if message is None or message.status != DISCARDED:
        return
    discard = db.scalar(
        select(DeadLetterAction)
        .where(
            DeadLetterAction.provider_id == provider_id,
            DeadLetterAction.outbox_message_id == message.id,
            DeadLetterAction.action == DeadLetterActionKind.DISCARD.value,
        )
        .order_by(DeadLetterAction.id.desc())
        .limit(1)
    )
    provider = db.get(Provider, provider_id)
    when = f" on {discard.created_at:%Y-%m-%d}" if discard is not None else ""
    reason = f" (reason: {discard.reason})" if discard and discard.reason else ""
    contact = f" at {provider.email}" if provider.email else ""
    raise Forbidden(
        f"delivery {delivery.id} was discarded by an admin of {provider.name}{when}"
        f"{reason}, so an instructor cannot send it again; if the badge should "
        f"still reach the portfolio, ask the admins of {provider.name}{contact} "
        "to retry it",
        code="delivery_discarded",
        delivery_id=delivery.id,
    )
