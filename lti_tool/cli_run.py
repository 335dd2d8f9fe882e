"""`hpass-bridge run` (web server, worker and scheduler together) and `hpass-bridge demo`."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from lti_tool.config import (
    ConfigError,
    is_loopback_host,
    load_settings,
    remember_run_url,
)
from lti_tool.logs import get_logger
from lti_tool.run_lock import InstanceInUse, current_holder, hold_run_lock

STOP_GRACE_SECONDS = 15


def _child_command(name: str) -> list[str]:
    return [sys.executable, "-m", "lti_tool", name]


def _stop_with_parent(parent_pid: int) -> None:
    """Ask Linux to send SIGTERM to this child when its parent dies, so a killed
    `run` never leaves a worker or scheduler behind."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    # A parent that died between the fork and prctl triggers no signal, so the child
    # stops itself when it has already been reparented.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


BACKGROUND_PROCESS_NAMES = ("worker", "scheduler")


def start_background_processes(env: dict[str, str]) -> list[subprocess.Popen]:
    """Start a worker and the scheduler as child processes sharing this environment.

    Each child runs in a process group of its own, so Ctrl-C in a terminal reaches
    only `run`, which then stops each child once through `stop_processes`. In this
    process group, a child would get SIGINT from the terminal and then SIGTERM from
    `run`, and the worker's pool processes would get SIGINT as well.
    """
    return [
        # The command is this Python running lti_tool, built from no outside input.
        subprocess.Popen(  # noqa: S603
            _child_command(name),
            env=env,
            preexec_fn=functools.partial(_stop_with_parent, os.getpid()),
            process_group=0,
        )
        for name in BACKGROUND_PROCESS_NAMES
    ]


def stop_processes(
    processes: list[subprocess.Popen],
    names: tuple[str, ...] = BACKGROUND_PROCESS_NAMES,
) -> None:
    """Ask each child to stop (SIGTERM: Celery's warm shutdown), then kill stragglers.

    Only the main process gets SIGTERM, so Celery stops its own pool in order. The
    process group of a child that does not stop within STOP_GRACE_SECONDS gets
    SIGKILL. Logs one line per child, at INFO when it exits with status 0 and at
    ERROR otherwise.
    """
    log = get_logger("lti_tool.run")
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in zip(names, processes):
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            # Each child leads its own process group (see start_background_processes).
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log.error(
                "background_process_killed",
                process=name,
                pid=process.pid,
                grace_seconds=STOP_GRACE_SECONDS,
            )
            continue
        if process.returncode == 0:
            log.info("background_process_stopped", process=name, pid=process.pid)
        else:
            log.error(
                "background_process_failed",
                process=name,
                pid=process.pid,
                exit_status=process.returncode,
            )


class DeferredWsgiApp:
    """A WSGI app that forwards every request to `target`, set after the port is bound.

    `run` binds its port before it writes anything in the instance folder, and the
    app can only be built after that. Waitress accepts connections only once
    `server.run()` starts, so no request normally arrives while `target` is None;
    one that does gets 503.
    """

    def __init__(self) -> None:
        self.target = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8")],
            )
            return [b"The bridge is starting; try again in a few seconds.\n"]
        return self.target(environ, start_response)


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--demo/--no-demo",
    default=False,
    help="Serve the demo LMS, platform and portfolio beside the bridge, with demo data.",
)
@click.option(
    "--threads", default=8, show_default=True, type=int, help="Web server threads."
)
def run(host: str, port: int, demo: bool, threads: int) -> None:
    """Run the web server, a Celery worker and the scheduler; Ctrl-C stops them all."""
    from lti_tool.app import freeze_startup_objects

    # Until the web server runs, SIGINT and SIGTERM are only recorded, so a signal
    # that arrives while a child process is being started cannot lose track of it.
    # `run` checks for them once the children it starts are known.
    startup_stops = _StartupStops()
    signal.signal(signal.SIGINT, startup_stops.record)
    signal.signal(signal.SIGTERM, startup_stops.record)
    env = dict(os.environ)
    if demo:
        env["HPASS_DEMO"] = "1"
    derived_url = not env.get("HPASS_PUBLIC_BASE_URL") and is_loopback_host(host)
    if derived_url:
        # Without a configured public URL the bridge runs where it listens. The
        # demo's peers are loopback servers over plain HTTP; loopback development
        # mode refuses to start when the public base URL is not on loopback.
        url_host = f"[{host}]" if ":" in host else host
        env["HPASS_PUBLIC_BASE_URL"] = f"http://{url_host}:{port}"
        env.setdefault("HPASS_LOOPBACK_DEV", "1")
    os.environ.update(env)
    try:
        settings = load_settings()
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)

    # The port is bound first: the lock record, the remembered URL and the demo
    # rows all name the public base URL, so a run that cannot listen on its port
    # must exit before it writes any of them.
    server, deferred_app = _listen(host, port, threads, settings.instance_path)
    if startup_stops.received:
        server.close()
        _say(f"{startup_stops.received} received while starting; stopped")
        return
    try:
        run_lock, app, wsgi_app = _prepare_instance(settings, demo, derived_url)
    except BaseException:
        server.close()
        raise
    deferred_app.target = wsgi_app

    freeze_startup_objects()
    children = [] if startup_stops.received else start_background_processes(env)
    start_page = (
        f"{settings.public_base_url}/demo" if demo else settings.public_base_url
    )
    if not startup_stops.received:
        click.echo(f"HPass bridge is running at {start_page}  (Ctrl-C stops it)")
    demo_moved_from = app.extensions.get("hpass_demo_moved_from")
    if demo_moved_from:
        click.echo(
            f"moved the demo from {demo_moved_from} to {settings.public_base_url}; "
            "badges issued before keep their old addresses"
        )
    demo_problem = app.extensions.get("hpass_demo_problem")
    if demo_problem:
        click.echo(f"warning: {demo_problem}", err=True)
    try:
        # Explicit handlers: a shell that starts this in the background ignores
        # SIGINT, and SIGTERM (from a service manager) should stop everything the
        # same way. They replace the recording ones before the check, so a signal
        # that arrives in between raises KeyboardInterrupt here.
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        if not startup_stops.received:
            server.run()  # returns when waitress catches the KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not interrupt the stop half-way. A child that hangs is
        # killed after STOP_GRACE_SECONDS.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if startup_stops.received:
            _say(f"{startup_stops.received} received while starting")
        _say("stopping the web server, worker and scheduler ...")
        server.close()
        get_logger("lti_tool.run").info("web_server_stopped", port=port)
        stop_processes(children)
        state_file = app.extensions.get("hpass_demo_state")
        if state_file is not None:
            state_file.flush()
        run_lock.close()
    _say("stopped")


