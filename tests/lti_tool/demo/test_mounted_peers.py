"""The demo peers work when mounted under /demo beside the bridge, as `run --demo` serves them."""

from __future__ import annotations

import re

import requests

from lti_tool.demo.stack import DemoStack


def test_moodle_page_buttons_mounted(tmp_path):
    """The Moodle stand-in's buttons post under its mount path and come back to its page."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/moodle/", timeout=10)
        actions = re.findall(r'action="([^"]+)"', page.text)
        course_action = next(
            action for action in actions if action.endswith("/complete")
        )
        response = requests.post(f"{stack.base_url}{course_action}", timeout=30)
    finally:
        stack.stop()

    assert actions == [
        "/demo/moodle/complete-activity",
        "/demo/moodle/complete-activity",
        "/demo/moodle/complete",
        "/demo/moodle/reset",
    ]
    assert response.status_code == 200
    assert response.url == f"{stack.base_url}/demo/moodle/"


def test_activity_completion_stores_fact(tmp_path):
    """An activity's button on the mounted Moodle page makes the bridge store that
    activity's completion fact, and no course completion."""
    from sqlalchemy import select

    from badge_engine.models import CompletionFactRecord

    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        response = requests.post(
            f"{stack.base_url}/demo/moodle/complete-activity",
            data={"cmid": "4001"},
            timeout=30,
        )
        delivery = stack.peers.moodle.deliveries[-1]
        with stack.bridge.session() as session:
            facts = session.scalars(select(CompletionFactRecord)).all()
    finally:
        stack.stop()

    assert response.status_code == 200
    assert response.url == f"{stack.base_url}/demo/moodle/"
    assert delivery.status_code == 202
    assert len(facts) == 1
    fact = facts[0]
    assert fact.lms_course_id == "101"
    assert fact.lms_user_id == "3001"
    assert fact.activity_id == "4001"
    assert fact.state == "complete"
    assert fact.source == "event"


