"""`hpass-bridge run` (web server, worker and scheduler together) and `hpass-bridge demo`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from lti_tool.config import ConfigError, load_settings

STOP_GRACE_SECONDS = 15


def _child_command(name: str) -> list[str]:
    return [sys.executable, "-m", "lti_tool", name]


def start_background_processes(env: dict[str, str]) -> list[subprocess.Popen]:
    """Start a worker and the scheduler as child processes sharing this environment."""
    return [
        subprocess.Popen(_child_command("worker"), env=env, start_new_session=True),
        subprocess.Popen(_child_command("scheduler"), env=env, start_new_session=True),
    ]


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ask each child to stop (SIGTERM: Celery's warm shutdown), then kill stragglers."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="TCP port.")
@click.option(
    "--demo/--no-demo",
    default=False,
    help="Serve the demo LMS, platform and portfolio beside the bridge, with demo data.",
)
@click.option("--threads", default=8, show_default=True, type=int, help="Web server threads.")
def run(host: str, port: int, demo: bool, threads: int) -> None:
    """Run the web server, a Celery worker and the scheduler; Ctrl-C stops them all."""
    from waitress import create_server

    from lti_tool.app import create_app
    from lti_tool.schema import upgrade

    env = dict(os.environ)
    if demo:
        env["HPASS_DEMO"] = "1"
        env.setdefault("HPASS_PUBLIC_BASE_URL", f"http://{host}:{port}")
        # The demo's peers are loopback servers over plain HTTP; the setting refuses
        # to start when the public base URL is not on loopback.
        env.setdefault("HPASS_LOOPBACK_DEV", "1")
    os.environ.update(env)
    try:
        settings = load_settings()
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    app = create_app(settings)
    wsgi_app = app
    if demo:
        from lti_tool.demo.setup import mount_demo

        wsgi_app = mount_demo(app)

    server = create_server(wsgi_app, host=host, port=port, threads=threads)
    children = start_background_processes(env)
    start_page = f"{settings.public_base_url}/demo" if demo else settings.public_base_url
    click.echo(f"HPass bridge is running at {start_page}  (Ctrl-C stops it)")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("stopping the web server, worker and scheduler ...")
    finally:
        server.close()
        stop_processes(children)
    click.echo("stopped")


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, writable=True),
    help="Folder to write credential.json (what the portfolio received) and did.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def demo(out: str | None, as_json: bool) -> None:
    """Run the whole path headless: launch, completion, badge, delivery, verification.

    Exits 0 only when the credential reached the portfolio and verifies.
    """
    from lti_tool.demo.headless import run_headless_demo

    sys.exit(run_headless_demo(out_dir=out, as_json=as_json))
