"""The demo provider and its peers, mounted beside the bridge on one loopback server.

    {base}/demo             the demo page (a bridge blueprint)
    {base}/demo/platform    an LTI 1.3 platform with a learner, an instructor, a course
    {base}/demo/moodle      a Moodle web service stand-in that posts completion webhooks
    {base}/demo/portfolio   a portfolio speaking the Open Badges 3.0 API

The peers' secrets (Moodle token, webhook secret, portfolio token) are created once in
the instance folder, and the Moodle stand-in's progress and the portfolio's credentials
are saved there after each change, so the demo survives a restart of
`hpass-bridge run --demo` with the peers agreeing with the bridge's database.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import Flask, request
from sqlalchemy import select
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from badge_engine.models import Achievement, Learner, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.hpass.models import PortfolioAccount
from connectors.models import LmsConnection, LmsKind
from lti_tool.bridge import Bridge
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID, demo_course
from lti_tool.demo.peers.platform import DEMO_LEARNER, PlatformPeer, ToolRegistration
from lti_tool.demo.peers.portfolio import PortfolioPeer
from lti_tool.lti.registrations import create_registration
from lti_tool.logs import get_logger
from lti_tool.models import Registration
from lti_tool.urls_for import (
    lti_jwks_url,
    lti_launch_url,
    lti_login_url,
    moodle_webhook_url,
)
from lti_tool.views.webhooks import secret_digest

DEMO_SLUG = "demo-academy"
DEMO_PROVIDER_NAME = "HPass Demo Academy"
PLATFORM_PATH = "/demo/platform"
MOODLE_PATH = "/demo/moodle"
PORTFOLIO_PATH = "/demo/portfolio"

log = get_logger(__name__)


@dataclass(frozen=True)
class DemoSecrets:
    moodle_token: str
    webhook_secret: str
    portfolio_token: str

    @classmethod
    def load_or_create(cls, instance_path: Path) -> "DemoSecrets":
        path = instance_path / "demo-secrets.json"
        if not path.exists():
            values = {name: secrets.token_urlsafe(24) for name in cls.__annotations__}
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(values, handle)
        return cls(**json.loads(path.read_text()))


# Peer endpoints whose requests change what a peer remembers. The Moodle web service
# is also called by POST, but only to read.
STATE_CHANGING_ENDPOINTS = frozenset(
    {"complete", "complete_activity", "reset", "upsert"}
)
# A change is written this many seconds after it, together with any that follow, so
# a burst of deliveries costs one write, not one each.
SAVE_DELAY_SECONDS = 1.0


class DemoStateFile:
    """The peers' state in `demo-state.json` of the instance folder.

    Written shortly after a request that changes a peer, through a temporary file
    and a rename, so a crash leaves the previous state readable. `flush` writes a
    pending change at once, for a clean stop.
    """

    def __init__(self, instance_path: Path, peers: "DemoPeers") -> None:
        self.path = instance_path / "demo-state.json"
        self.peers = peers
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def load(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except ValueError:
            log.warning("demo_state_unreadable", path=str(self.path))
            return {}

    def save_soon(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(SAVE_DELAY_SECONDS, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        with self._lock:
            if self._timer is None:
                return
            self._timer.cancel()
            self._timer = None
            state = {
                "moodle": self.peers.moodle.snapshot(),
                "portfolio": self.peers.portfolio.snapshot(),
            }
            partial = self.path.with_suffix(".json.partial")
            partial.write_text(json.dumps(state))
            os.replace(partial, self.path)


@dataclass
class DemoIds:
    provider_id: int
    connection_public_id: str
    registration_public_id: str
    learner_id: int
    # The public base URL the demo rows were seeded with, when this start moved
    # them to its own. None when they already pointed at this start's URL.
    moved_from: str | None = None


@dataclass
class DemoPeers:
    platform: PlatformPeer
    moodle: MoodleStandIn
    portfolio: PortfolioPeer
    secrets: DemoSecrets
    ids: DemoIds


def seed_demo(bridge: Bridge, demo_secrets: DemoSecrets) -> DemoIds:
    """Create the demo provider, its Moodle connection, LTI registration, badge and
    learner portfolio link.

    A later call finds them and, when they were seeded with another public base
    URL (the demo ran on another port), moves their URLs to this one.
    """
    base = bridge.settings.public_base_url
    with bridge.session() as session:
        provider = session.scalar(select(Provider).where(Provider.slug == DEMO_SLUG))
        if provider is None:
            provider = _create_demo_rows(session, bridge, demo_secrets, base)
            session.commit()
        connection = session.scalar(
            select(LmsConnection).where(LmsConnection.provider_id == provider.id)
        )
        registration = session.scalar(
            select(Registration).where(Registration.provider_id == provider.id)
        )
        learner = session.scalar(
            select(Learner).where(
                Learner.provider_id == provider.id,
                Learner.lms_user_id == str(DEMO_LEARNER_ID),
            )
        )
        moved_from = _move_demo_rows(session, provider, connection, registration, base)
        if moved_from is not None:
            session.commit()
            log.info(
                "demo_moved",
                provider_id=provider.id,
                previous_base_url=moved_from,
                base_url=base,
            )
        return DemoIds(
            provider_id=provider.id,
            connection_public_id=connection.public_id,
            registration_public_id=registration.public_id,
            learner_id=learner.id,
            moved_from=moved_from,
        )


def _move_demo_rows(
    session,
    provider: Provider,
    connection: LmsConnection,
    registration: Registration,
    base: str,
) -> str | None:
    """Point the demo provider's URLs that start with the base URL the demo was
    seeded with at `base` instead. The caller commits.

    The seeded base is read from the registration's issuer, `{base}/demo/platform`.
    Returns it when it differs from `base`, else None. Credentials, deliveries and
    the learner's progress are left as they are, and so is any URL that does not
    start with the seeded base (one an admin changed).
    """
    if not registration.issuer.endswith(PLATFORM_PATH):
        return None
    previous = registration.issuer.removesuffix(PLATFORM_PATH)
    if previous == base:
        return None

    def moved(url: str | None) -> str | None:
        if url is not None and url.startswith(previous + "/"):
            return base + url.removeprefix(previous)
        return url

    provider.url = moved(provider.url)
    registration.issuer = moved(registration.issuer)
    registration.auth_login_url = moved(registration.auth_login_url)
    registration.auth_token_url = moved(registration.auth_token_url)
    registration.key_set_url = moved(registration.key_set_url)
    site_key = connection.site_key
    connection.base_url = moved(connection.base_url)
    if site_key is None:
        # A disconnected connection keeps no site key, so that the provider can
        # connect the same site again, but assigning base_url sets one.
        connection.site_key = None
    accounts = session.scalars(
        select(PortfolioAccount).where(PortfolioAccount.provider_id == provider.id)
    )
    for account in accounts:
        account.api_base_url = moved(account.api_base_url)
    return previous


def _create_demo_rows(session, bridge: Bridge, demo_secrets: DemoSecrets, base: str):
    vault = bridge.vault
    provider = Provider(
        slug=DEMO_SLUG,
        name=DEMO_PROVIDER_NAME,
        url=f"{base}/demo",
        email="badges@demo-academy.example.invalid",
    )
    session.add(provider)
    session.flush()
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Demo Moodle",
        base_url=base + MOODLE_PATH,
        api_token_encrypted=vault.encrypt(demo_secrets.moodle_token),
        webhook_secret_sha256=secret_digest(demo_secrets.webhook_secret),
    )
    session.add(connection)
    session.flush()
    issuer = base + PLATFORM_PATH
    create_registration(
        session,
        vault,
        provider,
        issuer=issuer,
        client_id="hpass-bridge-demo",
        auth_login_url=f"{issuer}/auth",
        key_set_url=f"{issuer}/jwks",
        deployment_ids=("1",),
        lms_connection_id=connection.id,
    )
    session.add(
        Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id=str(DEMO_COURSE_ID),
            name="Humanitarian Action Essentials",
            description="Completed the Introduction to Humanitarian Action course.",
            criteria_narrative="Complete every required activity of the course "
            "Introduction to Humanitarian Action.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id=str(DEMO_LEARNER_ID),
        name=f"{DEMO_LEARNER.given_name} {DEMO_LEARNER.family_name}",
        email=DEMO_LEARNER.email,
    )
    session.add(learner)
    session.flush()
    session.add(
        PortfolioAccount(
            provider_id=provider.id,
            learner_id=learner.id,
            api_base_url=base + PORTFOLIO_PATH,
            access_token_encrypted=vault.encrypt(demo_secrets.portfolio_token),
        )
    )
    return provider


def build_peers(base: str, demo_secrets: DemoSecrets, ids: DemoIds) -> DemoPeers:
    platform = PlatformPeer(
        issuer=base + PLATFORM_PATH,
        tool=ToolRegistration(
            login_url=lti_login_url(base, ids.registration_public_id),
            launch_url=lti_launch_url(base, ids.registration_public_id),
            jwks_url=lti_jwks_url(base, ids.registration_public_id),
        ),
        client_id="hpass-bridge-demo",
        deployment_id="1",
    )
    moodle = MoodleStandIn(
        demo_secrets.moodle_token,
        webhook_url=moodle_webhook_url(base, ids.connection_public_id),
        webhook_secret=demo_secrets.webhook_secret,
        site_url=base + MOODLE_PATH,
        page_links=(
            ("Back to the demo", base + "/demo/"),
            ("Open the portfolio", base + PORTFOLIO_PATH + "/"),
        ),
    )
    moodle.add_course(demo_course())
    portfolio = PortfolioPeer(
        demo_secrets.portfolio_token,
        page_links=(
            ("Back to the demo", base + "/demo/"),
            ("Open the Moodle course", base + MOODLE_PATH + "/"),
        ),
    )
    return DemoPeers(platform, moodle, portfolio, demo_secrets, ids)


@dataclass(frozen=True)
class DemoConnectionProblem:
    """The reason the demo's Moodle connection cannot receive the stand-in's events.

    `kind` is "disconnected" (the bridge returns HTTP 410) or "secret_replaced"
    (HTTP 401). `database_outside_instance` is True when deleting the instance
    folder does not delete the demo's rows.
    """

    kind: str
    connection_id: str
    disconnected_at: datetime | None
    disconnected_by: str | None
    instance: Path
    database_outside_instance: bool

    def text(self) -> str:
        """Return the problem and the steps to a fresh demo, in English."""
        if self.kind == "disconnected":
            when = self.disconnected_at.isoformat() if self.disconnected_at else "?"
            problem = (
                f"the demo's Moodle connection {self.connection_id} was disconnected "
                f"at {when} by {self.disconnected_by}, so the bridge rejects the "
                "demo Moodle's completions with HTTP 410 and the demo awards no badge."
            )
        else:
            problem = (
                f"the webhook secret of the demo's Moodle connection "
                f"{self.connection_id} was replaced, so the bridge rejects the demo "
                "Moodle's completions with HTTP 401 and the demo awards no badge."
            )
        steps = _fresh_demo_steps(self.instance, self.database_outside_instance)
        return f"{problem} {steps}"


def find_demo_connection_problem(
    bridge: Bridge, peers: DemoPeers
) -> DemoConnectionProblem | None:
    """Return why the demo's Moodle connection cannot receive the stand-in's
    events, or None when it can.

    The demo seeds its rows once, so a disconnected demo connection, or one whose
    webhook secret an admin replaced, stays broken across restarts.
    """
    with bridge.session() as session:
        connection = session.scalar(
            select(LmsConnection).where(
                LmsConnection.provider_id == peers.ids.provider_id,
                LmsConnection.public_id == peers.ids.connection_public_id,
            )
        )
    if connection is None:
        return None
    if connection.disconnected:
        kind = "disconnected"
    elif connection.webhook_secret_sha256 != secret_digest(
        peers.secrets.webhook_secret
    ):
        kind = "secret_replaced"
    else:
        return None
    return DemoConnectionProblem(
        kind=kind,
        connection_id=connection.public_id,
        disconnected_at=connection.disconnected_at,
        disconnected_by=connection.disconnected_by,
        instance=bridge.settings.instance_path.resolve(),
        database_outside_instance=not _database_in_instance(bridge),
    )


def demo_connection_problem(bridge: Bridge, peers: DemoPeers) -> str | None:
    """Describe why the demo's Moodle connection cannot receive the stand-in's
    events, with how to start a fresh demo, or return None when it can."""
    problem = find_demo_connection_problem(bridge, peers)
    return problem.text() if problem else None


def fresh_demo_steps(bridge: Bridge) -> str:
    """Return how to start the demo again from nothing."""
    return _fresh_demo_steps(
        bridge.settings.instance_path.resolve(), not _database_in_instance(bridge)
    )


def _fresh_demo_steps(instance: Path, database_outside_instance: bool) -> str:
    steps = (
        "To start a fresh demo, stop the bridge (Ctrl-C), delete the instance folder "
        f"{instance} and run `hpass-bridge run --demo` again; this deletes "
        "everything the bridge stored in that folder."
    )
    if database_outside_instance:
        steps += (
            " The demo's rows are in the database that HPASS_DATABASE_URL names, not "
            "in that folder, so point HPASS_DATABASE_URL at a new, empty database too."
        )
    return steps


def _database_in_instance(bridge: Bridge) -> bool:
    instance = bridge.settings.instance_path.resolve()
    database_url = bridge.settings.database_url
    return database_url.startswith("sqlite:///") and Path(
        database_url.removeprefix("sqlite:///")
    ).resolve().is_relative_to(instance)


def mount_demo(app: Flask) -> DispatcherMiddleware:
    """Seed the demo data, or move it to this start's public base URL, and serve
    the peers under /demo beside the bridge."""
    bridge: Bridge = app.extensions["hpass"]
    demo_secrets = DemoSecrets.load_or_create(bridge.settings.instance_path)
    ids = seed_demo(bridge, demo_secrets)
    peers = build_peers(bridge.settings.public_base_url, demo_secrets, ids)
    state_file = DemoStateFile(bridge.settings.instance_path, peers)
    saved = state_file.load()
    if saved:
        peers.moodle.restore(saved["moodle"])
        peers.portfolio.restore(saved["portfolio"])
    app.extensions["hpass_demo"] = peers
    app.extensions["hpass_demo_state"] = state_file
    app.extensions["hpass_demo_moved_from"] = ids.moved_from
    problem = demo_connection_problem(bridge, peers)
    app.extensions["hpass_demo_problem"] = problem
    if problem is not None:
        log.warning(
            "demo_connection_unusable",
            connection=ids.connection_public_id,
            provider_id=ids.provider_id,
            problem=problem,
        )

    def save_after_change(response):
        if request.endpoint in STATE_CHANGING_ENDPOINTS:
            state_file.save_soon()
        return response

    moodle_app = peers.moodle.create_app()
    portfolio_app = peers.portfolio.create_app()
    moodle_app.after_request(save_after_change)
    portfolio_app.after_request(save_after_change)
    return DispatcherMiddleware(
        app,
        {
            PLATFORM_PATH: peers.platform.create_app(),
            MOODLE_PATH: moodle_app,
            PORTFOLIO_PATH: portfolio_app,
        },
    )