def test_moodle_page_links_and_states(tmp_path):
    """The Moodle stand-in links back to the demo and the portfolio, fits a phone
    screen and words each activity's completion state."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/moodle/", timeout=10).text
    finally:
        stack.stop()

    assert f'<a href="{stack.base_url}/demo/">Back to the demo</a>' in page
    assert f'<a href="{stack.base_url}/demo/portfolio/">Open the portfolio</a>' in page
    assert (
        '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    )
    assert "not completed" in page
    assert "state 0" not in page


def test_portfolio_page_links(tmp_path):
    """The portfolio page links back to the demo and the Moodle course, and fits a
    phone screen."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/portfolio/", timeout=10).text
    finally:
        stack.stop()

    assert f'<a href="{stack.base_url}/demo/">Back to the demo</a>' in page
    assert f'<a href="{stack.base_url}/demo/moodle/">Open the Moodle course</a>' in page
    assert (
        '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    )


def test_platform_launch_links_mounted(tmp_path):
    """The platform's launch links point under its mount path."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        page = requests.get(f"{stack.base_url}/demo/platform/", timeout=10)
    finally:
        stack.stop()

    links = re.findall(r'href="([^"]*launch/[^"]+)"', page.text)
    assert links
    assert all(link.startswith("/demo/platform/launch/") for link in links)


def test_peers_keep_state_across_restart(tmp_path):
    """After a restart the Moodle stand-in and the portfolio still hold what they had."""
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID

    first = DemoStack(tmp_path / "instance")
    first.start_web()
    try:
        first.peers.portfolio.restore(
            {
                "credentials": [
                    {
                        "credential_id": "urn:uuid:kept",
                        "credential": {"id": "urn:uuid:kept"},
                        "compact_jws": None,
                        "received_at": 1.0,
                    }
                ]
            }
        )
        # Any request that is not a GET saves the peers' state.
        requests.post(f"{first.base_url}/demo/moodle/reset", timeout=30)
        requests.post(f"{first.base_url}/demo/moodle/complete", timeout=30)
        completed_at = first.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
    finally:
        first.stop()

    second = DemoStack(tmp_path / "instance")
    second.start_web()
    try:
        moodle = second.peers.moodle
        kept = second.peers.portfolio.stored_credential("urn:uuid:kept")
        remembered = moodle.course_completion_time(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    finally:
        second.stop()

    assert completed_at is not None
    assert remembered == completed_at
    assert kept is not None
    assert kept.credential == {"id": "urn:uuid:kept"}


def test_unreadable_state_file_starts_empty(tmp_path):
    """A corrupt demo-state.json is logged and the peers start with no progress."""
    from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "demo-state.json").write_text("{not json")
    stack = DemoStack(instance)
    stack.start_web()
    try:
        remembered = stack.peers.moodle.course_completion_time(
            DEMO_COURSE_ID, DEMO_LEARNER_ID
        )
    finally:
        stack.stop()

    assert remembered is None


def _demo_connection(stack):
    from sqlalchemy import select

    from connectors.models import LmsConnection

    with stack.bridge.session() as session:
        return session.scalar(
            select(LmsConnection).where(
                LmsConnection.public_id == stack.peers.ids.connection_public_id
            )
        )


def test_demo_problem_none_when_usable(tmp_path):
    """A fresh demo reports no problem with its Moodle connection."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        problem = stack.app.extensions["hpass_demo_problem"]
    finally:
        stack.stop()

    assert problem is None


def test_demo_disconnected_warns_at_start(tmp_path):
    """After the demo connection is disconnected, the next start names the
    connection, the 410 and the instance folder to delete."""
    from lti_tool.operations.lms import disconnect_connection

    first = DemoStack(tmp_path / "instance")
    first.start_web()
    try:
        connection_id = first.peers.ids.connection_public_id
        with first.bridge.session() as session:
            from connectors.models import LmsConnection

            connection = session.get(LmsConnection, _demo_connection(first).id)
            disconnect_connection(session, "os:tester", connection)
            session.commit()
    finally:
        first.stop()

    second = DemoStack(tmp_path / "instance")
    second.start_web()
    try:
        problem = second.app.extensions["hpass_demo_problem"]
    finally:
        second.stop()

    assert problem is not None
    assert f"connection {connection_id} was disconnected" in problem
    assert "HTTP 410" in problem
    assert str((tmp_path / "instance").resolve()) in problem
    assert "hpass-bridge run --demo" in problem
    assert "HPASS_DATABASE_URL" not in problem


def test_demo_replaced_secret_warns(tmp_path):
    """A demo connection whose webhook secret was replaced is reported with 401."""
    from lti_tool.operations.lms import issue_webhook_secret

    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        from lti_tool.demo.setup import demo_connection_problem

        with stack.bridge.session() as session:
            from connectors.models import LmsConnection

            connection = session.get(LmsConnection, _demo_connection(stack).id)
            issue_webhook_secret(session, stack.bridge, "os:tester", connection)
            session.commit()
        problem = demo_connection_problem(stack.bridge, stack.peers)
    finally:
        stack.stop()

    assert problem is not None
    assert "webhook secret" in problem
    assert "HTTP 401" in problem


def test_fresh_demo_steps_outside_database(tmp_path):
    """With the database outside the instance folder, the steps say to replace it."""
    from types import SimpleNamespace

    from lti_tool.demo.setup import fresh_demo_steps

    settings = SimpleNamespace(
        instance_path=tmp_path / "instance",
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )

    steps = fresh_demo_steps(SimpleNamespace(settings=settings))

    assert "delete the instance folder" in steps
    assert "HPASS_DATABASE_URL" in steps


class _StoppedServer:
    """A waitress server stand-in whose run() returns at once, as after Ctrl-C."""

    def run(self) -> None:
        raise KeyboardInterrupt

    def close(self) -> None:
        pass


def _run_demo_on_port_5998(monkeypatch, instance):
    """Invoke `hpass-bridge run --demo --port 5998` on `instance`, which stops at
    once, with no worker or scheduler; return click's result."""
    import os
    import signal

    import waitress
    from click.testing import CliRunner

    from lti_tool import app as app_module
    from lti_tool import cli_run

    monkeypatch.setenv("HPASS_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("HPASS_PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("HPASS_DATABASE_URL", raising=False)
    monkeypatch.setattr(waitress, "create_server", lambda *a, **k: _StoppedServer())
    monkeypatch.setattr(cli_run, "start_background_processes", lambda env: [])
    monkeypatch.setattr(app_module, "freeze_startup_objects", lambda: None)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # `run` writes the settings it derives into os.environ for its child processes.
    saved_environ = dict(os.environ)
    try:
        return CliRunner().invoke(
            cli_run.run, ["--demo", "--port", "5998"], catch_exceptions=False
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.environ.clear()
        os.environ.update(saved_environ)


def test_run_demo_prints_warning(tmp_path, monkeypatch):
    """`hpass-bridge run --demo` on an instance whose demo connection was
    disconnected prints the warning on stderr after the start-up line."""
    from lti_tool.operations.lms import disconnect_connection

    instance = tmp_path / "instance"
    first = DemoStack(instance)
    first.start_web()
    try:
        with first.bridge.session() as session:
            from connectors.models import LmsConnection

            connection = session.get(LmsConnection, _demo_connection(first).id)
            disconnect_connection(session, "os:tester", connection)
            session.commit()
    finally:
        first.stop()
    result = _run_demo_on_port_5998(monkeypatch, instance)

    assert result.exit_code == 0, result.output
    assert "HPass bridge is running at http://127.0.0.1:5998/demo" in result.stdout
    assert "warning: the demo's Moodle connection" in result.stderr
    assert "was disconnected" in result.stderr
    assert str(instance.resolve()) in result.stderr


def _disconnect_demo(stack) -> None:
    from connectors.models import LmsConnection
    from lti_tool.operations.lms import disconnect_connection

    with stack.bridge.session() as session:
        connection = session.get(LmsConnection, _demo_connection(stack).id)
        disconnect_connection(session, "os:tester", connection)
        session.commit()


def _warning(page: str) -> str:
    return page.split('<div class="notice warning" role="alert">', 1)[1].split(
        "</div>", 1
    )[0]


def test_demo_page_warns_after_disconnect(tmp_path):
    """The /demo page shows the start-up warning as soon as the demo connection is
    disconnected, with the steps to a fresh demo."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        connection_id = stack.peers.ids.connection_public_id
        before = requests.get(f"{stack.base_url}/demo/", timeout=10).text
        _disconnect_demo(stack)
        after = requests.get(f"{stack.base_url}/demo/", timeout=10).text
    finally:
        stack.stop()
    warning = _warning(after)

    assert 'class="notice warning"' not in before
    assert "The demo cannot award badges." in warning
    assert f'<code dir="ltr">{connection_id}</code> was disconnected on' in warning
    assert '<code dir="ltr">os:tester</code>' in warning
    assert "HTTP 410" in warning
    assert str((tmp_path / "instance").resolve()) in warning
    assert '<code dir="ltr">hpass-bridge run --demo</code>' in warning
    assert "HPASS_DATABASE_URL" not in warning


def test_demo_page_warns_replaced_secret(tmp_path):
    """A replaced webhook secret is named on the /demo page with HTTP 401."""
    from connectors.models import LmsConnection
    from lti_tool.operations.lms import issue_webhook_secret

    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    try:
        with stack.bridge.session() as session:
            connection = session.get(LmsConnection, _demo_connection(stack).id)
            issue_webhook_secret(session, stack.bridge, "os:tester", connection)
            session.commit()
        page = requests.get(f"{stack.base_url}/demo/", timeout=10).text
    finally:
        stack.stop()
    warning = _warning(page)

    assert "webhook secret of the demo's Moodle connection" in warning
    assert "HTTP 401" in warning


def test_demo_page_warning_translated(tmp_path):
    """The warning is translated, in French, Spanish and Arabic."""
    stack = DemoStack(tmp_path / "instance")
    stack.start_web()
    pages = {}
    try:
        _disconnect_demo(stack)
        for language in ("fr", "es", "ar"):
            pages[language] = requests.get(
                f"{stack.base_url}/demo/",
                headers={"Accept-Language": language},
                timeout=10,
            ).text
    finally:
        stack.stop()

    assert "La démo ne peut pas attribuer de badges." in _warning(pages["fr"])
    assert "supprimez le dossier d'instance" in _warning(pages["fr"])
    assert "La demostración no puede otorgar insignias." in _warning(pages["es"])
    assert "لا يمكن للعرض التجريبي منح الشارات." in _warning(pages["ar"])
    assert 'dir="rtl"' in pages["ar"]


def test_demo_moved_keeps_disconnect(tmp_path):
    """A disconnected demo connection moved to a new port keeps no site key and
    is still reported as disconnected."""
    first = DemoStack(tmp_path / "instance")
    first.start_web()
    try:
        _disconnect_demo(first)
    finally:
        first.stop()

    second = DemoStack(tmp_path / "instance")
    second.start_web()
    try:
        moved_from = second.app.extensions["hpass_demo_moved_from"]
        connection = _demo_connection(second)
        problem = second.app.extensions["hpass_demo_problem"]
    finally:
        second.stop()

    assert moved_from == first.base_url
    assert connection.base_url == f"{second.base_url}/demo/moodle"
    assert connection.site_key is None
    assert "was disconnected" in problem


def test_demo_same_port_not_moved(tmp_path):
    """A restart on the port the demo was seeded with moves nothing."""
    first = DemoStack(tmp_path / "instance")
    first.start_web()
    first.stop()

    second = DemoStack(tmp_path / "instance")
    second.port, second.base_url = first.port, first.base_url
    second.env["HPASS_PUBLIC_BASE_URL"] = first.base_url
    second.start_web()
    try:
        moved_from = second.app.extensions["hpass_demo_moved_from"]
        connection = _demo_connection(second)
    finally:
        second.stop()

    assert moved_from is None
    assert connection.base_url == f"{first.base_url}/demo/moodle"


def test_run_demo_prints_move(tmp_path, monkeypatch):
    """`hpass-bridge run --demo` on a port other than the one the demo was seeded
    with prints one line naming both addresses."""

    from sqlalchemy import select

    from badge_engine.models import Provider
    from lti_tool.models import Registration

    instance = tmp_path / "instance"
    first = DemoStack(instance)
    first.start_web()
    first.stop()
    result = _run_demo_on_port_5998(monkeypatch, instance)

    # The first stack's engine still opens connections after `stop` disposed its pool.
    with first.bridge.session() as session:
        provider = session.scalar(select(Provider))
        registration = session.scalar(select(Registration))
    first.bridge.engine.dispose()

    moved_lines = [line for line in result.stdout.splitlines() if "moved" in line]
    assert result.exit_code == 0, result.output
    assert moved_lines == [
        f"moved the demo from {first.base_url} to http://127.0.0.1:5998; badges "
        "issued before keep their old addresses"
    ]
    assert provider.url == "http://127.0.0.1:5998/demo"
    assert registration.issuer == "http://127.0.0.1:5998/demo/platform"
    assert registration.auth_login_url == "http://127.0.0.1:5998/demo/platform/auth"
    assert registration.key_set_url == "http://127.0.0.1:5998/demo/platform/jwks"
