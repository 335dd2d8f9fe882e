"""What learners and admins see about deliveries to portfolios, and discarding one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from badge_engine.outbox import OutboxMessage
from connectors.hpass.deliveries import delivery_key
from connectors.hpass.models import Delivery, DeliveryStatus, PortfolioAccount
from lti_tool.accounts import AccountRole
from lti_tool.dispatcher import dispatcher_for
from lti_tool.operations import ActionError
from lti_tool.operations.deliveries import discard_delivery
from lti_tool.views.pages import delivery_status_text, delivery_text
from tests.support.broker import broker_tasks

from .conftest import add_account, add_credential, launch_as, sign_in

FIRST = "https://portfolio-one.example.org"
SECOND = "https://portfolio-two.example.org"


def _account(db, tenant, url: str) -> PortfolioAccount:
    account = PortfolioAccount(
        provider_id=tenant.provider_id, learner_id=tenant.learner_id, api_base_url=url
    )
    db.add(account)
    db.flush()
    return account


def _delivery(db, tenant, credential, account, status: str, **fields) -> Delivery:
    delivery = Delivery(
        provider_id=tenant.provider_id,
        credential_id=credential.id,
        portfolio_account_id=account.id if account else None,
        status=status,
        **fields,
    )
    db.add(delivery)
    db.flush()
    return delivery


def _dead_message(db, delivery: Delivery, status: str = "dead") -> OutboxMessage:
    message = OutboxMessage(
        provider_id=delivery.provider_id,
        kind="credential.deliver",
        idempotency_key=delivery_key(delivery.id),
        payload={},
        status=status,
        attempts=1,
        last_error="portfolio returned HTTP 422",
    )
    db.add(message)
    db.flush()
    return message


def test_learner_page_names_each_portfolio(client, tenants, db):
    """Two portfolios are told apart by address, and a failure says what follows."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _delivery(db, alpha, credential, _account(db, alpha, FIRST), "delivered")
    _delivery(db, alpha, credential, _account(db, alpha, SECOND), "failed")
    db.commit()
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    first, second = page.split('<li class="delivery"')[1:3]

    assert f'Portfolio <span dir="ltr">{FIRST}</span>: Delivered' in first
    assert f'Portfolio <span dir="ltr">{SECOND}</span>: Sending failed' in second
    assert "does not try again on its own" in second
    assert "download the badge below" in second
    assert "does not try again" not in first


def test_learner_page_retrying_needs_nothing(client, tenants, db):
    """A delivery still being retried tells the learner nothing is needed."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _delivery(db, alpha, credential, _account(db, alpha, FIRST), "retrying")
    db.commit()
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "tries again on its own over the next days" in page
    assert "you do not need to do anything" in page


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", f'Portfolio <span dir="ltr">{FIRST}</span>\u00a0: Échec de l&#39;envoi'),
        ("es", f'Portafolio <span dir="ltr">{FIRST}</span>: Falló el envío'),
        ("ar", f'ملف الإنجازات <span dir="ltr">{FIRST}</span>: فشل الإرسال'),
    ],
)
def test_learner_portfolio_translated(client, tenants, db, language, text):
    """The portfolio line is translated and keeps the address left to right."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _delivery(db, alpha, credential, _account(db, alpha, FIRST), "failed")
    db.commit()
    launch_as(client, alpha, "learner", locale=language)

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert text in page


@pytest.mark.parametrize("language", ["en", "fr", "es", "ar"])
@pytest.mark.parametrize("status", list(DeliveryStatus))
def test_delivery_status_has_label(app, language, status):
    """Every delivery status gets a label in each language, not its raw value."""
    with app.test_request_context("/", headers={"Accept-Language": language}):
        label = delivery_status_text(status.value)

    assert label != status.value
    assert label.strip()


def test_consent_status_names_no_one(app):
    """Instructors see the consent label too, so it does not speak to the learner."""
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        label = delivery_status_text(DeliveryStatus.NEEDS_CONSENT.value)

    assert "you" not in label.lower().split()
    assert "portfolio" in label


def _revoked(credential) -> None:
    credential.status = "revoked"
    credential.live_key = None
    credential.revoked_at = SENT
    credential.revocation_reason = "Issued by mistake"


