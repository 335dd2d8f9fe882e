"""The demo page: where a newcomer launches as the learner or the instructor, completes
the course in the Moodle stand-in and watches the badge arrive in the portfolio."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import select

from badge_engine.models import Credential, Provider
from connectors.hpass.models import Delivery, PortfolioAccount
from lti_tool.bridge import current_bridge, db_session
from lti_tool.urls_for import base_url

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/")
@bp.get("")
def index():
    from lti_tool.demo.setup import (
        DEMO_PROVIDER_NAME,
        DEMO_SLUG,
        MOODLE_PATH,
        PLATFORM_PATH,
        PORTFOLIO_PATH,
        find_demo_connection_problem,
    )

    db = db_session()
    provider = db.scalar(select(Provider).where(Provider.slug == DEMO_SLUG))
    credentials, deliveries, accounts = [], [], []
    if provider is not None:
        credentials = db.scalars(
            select(Credential)
            .where(Credential.provider_id == provider.id)
            .order_by(Credential.id.desc())
        ).all()
        deliveries = db.scalars(
            select(Delivery)
            .where(Delivery.provider_id == provider.id)
            .order_by(Delivery.id)
        ).all()
        accounts = db.scalars(
            select(PortfolioAccount).where(PortfolioAccount.provider_id == provider.id)
        ).all()
    deliveries_by_credential: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        deliveries_by_credential.setdefault(delivery.credential_id, []).append(delivery)
    peers = current_app.extensions.get("hpass_demo")
    # Read on each visit, so the page warns as soon as an admin disconnects the
    # demo connection or replaces its webhook secret, as `run --demo` does at start.
    problem = find_demo_connection_problem(current_bridge(), peers) if peers else None
    base = base_url()
    return render_template(
        "demo/index.html",
        peers_mounted=peers is not None,
        connection_problem=problem,
        platform_url=base + PLATFORM_PATH,
        moodle_url=base + MOODLE_PATH,
        portfolio_url=base + PORTFOLIO_PATH,
        credentials=credentials,
        deliveries=deliveries_by_credential,
        portfolios={account.id: account for account in accounts},
        slug=DEMO_SLUG,
        provider_name=provider.name if provider is not None else DEMO_PROVIDER_NAME,
    )
