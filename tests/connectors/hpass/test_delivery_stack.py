"""Delivery through the whole stack: bridge web server, real Celery worker and
scheduler, the fake portfolio beside the bridge and an in-memory OBF on loopback."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import Achievement, Credential
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.hpass.models import (
    AccountState,
    Delivery,
    DeliveryStatus,
    ObfBadgeMapping,
    ObfConnection,
    PortfolioAccount,
)
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.peers.obf import ObfPeer
from lti_tool.demo.stack import DemoStack, wait_for
from tests.support.databases import reset_postgres, reset_redis

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def start_demo(tmp_path):
    """Start a stack on SQLite and the embedded broker, or on PostgreSQL and Redis."""
    stacks = []

    def start(backend: str = "sqlite") -> DemoStack:
        options = {}
        if backend == "postgres":
            options = {"database_url": reset_postgres(), "broker_url": reset_redis()}
        stack = DemoStack(tmp_path / f"instance-{backend}", **options)
        stacks.append(stack)
        return stack.start(scheduler=True)

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def demo(start_demo):
    return start_demo()


@pytest.fixture
def obf():
    peer = ObfPeer(client_id="DEMO01", client_secret="obf-demo-secret")
    server = peer.start()
    peer.url = server.url
    yield peer
    server.stop()


def _connect_obf(demo: DemoStack, obf: ObfPeer) -> None:
    bridge = demo.bridge
    with bridge.session() as session:
        achievement = session.scalars(select(Achievement)).one()
        session.add(
            ObfConnection(
                provider_id=achievement.provider_id,
                api_base_url=obf.url,
                client_id=obf.client_id,
                client_secret_encrypted=bridge.vault.encrypt(obf.client_secret),
            )
        )
        session.add(
            ObfBadgeMapping(
                provider_id=achievement.provider_id,
                achievement_id=achievement.id,
                obf_badge_id=obf.add_badge(achievement.name),
            )
        )
        session.commit()


def _deliveries(demo: DemoStack) -> list[Delivery]:
    with demo.bridge.session() as session:
        return session.scalars(select(Delivery).order_by(Delivery.id)).all()


def _delivery_messages(demo: DemoStack) -> list[OutboxMessage]:
    with demo.bridge.session() as session:
        return session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "credential.deliver")
        ).all()


def _all_in(demo: DemoStack, status: DeliveryStatus, count: int) -> bool:
    rows = _deliveries(demo)
    return len(rows) == count and all(row.status == status.value for row in rows)


def _learner_page(demo: DemoStack) -> tuple[requests.Session, str]:
    browser = requests.Session()
    page = demo.peers.platform.launch_with_session(browser, "learner")
    assert page.status_code == 200, page.text[:500]
    return browser, page.text


def _link_over_http(demo: DemoStack) -> requests.Session:
    """Link the demo portfolio by the OAuth flow, a requests session as the browser."""
    browser, page = _learner_page(demo)
    csrf = CSRF.search(page).group(1)
    consent = browser.post(
        f"{demo.base_url}/portfolio/link",
        data={"csrf": csrf, "portfolio_url": f"{demo.base_url}/demo/portfolio"},
        timeout=10,
    )
    assert consent.status_code == 200, consent.text[:500]
    assert "wants to add badges" in consent.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', consent.text))
    finished = browser.post(
        consent.url, data={**fields, "decision": "approve"}, timeout=10
    )
    assert finished.status_code == 200, finished.text[:500]
    assert "is linked" in finished.text
    return browser


def _rewind_waiting_messages(demo: DemoStack) -> timedelta:
    """Move every waiting delivery message's next attempt to now; return the
    longest wait skipped, which is the simulated time that passed."""
    now = datetime.now(timezone.utc)
    skipped = timedelta(0)
    with demo.bridge.session() as session:
        waiting = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "credential.deliver",
                OutboxMessage.status == OutboxStatus.PENDING.value,
                OutboxMessage.next_attempt_at > now,
            )
        ).all()
        for message in waiting:
            skipped = max(skipped, message.next_attempt_at - now)
            message.next_attempt_at = now
        session.commit()
    return skipped


def _all_pending(demo: DemoStack) -> bool:
    messages = _delivery_messages(demo)
    return len(messages) == 2 and all(
        message.status == OutboxStatus.PENDING.value for message in messages
    )


def _attempts(demo: DemoStack) -> int:
    return sum(message.attempts for message in _delivery_messages(demo))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_down_for_a_day_delivers_once(start_demo, obf, backend):
    """A portfolio and OBF down for a simulated day each receive the badge once."""
    demo = start_demo(backend)
    _connect_obf(demo, obf)
    demo.peers.portfolio.fail_next(10_000, status=503)
    obf.fail_next(10_000, status=503)

    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.RETRYING, 2), WAIT_SECONDS), (
        demo.logs()
    )
    simulated = timedelta(0)
    while simulated < timedelta(days=1):
        # The worker records the delivery before its message, so wait for both.
        assert wait_for(lambda: _all_pending(demo), WAIT_SECONDS), demo.logs()
        attempts = _attempts(demo)
        simulated += _rewind_waiting_messages(demo)
        assert wait_for(lambda: _attempts(demo) >= attempts + 2, WAIT_SECONDS), (
            demo.logs()
        )
    assert wait_for(lambda: _all_pending(demo), WAIT_SECONDS), demo.logs()
    assert all(row.status == "retrying" for row in _deliveries(demo))

    demo.peers.portfolio.fail_next(0)
    obf.fail_next(0)
    _rewind_waiting_messages(demo)

    assert wait_for(lambda: _all_in(demo, DeliveryStatus.DELIVERED, 2), WAIT_SECONDS), (
        demo.logs()
    )
    assert len(demo.peers.portfolio.credentials()) == 1
    stored = demo.peers.portfolio.credentials()[0]
    assert demo.peers.portfolio.stored_credential(stored["id"]).replaced_count == 0
    assert len(obf.live_events()) == 1
    obf_delivery = next(row for row in _deliveries(demo) if row.route == "obf")
    assert obf_delivery.remote_id == obf.live_events()[0].id
    assert obf_delivery.remote_url.endswith(f"/v1/assertion/{obf_delivery.remote_id}-0")


def test_revoked_token_needs_consent_without_storm(demo):
    """A revoked grant parks the delivery as needs_consent; the worker stops calling."""
    _link_over_http(demo)
    portfolio = demo.peers.portfolio
    portfolio.revoke_tokens()

    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)

    assert wait_for(
        lambda: _all_in(demo, DeliveryStatus.NEEDS_CONSENT, 1), WAIT_SECONDS
    ), demo.logs()
    # Several sweeps run while the test waits for the message to be done.
    assert wait_for(
        lambda: [m.status for m in _delivery_messages(demo)] == ["done"], WAIT_SECONDS
    )
    _rewind_waiting_messages(demo)
    assert portfolio.received_count == 1
    assert portfolio.oauth.refresh_count() == 1
    with demo.bridge.session() as session:
        account = session.scalars(select(PortfolioAccount)).one()
        assert account.state == AccountState.NEEDS_CONSENT.value
        assert account.access_token_encrypted is None


def test_relinking_delivers_waiting_credential(demo):
    """Linking again after a revocation sends the credential that waited for consent."""
    _link_over_http(demo)
    demo.peers.portfolio.revoke_tokens()
    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(
        lambda: _all_in(demo, DeliveryStatus.NEEDS_CONSENT, 1), WAIT_SECONDS
    ), demo.logs()

    _link_over_http(demo)

    assert wait_for(lambda: _all_in(demo, DeliveryStatus.DELIVERED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    assert len(demo.peers.portfolio.credentials()) == 1


def test_unlink_deletes_tokens(demo):
    """Unlinking from the course page deletes the stored tokens."""
    browser = _link_over_http(demo)
    page = browser.get(demo.base_url + _course_path(demo), timeout=10).text
    match = re.search(
        r'action="(/portfolio/accounts/\d+/unlink)"[^>]*>\s*<input type="hidden" '
        r'name="csrf" value="([^"]+)"',
        page,
    )

    answer = browser.post(
        demo.base_url + match.group(1), data={"csrf": match.group(2)}, timeout=10
    )

    assert answer.status_code == 200
    with demo.bridge.session() as session:
        account = session.scalars(select(PortfolioAccount)).one()
        assert account.state == AccountState.UNLINKED.value
        assert account.access_token_encrypted is None
        assert account.refresh_token_encrypted is None


def test_admin_retries_failed_delivery(demo):
    """A delivery the portfolio rejected lands after an admin retries it."""
    demo.peers.portfolio.fail_next(1, status=422)
    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.FAILED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    assert "422" in _deliveries(demo)[0].last_error
    admin = requests.Session()
    demo.peers.platform.launch_with_session(admin, "instructor")
    csrf = _session_csrf(demo, admin)
    listed = admin.get(
        f"{demo.base_url}/portfolio/deliveries?status=failed", timeout=10
    ).json()["deliveries"]
    assert [item["status"] for item in listed] == ["failed"]

    answer = admin.post(
        f"{demo.base_url}/portfolio/deliveries/{listed[0]['id']}/retry",
        data={"csrf": csrf},
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.DELIVERED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    assert len(demo.peers.portfolio.credentials()) == 1


def _session_csrf(demo: DemoStack, browser: requests.Session) -> str:
    """Return the session's CSRF token, adding one to the signed cookie if the
    launch page made none, so the test depends on no page's markup."""
    name = demo.app.config["SESSION_COOKIE_NAME"]
    serializer = demo.app.session_interface.get_signing_serializer(demo.app)
    session = serializer.loads(browser.cookies[name])
    if "csrf" not in session:
        session["csrf"] = "admin-test-csrf"
        browser.cookies.set(name, serializer.dumps(session), domain="127.0.0.1")
    return session["csrf"]