def test_instructor_page_revoked_delivery(client, tenants, db):
    """A delivery that sent the revocation is labelled so in the page language."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _revoked(credential)
    _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, FIRST),
        "revoked",
        delivered_at=DELIVERED,
        revocation_sent_at=SENT,
    )
    db.commit()
    launch_as(client, alpha, "instructor", locale="ar")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    cell = page.split('<span class="delivery" data-status="revoked">')[1]

    assert cell.startswith("سُلّمت، ثم أُبلغ ملف الإنجازات بأن الشارة أُلغيت</span>")


DELIVERED = datetime(2026, 3, 14, 9, 31, tzinfo=timezone.utc)
SENT = datetime(2026, 4, 2, 8, 0, tzinfo=timezone.utc)
REVOCATION_LABELS = [
    (
        "revoked",
        {"delivered_at": DELIVERED, "revocation_sent_at": SENT},
        "Delivered, then told that the badge is revoked",
    ),
    (
        "revoked",
        {"delivered_at": DELIVERED},
        "Delivered, but not told that the badge is revoked",
    ),
    (
        "revoked",
        {"delivered_at": DELIVERED, "route": "badge_connect"},
        "Delivered. The portfolio reads the revocation from the badge.",
    ),
    ("revoked", {}, "Revoked before it reached the portfolio, so nothing was sent"),
    (
        "delivered",
        {"delivered_at": DELIVERED},
        "Delivered, but not told that the badge is revoked",
    ),
    (
        "queued",
        {"delivered_at": DELIVERED},
        "Delivered. The revocation is waiting to be sent.",
    ),
    (
        "retrying",
        {"delivered_at": DELIVERED},
        "Delivered. Sending the revocation failed, retrying.",
    ),
    (
        "failed",
        {"delivered_at": DELIVERED},
        "Delivered. Sending the revocation failed.",
    ),
    ("queued", {}, "Waiting to be sent"),
    ("failed", {}, "Sending failed"),
    (
        "needs_consent",
        {"delivered_at": DELIVERED},
        "Waiting for the portfolio to be linked again",
    ),
]


@pytest.mark.parametrize(("status", "fields", "label"), REVOCATION_LABELS)
def test_revoked_credential_delivery_label(app, status, fields, label):
    """A revoked badge's delivery shows whether the revocation was sent."""
    fields = dict(fields)
    delivery = Delivery(status=status, route=fields.pop("route", "ob3_api"), **fields)

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        text = delivery_text(delivery, credential_revoked=True)

    assert text == label


def test_learner_page_lists_revoked_badge_portfolios(client, tenants, db):
    """A revoked badge still lists its portfolios and the revocation sent."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    _revoked(credential)
    _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, FIRST),
        "revoked",
        delivered_at=DELIVERED,
        revocation_sent_at=SENT,
    )
    _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, SECOND),
        "retrying",
        delivered_at=DELIVERED,
    )
    db.commit()
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    card = page.split('<li class="card"')[1]
    revocation_sent, retrying = card.split('<li class="delivery"')[1:3]

    assert '<p class="status revoked">' in card
    assert "Where your badge went" in card
    assert (
        f'Portfolio <span dir="ltr">{FIRST}</span>: Delivered, then told that the '
        'badge is revoked (<time datetime="2026-04-02T08:00:00+00:00">'
    ) in revocation_sent
    assert (
        f'Portfolio <span dir="ltr">{SECOND}</span>: Delivered. Sending the '
        "revocation failed, retrying."
    ) in retrying
    assert "to tell it that the badge is revoked" in retrying
    assert "Your badge stays on this page" not in card


def test_instructor_revoke_queues_revocation(app, client, tenants, db):
    """Revoking on the course page requeues the landed delivery and dispatches it."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, FIRST),
        "delivered",
        delivered_at=DELIVERED,
    )
    message = _dead_message(db, delivery, status="done")
    db.commit()
    dispatcher = CommitCheckingDispatcher(app.extensions["hpass"])
    app.extensions["hpass_dispatcher"] = dispatcher
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/awards/{credential.public_id}/revoke",
        data={"csrf": "test-csrf", "reason": "Issued in error"},
    )

    assert response.status_code == 303
    db.expire_all()
    assert db.get(Delivery, delivery.id).status == "queued"
    assert db.get(OutboxMessage, message.id).status == "pending"
    assert dispatcher.seen == [(message.id, "pending")]
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert "Delivered. The revocation is waiting to be sent." in page


def test_learner_page_other_provider_account(client, tenants, db):
    """An account of another provider is never named on the learner's page."""
    alpha, beta = tenants
    credential = add_credential(db, alpha)
    foreign = _account(db, beta, "https://foreign.example.org")
    _delivery(db, alpha, credential, foreign, "delivered")
    db.commit()
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "foreign.example.org" not in page
    assert "HPass portfolio: Delivered" in page


