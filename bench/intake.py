"""Benchmark: webhook event intake with wrk, the bridge beside a minimal receiver.

Starts two servers on loopback with the same WSGI server (granian, the production
web server, or waitress with --server waitress):
the bridge's production app, which authenticates each Moodle event, parses it,
deduplicates it, stores the raw payload and the fact with its outbox message, and
hands the message to the broker; and a minimal Flask receiver that only stores the
body, with one commit per request, in the same kind of database as the bridge's
(SQLite, or its own table in the bridge's PostgreSQL database with --postgres). wrk
posts distinct events to each in turn. No worker runs, so only intake is measured.

Both servers run for the whole bench. Each first gets an uncounted warm-up run, then
the two are measured in turn for --rounds rounds, the order swapped every round, so a
change in the machine's load weighs on both alike. Prints requests per second, p50
and p99 latency of every run, each round's ratio and the median ratio.

Every wrk connection comes from 127.0.0.1, so the bridge's webhook rate limit (one
bucket per client address) would reject part of a long or fast run. The bench raises
that limit through HPASS_RATE_LIMIT_WEBHOOK_PER_MINUTE and _BURST; the limiter still counts each
request, as in production.

With gunicorn installed (`pip install -e '.[bench]'`), a third server joins the
rounds: the same minimal receiver under gunicorn with 2 sync workers, the setup
whose figures the intake target quotes. The bench then prints the bridge's ratio
to each receiver; --no-gunicorn-receiver leaves it out.

    python bench/intake.py [--postgres] [--duration 10] [--rounds 3] [--server granian] [--cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    add_server_arguments,
    describe_server,
    free_port,
    scratch_postgres,
)

WEBHOOK_SECRET = "bench-webhook-secret"
LUA = r"""
counter = 0
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  template = args[1]
  first_user = tonumber(args[2])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local user = string.format("%d", first_user + thread_id * 10000000 + counter)
  local body = string.gsub(template, "424242", user)
  return wrk.format(nil, nil, nil, body)
end
"""


def event_template() -> str:
    """Build a Moodle course module completion event whose learner id wrk replaces."""
    from lti_tool.demo.peers.moodle import MoodleStandIn

    moodle = MoodleStandIn(
        "t",
        webhook_url="http://127.0.0.1:9/x",
        webhook_secret=WEBHOOK_SECRET,
        site_url="http://127.0.0.1:9",
    )
    event = moodle.build_module_completion_event(101, 424242, 4001, 1, 1735689600)
    event["relateduserid"] = 424242
    event["other"]["relateduserid"] = 424242
    event["userid"] = 424242
    return json.dumps(event)


def seed_bridge(environ: dict[str, str]) -> str:
    """Upgrade the schema and add a provider with a Moodle connection; return its id."""
    from badge_engine.models import Provider
    from connectors.models import LmsConnection, LmsKind
    from lti_tool.app import create_app
    from lti_tool.config import ensure_secret_files, load_settings
    from lti_tool.schema import upgrade
    from lti_tool.views.webhooks import secret_digest

    settings = load_settings(environ=environ)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    ensure_secret_files(settings, environ)
    upgrade(settings.database_url)
    app = create_app(load_settings(environ=environ))
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = Provider(slug="bench", name="Bench", url="https://bench.invalid")
        session.add(provider)
        session.flush()
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="Bench Moodle",
            base_url="http://127.0.0.1:9",
            api_token_encrypted=bridge.vault.encrypt("unused"),
            webhook_secret_sha256=secret_digest(WEBHOOK_SECRET),
        )
        session.add(connection)
        session.commit()
        public_id = connection.public_id
    bridge.engine.dispose()
    return public_id


def server_command(server: dict, call: str, port: int) -> list[str]:
    """Return the command line that serves the app factory `call` on `port`."""
    if server["name"] == "waitress":
        waitress = str(Path(sys.executable).with_name("waitress-serve"))
        return [
            waitress,
            f"--listen=127.0.0.1:{port}",
            f"--threads={server['threads']}",
        ] + [
            "--call",
            call,
        ]
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(server["workers"]),
        "--blocking-threads",
        str(server["threads"]),
        call,
    ]


# The minimal receiver under gunicorn's default sync workers, one request at a
# time per process: the setup whose figures the intake target quotes.
GUNICORN_RECEIVER = {"name": "gunicorn", "workers": 2, "threads": 1}


MINIMAL = "minimal receiver"
GUNICORN = "gunicorn receiver"


def gunicorn_installed() -> bool:
    return importlib.util.find_spec("gunicorn") is not None


def gunicorn_command(call: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(GUNICORN_RECEIVER["workers"]),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        f"{call}()",
    ]


def start_server(
    server: dict, call: str, port: int, environ: dict[str, str], log: Path
) -> subprocess.Popen:
    if server["name"] == "gunicorn":
        command = gunicorn_command(call, port)
    else:
        command = server_command(server, call, port)
    process = subprocess.Popen(
        command,
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server {call} did not start:\n{log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server started by `start_server`; a stopped one is left as it is."""
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


