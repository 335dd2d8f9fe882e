"""Inputs the fuzzers found that once crashed a parser, kept as fixed cases."""

from __future__ import annotations

import pytest

from connectors.moodle.events import parse_xapi_hints
from lti_tool.config import ConfigError, load_settings
from tests.security.fuzzing import load_fixture


def test_xapi_grouping_not_list():
    """An xAPI statement whose grouping is a number is skipped, not a TypeError."""
    statement = load_fixture("moodle/xapi_statement_module_completed.json")[0]
    statement["context"]["contextActivities"]["grouping"] = 0
    statement["object"]["id"] = "not a course URL"

    hints, skipped = parse_xapi_hints([statement])

    assert hints == []
    assert skipped == 1


@pytest.mark.parametrize("raw", ["inf", "1e400", "nan", "-inf"])
def test_settings_reject_non_finite(tmp_path, raw):
    """A non-finite number of attempts or seconds is a ConfigError, not an OverflowError."""
    with pytest.raises(ConfigError, match="finite"):
        load_settings(
            environ={"HPASS_OUTBOX_MAX_ATTEMPTS": raw},
            overrides={"instance_path": tmp_path},
        )


@pytest.fixture
def portfolio():
    """A loopback portfolio whose every response is the body the test sets."""
    from flask import Flask, Response

    from lti_tool.demo.peers.serving import serve_in_thread

    state = {"body": b"{}"}
    app = Flask("portfolio_regressions")
    app.add_url_rule(
        "/<path:path>",
        "answer",
        lambda path: Response(state["body"], mimetype="application/json"),
        methods=["GET", "POST"],
    )
    server = serve_in_thread(app)
    yield server.url, state
    server.stop()


@pytest.mark.parametrize("expires_in", [b"NaN", b"1e400", b"-Infinity"])
def test_token_expiry_non_finite(portfolio, expires_in):
    """A token response with a non-finite expires_in keeps the token with no expiry."""
    from badge_engine.outbound import OutboundPolicy
    from connectors.hpass.http import PortfolioHttp
    from connectors.hpass.models import PortfolioClient
    from connectors.hpass.ob3_oauth import exchange_code

    url, state = portfolio
    state["body"] = b'{"access_token": "a", "expires_in": ' + expires_in + b"}"
    http = PortfolioHttp(OutboundPolicy(allow_loopback=True), portfolio_url=url)
    client = PortfolioClient(
        token_url=url + "/token", client_id="bridge", client_secret_encrypted=None
    )

    tokens = exchange_code(
        http, client, None, code="c", code_verifier="v", redirect_uri=url + "/cb"
    )

    assert tokens.access_token == "a"
    assert tokens.expires_in is None


def test_discovery_flow_not_object(portfolio):
    """A discovery document whose flow is a list is a PortfolioSetupError."""
    from badge_engine.outbound import OutboundPolicy
    from connectors.hpass.errors import PortfolioSetupError
    from connectors.hpass.http import PortfolioHttp
    from connectors.hpass.ob3_oauth import discover_ob3

    url, state = portfolio
    state["body"] = (
        b'{"info": {"title": "t"}, "components": {"securitySchemes": '
        b'{"OAuth2ACG": {"flows": {"authorizationCode": []}}}}}'
    )
    http = PortfolioHttp(OutboundPolicy(allow_loopback=True), portfolio_url=url)

    with pytest.raises(PortfolioSetupError, match="OAuth2ACG"):
        discover_ob3(http)