def _listen(host: str, port: int, threads: int, instance: Path):
    """Bind the web server's port, or exit 1 saying the port cannot be used.

    When the port is taken by the `run` that serves the same instance folder, the
    error names that run, as it does for a second `run` on another port.
    Returns the waitress server and the DeferredWsgiApp that it serves.
    """
    from waitress import create_server

    from lti_tool.lti.proxy import WAITRESS_OPTIONS

    deferred_app = DeferredWsgiApp()
    try:
        server = create_server(
            deferred_app, host=host, port=port, threads=threads, **WAITRESS_OPTIONS
        )
    except OSError as error:
        in_use = current_holder(instance)
        if in_use is not None:
            click.echo(f"error: {in_use}", err=True)
            sys.exit(1)
        click.echo(
            f"error: cannot listen on {host}:{port}: {error.strerror}; stop what uses "
            "that port or choose another with --port",
            err=True,
        )
        sys.exit(1)
    return server, deferred_app


def _prepare_instance(settings, demo: bool, derived_url: bool):
    """Lock the instance, upgrade its database and build the app (with the demo).

    Exits 1 when another `run` has locked the instance. Returns the lock file, the Flask
    app and the WSGI app to serve.
    """
    from lti_tool.app import create_app
    from lti_tool.schema import upgrade

    settings.instance_path.mkdir(parents=True, exist_ok=True)
    try:
        # The lock lasts until this process ends. Popen closes inherited file
        # descriptors, so the worker and scheduler never hold it.
        run_lock = hold_run_lock(settings.instance_path, settings.public_base_url)
    except InstanceInUse as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    if derived_url:
        remember_run_url(settings.instance_path, settings.public_base_url)
    upgrade(settings.database_url)
    app = create_app(settings)
    wsgi_app = app
    if demo:
        from lti_tool.demo.setup import mount_demo

        wsgi_app = mount_demo(app)
    return run_lock, app, wsgi_app


def _say(line: str) -> None:
    # The terminal or a pipe may already be gone when Ctrl-C arrives.
    try:
        click.echo(line)
    except OSError:
        pass


def _raise_keyboard_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


class _StartupStops:
    """The first stop signal that `run` received before its web server started.

    NOTE: a start-up step that hangs, such as a database upgrade waiting for a lock,
    delays the stop until the step ends. SIGKILL still ends `run` at once, and the
    worker and scheduler then get SIGTERM through PR_SET_PDEATHSIG.
    """

    def __init__(self) -> None:
        self.received: str | None = None

    def record(self, signum: int, _frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, writable=True),
    help="Folder to write credential.json (what the portfolio received), did.json and "
    "archive.json (verifies offline with `hpass-bridge verify`).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
)
def demo(out: str | None, as_json: bool) -> None:
    """Run the whole path headless: launch, completion, badge, delivery, verification.

    Exits 0 only when the credential reached the portfolio and verifies.
    """
    from lti_tool.demo.headless import run_headless_demo

    if out is not None:
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as error:
            message = f"cannot create the --out folder {out!r}: {error.strerror}"
            if as_json:
                click.echo(json.dumps({"error": "invalid_out", "message": message}))
            click.echo(f"error: {message}; choose a folder you can write to", err=True)
            sys.exit(2)

    sys.exit(run_headless_demo(out_dir=out, as_json=as_json))