def _course_path(demo: DemoStack) -> str:
    from lti_tool.models import LtiCourse

    with demo.bridge.session() as session:
        course = session.scalars(select(LtiCourse)).first()
        return f"/course/{course.id}"


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_consent_flow_in_browser(demo):
    """A learner links the portfolio in a real browser; the badge then lands by OAuth."""
    from playwright.sync_api import sync_playwright

    with demo.bridge.session() as session:
        seeded = session.scalars(select(PortfolioAccount)).one()
        seeded.access_token_encrypted = None
        seeded.state = AccountState.UNLINKED.value
        session.commit()
    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _credential_count(demo) == 1, WAIT_SECONDS), demo.logs()
    assert _deliveries(demo) == []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(f"{demo.base_url}/demo/platform/launch/learner")
        page.wait_for_selector("#portfolio_url")
        page.fill("#portfolio_url", f"{demo.base_url}/demo/portfolio")
        page.click("text=Link portfolio")
        page.wait_for_selector("text=wants to add badges")
        page.click("button[value=approve]")
        page.wait_for_selector(".portfolio-result")
        result = page.inner_text(".portfolio-result")
        browser.close()

    assert "is linked" in result
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.DELIVERED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    portfolio = demo.peers.portfolio
    assert len(portfolio.credentials()) == 1
    assert len(portfolio.oauth.access_tokens) == 1
    assert portfolio.request_log[-1].status == 201


