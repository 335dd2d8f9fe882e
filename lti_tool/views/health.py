"""GET /health: version, database and broker status for load balancers and people."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from lti_tool.bridge import current_bridge
from lti_tool.logs import get_logger

bp = Blueprint("health", __name__)
log = get_logger(__name__)


def _check_database() -> str:
    try:
        with current_bridge().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
        log.warning("health_database_failed", error=str(error))
        return "error"
    return "ok"


def _check_broker() -> str:
    from lti_tool.celery_app import celery_for

    try:
        with celery_for(current_app).connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
        log.warning("health_broker_failed", error=str(error))
        return "error"
    return "ok"


@bp.get("/health")
def health():
    database = _check_database()
    broker = _check_broker()
    healthy = database == "ok" and broker == "ok"
    body = {
        "status": "ok" if healthy else "degraded",
        "version": current_app.config["HPASS_VERSION"],
        "database": database,
        "broker": broker,
    }
    return jsonify(body), 200 if healthy else 503
