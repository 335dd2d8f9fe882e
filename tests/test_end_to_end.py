"""The whole path with real parts: LTI platform, Moodle stand-in, bridge web server,
a Celery worker process, and the portfolio, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from badge_engine.models import CompletionFactRecord, Credential, FactOutcome
from badge_engine.outbox import OutboxMessage
from badge_engine.verify import verify_open_badge_credential
from connectors.hpass.models import Delivery, DeliveryStatus
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.stack import DemoStack, wait_for
from tests.support.databases import reset_postgres, reset_redis

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


def _make_stack(tmp_path, backend: str = "sqlite", **env) -> DemoStack:
    options = {}
    if backend == "postgres":
        options = {
            "database_url": reset_postgres(),
            "broker_url": reset_redis(),
        }
    extra_env = {key.upper(): str(value) for key, value in env.items()}
    return DemoStack(tmp_path / "instance", extra_env=extra_env, **options)


@pytest.fixture
def stack(tmp_path):
    stacks = []

    def start(backend="sqlite", *, scheduler=False, **env):
        made = _make_stack(tmp_path, backend, **env)
        stacks.append(made)
        made.start_web()
        made.start_worker()
        if scheduler:
            made.start_scheduler()
        return made

    yield start
    for made in stacks:
        made.stop()


def _deliveries(stack: DemoStack, status: DeliveryStatus) -> list[Delivery]:
    with stack.bridge.session() as session:
        return session.scalars(
            select(Delivery).where(Delivery.status == status.value)
        ).all()


def _credentials(stack: DemoStack) -> list[Credential]:
    with stack.bridge.session() as session:
        return session.scalars(select(Credential)).all()


def _fact_outcomes(stack: DemoStack) -> list[str]:
    with stack.bridge.session() as session:
        return [fact.outcome for fact in session.scalars(select(CompletionFactRecord))]


def _delivery_message_status(stack: DemoStack) -> str | None:
    with stack.bridge.session() as session:
        return session.scalar(
            select(OutboxMessage.status).where(
                OutboxMessage.kind == "credential.deliver"
            )
        )


def _wait_delivered(stack: DemoStack) -> None:
    delivered = wait_for(
        lambda: _deliveries(stack, DeliveryStatus.DELIVERED), WAIT_SECONDS
    )
    assert delivered, "credential never delivered\n" + stack.logs()


def test_completion_issues_and_delivers_once(stack, backend):
    """A learner who completes the course gets one verified badge in the portfolio."""
    demo = stack(backend)
    moodle, portfolio = demo.peers.moodle, demo.peers.portfolio
    with requests.Session() as browser:
        page = demo.peers.platform.launch_with_session(browser, "learner")
    assert page.status_code == 200
    assert "Not earned yet" in page.text

    moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    _wait_delivered(demo)

    received = portfolio.credentials()
    assert len(received) == 1
    did_document = requests.get(
        f"{demo.base_url}/providers/demo-academy/did.json", timeout=10
    ).json()
    result = verify_open_badge_credential(received[0], lambda did: did_document)
    assert result.verified, result.errors
    completed_at = moodle.course_completion_time(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    assert _credentials(demo)[0].awarded_at.timestamp() == completed_at


def test_repeated_event_is_a_no_op(stack):
    """The same Moodle event sent again is stored once and awards nothing more."""
    demo = stack()
    moodle = demo.peers.moodle
    event = moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    _wait_delivered(demo)

    status = moodle.post_event(event)

    assert status == 200
    assert len(_fact_outcomes(demo)) == 1
    assert len(_credentials(demo)) == 1
    assert demo.peers.portfolio.received_count == 1


def test_unconfirmed_completion_awards_nothing(stack):
    """An event the Moodle re-read does not confirm is recorded and awards nothing."""
    demo = stack()
    moodle = demo.peers.moodle
    event = moodle.build_course_completed_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, 1735689600
    )

    assert moodle.post_event(event) == 202
    outcome = wait_for(lambda: _fact_outcomes(demo) == ["not_confirmed"], WAIT_SECONDS)

    assert outcome, f"outcomes {_fact_outcomes(demo)}\n" + demo.logs()
    assert _credentials(demo) == []
    assert demo.peers.portfolio.received_count == 0


def test_reversal_event_awards_nothing(stack):
    """A module set back to incomplete is recorded as a reversal, never an award."""
    demo = stack()
    moodle = demo.peers.moodle
    event = moodle.build_module_completion_event(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, 4001, 0, 1735689600
    )

    assert moodle.post_event(event) == 202
    reversal = wait_for(
        lambda: _fact_outcomes(demo) == [FactOutcome.REVERSAL.value], WAIT_SECONDS
    )

    assert reversal, f"outcomes {_fact_outcomes(demo)}\n" + demo.logs()
    assert _credentials(demo) == []


def test_portfolio_error_is_retried(stack):
    """A portfolio answering 500 leaves the delivery pending; a retry lands it once."""
    demo = stack(scheduler=True)
    demo.peers.portfolio.fail_next(1, status=500)

    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    _wait_delivered(demo)

    assert demo.peers.portfolio.received_count == 2
    assert len(demo.peers.portfolio.credentials()) == 1
    with demo.bridge.session() as session:
        delivery = session.scalars(select(Delivery)).one()
        assert delivery.attempts == 2


def test_worker_killed_mid_delivery_delivers_once(stack):
    """Killing the worker while it waits on the portfolio delays the badge, never loses
    or doubles it: the lease expires, the sweep resends, a new worker delivers."""
    demo = stack(scheduler=True, hpass_outbox_lease_seconds=3)
    portfolio = demo.peers.portfolio
    portfolio.delay_next(1, seconds=8)

    demo.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    in_flight = wait_for(lambda: _delivery_message_status(demo) == "in_progress", 30)
    assert in_flight, "delivery never started\n" + demo.logs()
    # The worker now waits on the delayed portfolio; kill it mid-request.
    time.sleep(1)
    demo.kill_worker()
    assert _delivery_message_status(demo) == "in_progress"
    assert _deliveries(demo, DeliveryStatus.DELIVERED) == []

    demo.start_worker()
    _wait_delivered(demo)

    assert len(portfolio.credentials()) == 1
    assert len(_credentials(demo)) == 1
    assert portfolio.credentials()[0]["id"] == _credentials(demo)[0].document["id"]


def test_demo_moved_to_new_port_delivers(tmp_path):
    """A demo seeded on one port and started on another moves its rows to the new
    address, keeps the learner's progress and delivers the badge there."""
    first = DemoStack(tmp_path / "instance")
    first.start_web()
    try:
        # Completed through the stand-in's page, which saves its progress. No
        # worker runs yet, so the completion waits in the outbox.
        completed = requests.post(f"{first.base_url}/demo/moodle/complete", timeout=30)
        completed_at = first.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
        recorded = wait_for(lambda: _fact_count(first) == 1, WAIT_SECONDS)
    finally:
        first.stop()
    assert completed.status_code == 200
    assert recorded, "the completion was never recorded"

    second = DemoStack(tmp_path / "instance")
    second.start_web()
    second.start_worker()
    second.start_scheduler()
    try:
        moved_from = second.app.extensions["hpass_demo_moved_from"]
        with requests.Session() as browser:
            page = second.peers.platform.launch_with_session(browser, "learner")
        _wait_delivered(second)
        kept_completion = second.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
        received = second.peers.portfolio.credentials()
        connection_url, account_url = _demo_urls(second)
        credentials = _credentials(second)
    finally:
        second.stop()

    assert second.port != first.port
    assert moved_from == first.base_url
    assert page.status_code == 200
    assert kept_completion == completed_at
    assert len(received) == 1
    assert len(credentials) == 1
    assert credentials[0].awarded_at.timestamp() == completed_at
    assert connection_url == f"{second.base_url}/demo/moodle"
    assert account_url == f"{second.base_url}/demo/portfolio"


def _fact_count(stack: DemoStack) -> int:
    with stack.bridge.session() as session:
        return len(session.scalars(select(CompletionFactRecord)).all())


def _demo_urls(stack: DemoStack) -> tuple[str, str]:
    from connectors.hpass.models import PortfolioAccount
    from connectors.models import LmsConnection

    with stack.bridge.session() as session:
        connection = session.scalars(select(LmsConnection)).one()
        account = session.scalars(select(PortfolioAccount)).one()
        return connection.base_url, account.api_base_url