def test_dead_letters_show_delivery_details(client, tenants, db):
    """The admin sees badge, learner, portfolio, reason and the CLI's attempts."""
    alpha, beta = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, FIRST),
        "failed",
        attempts=3,
        last_error="portfolio answered 422: invalid credential",
    )
    _dead_message(db, delivery)
    foreign = add_credential(db, beta)
    foreign_delivery = _delivery(db, beta, foreign, None, "failed", attempts=5)
    _dead_message(db, foreign_delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/dead-letters").get_data(as_text=True)
    row = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    assert "Badge of alpha" in row
    assert "Learner of alpha" in row
    assert 'LMS user id <bdi dir="ltr">42</bdi>' in row
    assert f'<span dir="ltr">{FIRST}</span>' in row
    assert "portfolio answered 422: invalid credential" in row
    assert "<td>3</td>" in row
    assert "<td>1</td>" not in row
    assert "Badge of beta" not in page
    assert row.count("<tr>") == 1


def test_dead_letters_other_kind(client, tenants, db):
    """A dead message that is not a delivery still shows its kind and error."""
    alpha, _ = tenants
    db.add(
        OutboxMessage(
            provider_id=alpha.provider_id,
            kind="mail.send",
            idempotency_key="mail:1",
            payload={},
            status="dead",
            attempts=4,
            last_error="SMTP refused",
        )
    )
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/dead-letters").get_data(as_text=True)

    assert 'Not a badge delivery: <bdi dir="ltr">mail.send</bdi>' in page
    assert "SMTP refused" in page
    assert "<td>4</td>" in page


def test_dead_letters_foreign_delivery_key(client, tenants, db):
    """A message whose key names another provider's delivery shows no details."""
    alpha, beta = tenants
    foreign = add_credential(db, beta)
    foreign_delivery = _delivery(db, beta, foreign, None, "failed")
    db.add(
        OutboxMessage(
            provider_id=alpha.provider_id,
            kind="credential.deliver",
            idempotency_key=delivery_key(foreign_delivery.id),
            payload={},
            status="dead",
            attempts=2,
            last_error="x",
        )
    )
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/dead-letters").get_data(as_text=True)

    assert "Badge of beta" not in page
    assert "Learner of beta" not in page
    assert "Not a badge delivery" in page


def test_discard_already_discarded_names_delivery(tenants, db):
    """Discarding twice names the delivery, not its outbox message."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "failed")
    message = _dead_message(db, delivery)
    discard_delivery(db, "test", delivery, "learner left")

    with pytest.raises(ActionError) as raised:
        discard_delivery(db, "test", delivery, "again")

    assert raised.value.code == "already_discarded"
    assert f"delivery {delivery.id} was already discarded" in raised.value.message
    assert f"outbox message {message.id}" not in raised.value.message


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("pending", "is still being sent"),
        ("in_progress", "is still being sent"),
        ("done", "is finished"),
    ],
)
def test_discard_live_delivery_names_it(tenants, db, status, words):
    """A delivery that has not failed for good cannot be discarded."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "queued")
    _dead_message(db, delivery, status=status)

    with pytest.raises(ActionError) as raised:
        discard_delivery(db, "test", delivery, "not needed")

    assert f"delivery {delivery.id} {words}" in raised.value.message
    assert raised.value.code == "not_dead"


def _retry(client, message: OutboxMessage, language: str = "en"):
    response = client.post(
        f"/admin/dead-letters/{message.id}/retry", data={"csrf": "test-csrf"}
    )
    assert response.status_code == 303
    return client.get(
        response.headers["Location"], headers={"Accept-Language": language}
    ).get_data(as_text=True)


def _notice(page: str) -> str:
    start = '<p class="notice" role="status" tabindex="-1" data-confirmation>'
    return page.split(start, 1)[1].split("</p>", 1)[0]


def test_dead_letter_retry_queues_delivery(client, tenants, db):
    """Retrying from the admin page shows the delivery as waiting, at once."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(
        db,
        alpha,
        credential,
        _account(db, alpha, FIRST),
        "failed",
        attempts=12,
        last_error="portfolio answered 422: invalid credential",
    )
    message = _dead_message(db, delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = _retry(client, message)
    notice = _notice(page)
    db.expire_all()
    stored = db.get(Delivery, delivery.id)
    launch_as(client, alpha, "learner")
    learner_page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert stored.status == "queued"
    assert stored.attempts == 0
    assert db.get(OutboxMessage, message.id).status == "pending"
    assert 'The badge <span dir="auto">Badge of alpha</span>' in notice
    assert 'for <span dir="auto">Learner of alpha</span>' in notice
    assert "is queued to be sent again." in notice
    assert f"Message {message.id}" not in page
    assert "<tbody>" not in page
    assert "Waiting to be sent" in learner_page
    assert "Sending failed" not in learner_page


class CommitCheckingDispatcher:
    """A dispatcher stand-in that records each id with its status read by another session."""

    def __init__(self, bridge) -> None:
        self._bridge = bridge
        self.seen: list[tuple[int, str]] = []

    def submit(self, message_ids, *, marked: bool = False) -> None:
        with self._bridge.session() as session:
            for message_id in message_ids:
                status = session.get(OutboxMessage, message_id).status
                self.seen.append((message_id, status))

    def stop(self, timeout: float = 0) -> bool:
        return True


def test_dead_letter_retry_dispatched_after_commit(app, client, tenants, db):
    """A retried message goes to the dispatcher at once, after its commit."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "failed", attempts=12)
    message = _dead_message(db, delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    dispatcher = CommitCheckingDispatcher(app.extensions["hpass"])
    app.extensions["hpass_dispatcher"] = dispatcher

    _retry(client, message)

    # A separate session reads only committed rows, so "pending" here means the
    # ids were submitted after the commit.
    assert dispatcher.seen == [(message.id, "pending")]


def test_dead_letter_retry_sent_to_broker(app, client, tenants, db, settings):
    """A retried message reaches the broker without waiting for the sweep."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "failed", attempts=12)
    message = _dead_message(db, delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    _retry(client, message)
    assert dispatcher_for(app).flush(timeout=30)
    db.expire_all()

    assert f"[{message.id}]" in " ".join(broker_tasks(settings))
    assert db.get(OutboxMessage, message.id).dispatched_at is not None


def test_dead_letter_retry_keeps_delivered(client, tenants, db):
    """A delivery that already landed keeps its status when its message is retried."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "delivered", attempts=2)
    message = _dead_message(db, delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    _retry(client, message)
    db.expire_all()

    assert db.get(Delivery, delivery.id).status == "delivered"
    assert db.get(Delivery, delivery.id).attempts == 2


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("email.send", "The email is queued to be sent again."),
        ("fact.evaluate", "The check of a completion against the badge rules"),
        ("moodle.reread_learner", "details from Moodle is queued again."),
        ("report.build", 'The <bdi dir="ltr">report.build</bdi> task is queued again.'),
    ],
)
def test_dead_letter_retry_names_kind(client, tenants, db, kind, words):
    """A retried message that is not a delivery is named by what it does."""
    alpha, _ = tenants
    message = OutboxMessage(
        provider_id=alpha.provider_id,
        kind=kind,
        idempotency_key=f"{kind}:1",
        payload={},
        status="dead",
        attempts=4,
        last_error="timed out",
    )
    db.add(message)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    notice = _notice(_retry(client, message))

    assert words in notice
    assert str(message.id) not in notice


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", "est de nouveau en file d’attente d’envoi."),
        ("es", "vuelve a estar en cola para enviarse."),
        ("ar", "إلى قائمة الانتظار لإرسالها من جديد."),
    ],
)
def test_dead_letter_retry_translated(client, tenants, db, language, words):
    """The retry notice is translated and still names the badge and learner."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    delivery = _delivery(db, alpha, credential, None, "failed", attempts=12)
    message = _dead_message(db, delivery)
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    notice = _notice(_retry(client, message, language))

    assert words in notice
    assert "Badge of alpha" in notice
    assert "Learner of alpha" in notice


def test_dead_letter_notice_needs_own_message(client, tenants, db):
    """No notice names another provider's message or one that is still dead."""
    alpha, beta = tenants
    own = add_credential(db, alpha)
    dead = _dead_message(db, _delivery(db, alpha, own, None, "failed"))
    foreign_credential = add_credential(db, beta)
    foreign = _dead_message(db, _delivery(db, beta, foreign_credential, None, "failed"))
    foreign.status = "pending"
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    for message in (dead, foreign):
        page = client.get(f"/admin/dead-letters?retried={message.id}")
        text = page.get_data(as_text=True)

        assert page.status_code == 200
        assert 'class="notice"' not in text
        assert "Badge of beta" not in text