# Each wrk run starts its learner ids this far above the previous run's, so no run
# repeats an event that an earlier run stored.
USERS_PER_RUN = 100_000_000
_runs = itertools.count(1)


def run_wrk(
    url: str, script: Path, template: str, duration: int, connections: int
) -> dict:
    """Post distinct events to `url` for `duration` seconds; return wrk's figures."""
    first_user = next(_runs) * USERS_PER_RUN
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            template,
            str(first_user),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(output)


def _millis(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> dict:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_second": float(
            re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)
        ),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "p50_ms": _millis(percentiles["50"]),
        "p99_ms": _millis(percentiles["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def process_tree(pid: int) -> list[int]:
    """Return `pid` and the ids of all its descendants, read from /proc."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        # Each thread lists the children it started, so every thread is read.
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:  # the process ended
            continue
        for task in tasks:
            try:
                pending.extend(
                    int(child) for child in (task / "children").read_text().split()
                )
            except OSError:
                continue
    return tree


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_totals(pids: list[int]) -> tuple[float, int]:
    """Return the CPU seconds and voluntary context switches of every thread of `pids`."""
    cpu_ticks = switches = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text()
            except OSError:
                continue
            # utime and stime are fields 14 and 15 of stat (proc(5)).
            cpu_ticks += int(fields[11]) + int(fields[12])
            found = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
            switches += int(found.group(1)) if found else 0
    return cpu_ticks / CLOCK_TICKS, switches


def run_wrk_measured(process: subprocess.Popen, *args) -> dict:
    """Run `run_wrk` and add the server's and wrk's CPU and switches per request."""
    pids = process_tree(process.pid)
    cpu_before, switches_before = thread_totals(pids)
    times_before = os.times()
    figures = run_wrk(*args)
    times_after = os.times()
    cpu_after, switches_after = thread_totals(pids)
    requests_done = max(figures["requests"], 1)
    wrk_cpu = (times_after.children_user + times_after.children_system) - (
        times_before.children_user + times_before.children_system
    )
    figures["server_cpu_us"] = 1e6 * (cpu_after - cpu_before) / requests_done
    figures["wrk_cpu_us"] = 1e6 * wrk_cpu / requests_done
    figures["switches"] = (switches_after - switches_before) / requests_done
    return figures


def count_facts(environ: dict[str, str]) -> int:
    from sqlalchemy import func, select

    from badge_engine.db import make_engine
    from badge_engine.models import CompletionFactRecord
    from lti_tool.config import load_settings

    engine = make_engine(load_settings(environ=environ).database_url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count(CompletionFactRecord.id)))
    engine.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="Bridge on PostgreSQL.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Measured runs of each server, alternated.",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="Seconds of uncounted load per server first.",
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections.")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="Also print each run's CPU time per request of the server and of wrk, "
        "and the server threads' voluntary context switches per request (Linux only).",
    )
    parser.add_argument(
        "--webhook-rate-limit",
        type=int,
        default=10_000_000,
        help="Webhook requests per minute (and burst) allowed from one address.",
    )
    parser.add_argument(
        "--no-gunicorn-receiver",
        dest="gunicorn_receiver",
        action="store_false",
        help="Leave out the minimal receiver under gunicorn with 2 sync workers.",
    )
    # --workers defaults to 1 on SQLite and 2 on PostgreSQL; see below.
    add_server_arguments(parser, workers=None, threads=8)
    args = parser.parse_args()
    # SQLite has one writer at a time. A second process's writer would wait in SQLite's
    # busy handler, which sleeps for milliseconds, while the first one commits.
    workers = args.workers or (2 if args.postgres else 1)
    server_settings = {
        "name": args.server,
        "workers": workers,
        "threads": args.threads,
    }

    load_before = os.getloadavg()[0]
    with ExitStack() as cleanup, tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bridge_port, minimal_port, gunicorn_port = free_port(), free_port(), free_port()
        environ = {
            **os.environ,
            "HPASS_INSTANCE_PATH": str(folder / "instance"),
            "HPASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{bridge_port}",
            "HPASS_LOOPBACK_DEV": "1",
            "HPASS_LOG_LEVEL": "WARNING",
            "HPASS_RATE_LIMIT_WEBHOOK_PER_MINUTE": str(args.webhook_rate_limit),
            "HPASS_RATE_LIMIT_WEBHOOK_BURST": str(args.webhook_rate_limit),
            "MINIMAL_RECEIVER_DB": str(folder / "minimal.db"),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        if args.postgres:
            environ["HPASS_DATABASE_URL"] = cleanup.enter_context(
                scratch_postgres("hpass_bench_intake")
            )
            environ["HPASS_BROKER_URL"] = "redis://127.0.0.1:6379/14"
            environ["MINIMAL_RECEIVER_POSTGRES"] = (
                make_url(environ["HPASS_DATABASE_URL"])
                .set(drivername="postgresql")
                .render_as_string(hide_password=False)
            )
        public_id = seed_bridge(environ)
        script = folder / "events.lua"
        script.write_text(LUA)
        template = event_template()

        receiver = "bench.minimal_receiver:create_app"
        servers = {
            MINIMAL: (server_settings, receiver, minimal_port),
            "bridge": (server_settings, "lti_tool.app:create_server_app", bridge_port),
        }
        with_gunicorn = args.gunicorn_receiver and gunicorn_installed()
        if with_gunicorn:
            servers[GUNICORN] = (GUNICORN_RECEIVER, receiver, gunicorn_port)
        urls, processes, processes_by_name = {}, [], {}
        for name, (settings, call, port) in servers.items():
            processes.append(
                start_server(settings, call, port, environ, folder / f"{port}.log")
            )
            processes_by_name[name] = processes[-1]
            cleanup.callback(stop_server, processes[-1])
            urls[name] = f"http://127.0.0.1:{port}/webhooks/moodle/{public_id}"

        bridge_requests = 0
        if args.warmup:
            for name, url in urls.items():
                warmup = run_wrk(url, script, template, args.warmup, args.connections)
                if name == "bridge":
                    bridge_requests += warmup["requests"] - warmup["non_2xx"]

        rounds = []
        order = list(urls)
        for _ in range(args.rounds):
            figures = {}
            for name in order:
                wrk_args = (
                    urls[name],
                    script,
                    template,
                    args.duration,
                    args.connections,
                )
                if args.cpu:
                    figures[name] = run_wrk_measured(processes_by_name[name], *wrk_args)
                else:
                    figures[name] = run_wrk(*wrk_args)
            bridge_requests += (
                figures["bridge"]["requests"] - figures["bridge"]["non_2xx"]
            )
            rounds.append(figures)
            # Each server goes first in turn.
            order = order[1:] + order[:1]
        # Stopped before counting, so that no request is still being stored.
        for process in processes:
            stop_server(process)
        facts = count_facts(environ)

    backend = "PostgreSQL + Redis" if args.postgres else "SQLite + embedded broker"
    print(
        f"bridge backend: {backend}, minimal receiver on the same database; "
        f"{describe_server(server_settings)}; wrk 2 threads, "
        f"{args.connections} connections, {args.warmup} s of warm-up, then "
        f"{args.rounds} rounds of {args.duration} s per server; webhook rate limit "
        f"{args.webhook_rate_limit:,} per minute; load average before "
        f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    if with_gunicorn:
        print(
            f"{GUNICORN}: the same app under gunicorn with "
            f"{GUNICORN_RECEIVER['workers']} sync workers"
        )
    elif args.gunicorn_receiver:
        print(
            "gunicorn is not installed, so only the minimal receiver on the bridge's "
            "server ran; pip install -e '.[bench]' adds the gunicorn receiver"
        )
    baselines = [name for name in (MINIMAL, GUNICORN) if name in servers]
    ratios: dict[str, list[float]] = {name: [] for name in baselines}
    for number, figures in enumerate(rounds, start=1):
        for name in [*baselines, "bridge"]:
            run = figures[name]
            print(
                f"round {number}, {name}: {run['requests_per_second']:,.0f} requests/s, "
                f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, "
                f"{run['requests']:,} requests, {run['non_2xx']} non-2xx"
                + (
                    f", server CPU {run['server_cpu_us']:.0f} µs per request, "
                    f"wrk CPU {run['wrk_cpu_us']:.0f} µs, "
                    f"{run['switches']:.1f} voluntary switches per request"
                    if "server_cpu_us" in run
                    else ""
                )
            )
        for name in baselines:
            ratios[name].append(
                figures["bridge"]["requests_per_second"]
                / figures[name]["requests_per_second"]
            )
            print(
                f"round {number}, throughput ratio bridge / {name}: "
                f"{ratios[name][-1]:.2f}"
            )
    for name in baselines:
        print(
            f"median throughput ratio bridge / {name}: "
            f"{statistics.median(ratios[name]):.2f}"
        )
    print(
        f"facts stored by the bridge: {facts:,} "
        f"(requests answered 2xx, warm-up included: {bridge_requests:,})"
    )


if __name__ == "__main__":
    main()