def _credential_count(demo: DemoStack) -> int:
    with demo.bridge.session() as session:
        return len(session.scalars(select(Credential)).all())


def test_instructor_revocation_reaches_portfolio(demo):
    """An instructor's revocation reaches the portfolio after a 503 and a retry,
    and the portfolio, the demo page and the learner's card all show it."""
    portfolio = demo.peers.portfolio
    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.DELIVERED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    with demo.bridge.session() as session:
        credential = session.scalars(select(Credential)).one()
        public_id, credential_id = credential.public_id, credential.document["id"]
    assert portfolio.statuses() == {credential_id: "valid"}
    instructor = requests.Session()
    demo.peers.platform.launch_with_session(instructor, "instructor")
    csrf = _session_csrf(demo, instructor)
    portfolio.fail_next(1, status=503)

    answer = instructor.post(
        f"{demo.base_url}{_course_path(demo)}/awards/{public_id}/revoke",
        data={"csrf": csrf, "reason": "Issued in error"},
        timeout=10,
    )

    assert answer.status_code == 200, answer.text[:500]
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.RETRYING, 1), WAIT_SECONDS), (
        demo.logs()
    )
    assert portfolio.statuses() == {credential_id: "valid"}
    # The worker records the delivery before its message, so wait for the
    # message's later attempt before moving it to now.
    assert wait_for(lambda: _waits_for_retry(demo), WAIT_SECONDS), demo.logs()
    _rewind_waiting_messages(demo)
    assert wait_for(lambda: _all_in(demo, DeliveryStatus.REVOKED, 1), WAIT_SECONDS), (
        demo.logs()
    )
    [delivery] = _deliveries(demo)
    assert delivery.revocation_sent_at is not None
    assert portfolio.statuses() == {credential_id: "revoked"}
    assert [entry.status for entry in portfolio.request_log] == [201, 503, 200]

    revoked_label = "Delivered, then told that the badge is revoked"
    demo_page = requests.get(f"{demo.base_url}/demo/", timeout=10).text
    assert revoked_label in demo_page
    _browser, learner_page = _learner_page(demo)
    card = learner_page.split('<li class="card"')[1]
    assert '<p class="status revoked">' in card
    assert "Where your badge went" in card
    assert revoked_label in card
    portfolio_page = requests.get(f"{demo.base_url}/demo/portfolio/", timeout=10).text
    assert "Revoked by its issuer" in portfolio_page


def _waits_for_retry(demo: DemoStack) -> bool:
    now = datetime.now(timezone.utc)
    return any(
        message.status == OutboxStatus.PENDING.value and message.next_attempt_at > now
        for message in _delivery_messages(demo)
    )
