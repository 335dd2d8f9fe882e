"""The demo page: where a newcomer launches as the learner or the instructor, completes
the course in the Moodle stand-in and watches the badge arrive in the portfolio."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import select

from badge_engine.models import Credential, Provider
from connectors.hpass.models import Delivery
from lti_tool.bridge import db_session
from lti_tool.urls_for import base_url

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.get("/")
@bp.get("")
def index():
    from lti_tool.demo.setup import DEMO_SLUG, MOODLE_PATH, PLATFORM_PATH, PORTFOLIO_PATH

    db = db_session()
    provider = db.scalar(select(Provider).where(Provider.slug == DEMO_SLUG))
    credentials, deliveries = [], []
    if provider is not None:
        credentials = db.scalars(
            select(Credential)
            .where(Credential.provider_id == provider.id)
            .order_by(Credential.id.desc())
        ).all()
        deliveries = db.scalars(
            select(Delivery).where(Delivery.provider_id == provider.id)
        ).all()
    base = base_url()
    return render_template(
        "demo/index.html",
        peers_mounted="hpass_demo" in current_app.extensions,
        platform_url=base + PLATFORM_PATH,
        moodle_url=base + MOODLE_PATH,
        portfolio_url=base + PORTFOLIO_PATH,
        credentials=credentials,
        deliveries={d.credential_id: d for d in deliveries},
        slug=DEMO_SLUG,
    )
