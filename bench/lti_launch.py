"""Measure complete LTI 1.3 launches (OIDC login plus launch) per second.

Two tools run in the same invocation, each under the same WSGI server and settings
(granian, the production web server, with `--workers` processes of `--threads`
threads; or waitress with `--threads` threads), against the same load:

- bridge:   this tool (`lti_tool`), SQLite database, one registration with an LMS
            connection, so each launch writes its nonce, course and learner rows.
- pylti1p3: a minimal Flask tool built on pylti1p3 with default settings (nonce and
            state in the Flask session, no key set cache).

A stand-in platform process serves the JWKS. Several client processes, each on one
keep-alive connection, first run `--prepare` logins and sign an id_token for each
(RS256, distinct nonces). Then all start together and run login-and-launch pairs
back to back: GET the login URL, then POST a prepared id_token with its state and
cookies to the launch URL. Each timed pair gives the tool a complete launch's work,
and the clients do no RSA signing while the tool is measured. Both tools get the same
clients, tokens and timing. All clients share one address, so the bridge's launch
rate limit is raised with `--launch-rate-limit`; the limiter still counts every
request. The script prints launches per second, p50 and p99
latency of a login-and-launch pair, the CPU time per launch of the tool's processes
and of the clients, and the ratios of the bridge to the baseline.

    python bench/lti_launch.py [--clients 8] [--seconds 10] [--server granian]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import add_server_arguments, describe_server  # noqa: E402

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLIENT_ID = "bench-client"
DEPLOYMENT_ID = "bench-deployment"
KID = "bench-platform-key"
# The platform stand-in's threads; the tools get --threads.
PLATFORM_THREADS = 8
# JSON arguments of the tool factory, for granian's worker processes.
TOOL_ARGUMENTS_VARIABLE = "HPASS_BENCH_TOOL_ARGUMENTS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start within {timeout:.0f} s")


def _quiet() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def run_platform(port: int, private_pem: bytes) -> None:
    """Serve the platform's JWKS (the only platform endpoint a launch calls)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from flask import Flask, jsonify
    from waitress import serve

    _quiet()
    key = serialization.load_pem_private_key(private_pem, password=None)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    app = Flask("bench_platform")
    app.add_url_rule("/jwks", "jwks", lambda: jsonify({"keys": [jwk]}))
    serve(app, host="127.0.0.1", port=port, threads=PLATFORM_THREADS, _quiet=True)


def serve_tool(server: dict, factory: str, arguments: list, port: int) -> None:
    """Serve the app that `factory(*arguments)` builds with the server settings."""
    if server["name"] == "waitress":
        from waitress import serve

        app = globals()[factory](*arguments)
        serve(app, host="127.0.0.1", port=port, threads=server["threads"], _quiet=True)
        return

    from granian import Granian

    # Granian starts its workers as new processes, which import the factory.
    os.environ[TOOL_ARGUMENTS_VARIABLE] = json.dumps(arguments)
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    Granian(
        f"bench.lti_launch:{factory}_from_environment",
        address="127.0.0.1",
        port=port,
        interface="wsgi",
        factory=True,
        workers=server["workers"],
        blocking_threads=server["threads"],
        log_enabled=False,
    ).serve()


def bridge_settings(port: int, folder: str, launch_limit: int, fernet_key: str):
    """Return the bridge's settings, the same in every process that serves it."""
    from lti_tool.config import load_settings

    settings = load_settings(
        environ={
            "HPASS_LOG_FORMAT": "json",
            # Every client connects from 127.0.0.1, one rate-limit bucket.
            "HPASS_RATE_LIMIT_LTI_LAUNCH_PER_MINUTE": str(launch_limit),
            "HPASS_RATE_LIMIT_LTI_LAUNCH_BURST": str(launch_limit),
        },
        overrides={
            "instance_path": Path(folder) / "instance",
            "public_base_url": f"http://127.0.0.1:{port}",
        },
    )
    settings.loopback_dev = True
    settings.secret_key = b"bench-secret-key"
    settings.encryption_keys = [fernet_key.encode()]
    return settings


def bridge_app(port: int, folder: str, launch_limit: int, fernet_key: str):
    from lti_tool.app import create_app

    return create_app(bridge_settings(port, folder, launch_limit, fernet_key))


def bridge_app_from_environment():
    from lti_tool.app import freeze_startup_objects

    app = bridge_app(*json.loads(os.environ[TOOL_ARGUMENTS_VARIABLE]))
    # As the production server factory, create_server_app, does.
    freeze_startup_objects()
    return app


def run_bridge(
    server: dict, port: int, platform_url: str, folder: str, launch_limit: int
) -> None:
    """Serve this tool with one provider, LMS connection and registration."""
    from cryptography.fernet import Fernet

    from badge_engine.models import Provider
    from connectors.models import LmsConnection
    from lti_tool.lti.registrations import create_registration
    from lti_tool.schema import upgrade

    _quiet()
    arguments = [port, folder, launch_limit, Fernet.generate_key().decode()]
    settings = bridge_settings(*arguments)
    settings.instance_path.mkdir(parents=True)
    upgrade(settings.database_url)
    app = bridge_app(*arguments)
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = Provider(
            slug="bench", name="Bench", url="https://bench.example.invalid"
        )
        session.add(provider)
        session.flush()
        connection = LmsConnection(
            provider_id=provider.id,
            kind="moodle",
            name="Bench Moodle",
            base_url="http://127.0.0.1:9",
        )
        session.add(connection)
        session.flush()
        registration = create_registration(
            session,
            bridge.vault,
            provider,
            issuer=platform_url,
            client_id=CLIENT_ID,
            auth_login_url=f"{platform_url}/auth",
            key_set_url=f"{platform_url}/jwks",
            deployment_ids=(DEPLOYMENT_ID,),
            lms_connection_id=connection.id,
        )
        session.commit()
        public_id = registration.public_id
    (Path(folder) / "bridge_registration").write_text(public_id)
    if server["name"] == "waitress":
        # Waitress serves, in this process, the app that seeded the database.
        from waitress import serve

        serve(app, host="127.0.0.1", port=port, threads=server["threads"], _quiet=True)
        return
    # Granian forks its workers from this process, and each worker builds its own app.
    # So this app's threads and database connections are closed first.
    from lti_tool import intake

    intake.stop(app)
    bridge.engine.dispose()
    serve_tool(server, "bridge_app", arguments, port)


def baseline_app_from_environment():
    return baseline_app(*json.loads(os.environ[TOOL_ARGUMENTS_VARIABLE]))


def run_baseline(server: dict, port: int, platform_url: str) -> None:
    _quiet()
    serve_tool(server, "baseline_app", [port, platform_url], port)


def baseline_app(port: int, platform_url: str):
    """Build a minimal pylti1p3 tool with default settings."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from flask import Flask
    from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
    from pylti1p3.tool_config import ToolConfDict

    tool_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tool_conf = ToolConfDict(
        {
            platform_url: [
                {
                    "default": True,
                    "client_id": CLIENT_ID,
                    "auth_login_url": f"{platform_url}/auth",
                    "auth_token_url": f"{platform_url}/token",
                    "key_set_url": f"{platform_url}/jwks",
                    "deployment_ids": [DEPLOYMENT_ID],
                }
            ]
        }
    )
    tool_conf.set_private_key(
        platform_url,
        tool_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        client_id=CLIENT_ID,
    )

    app = Flask("baseline_tool")
    app.secret_key = "bench-secret-key"

    @app.route("/login", methods=["GET", "POST"])
    def login():
        return FlaskOIDCLogin(FlaskRequest(), tool_conf).redirect(
            f"http://127.0.0.1:{port}/launch"
        )

    @app.post("/launch")
    def launch():
        data = FlaskMessageLaunch(FlaskRequest(), tool_conf).get_launch_data()
        return f"launched {data['sub']}"

    return app


class ToolConnection:
    """One keep-alive HTTP/1.1 connection to a tool, with the launch's two requests.

    The standard library's client keeps the clients' own CPU per launch small, so the
    tool under test gets the machine's cores rather than the load generators.
    """

    def __init__(self, login_url: str, launch_url: str, issuer: str, target: str):
        parts = urlsplit(login_url)
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=30
        )
        self.login_path = (
            parts.path
            + "?"
            + urlencode(
                {
                    "iss": issuer,
                    "login_hint": "3001",
                    "target_link_uri": target,
                    "client_id": CLIENT_ID,
                }
            )
        )
        self.launch_path = urlsplit(launch_url).path

    def login(self) -> tuple[str, str, str] | None:
        """Start a login; return its state, nonce and cookies, or None on failure."""
        self.connection.request("GET", self.login_path)
        response = self.connection.getresponse()
        response.read()
        self.last_status = response.status
        query = parse_qs(urlsplit(response.getheader("Location", "")).query)
        if response.status != 302 or "nonce" not in query:
            return None
        cookies = "; ".join(
            header.split(";", 1)[0]
            for header in response.headers.get_all("Set-Cookie", [])
        )
        return query["state"][0], query["nonce"][0], cookies

    def launch(self, body: bytes, cookies: str) -> int:
        self.connection.request(
            "POST",
            self.launch_path,
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookies,
            },
        )
        response = self.connection.getresponse()
        response.read()
        return response.status


def _signed_launch(key, issuer: str, target: str, login: tuple[str, str, str]):
    """Return the launch form body and cookies for one login, with a signed id_token."""
    import jwt

    state, nonce, cookies = login
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": issuer,
            "aud": CLIENT_ID,
            "sub": "3001",
            "iat": now,
            # Posted after the preparation and warm-up, so the token must outlive both.
            "exp": now + 300,
            "nonce": nonce,
            "name": "Bench Learner",
            CLAIM + "version": "1.3.0",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "deployment_id": DEPLOYMENT_ID,
            CLAIM + "target_link_uri": target,
            CLAIM + "resource_link": {"id": "bench-link"},
            CLAIM + "roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
            ],
            CLAIM + "context": {"id": "bench-course", "title": "Bench course"},
        },
        key,
        algorithm="RS256",
        headers={"kid": KID},
    )
    return urlencode({"id_token": token, "state": state}).encode(), cookies


def client_loop(
    login_url: str,
    launch_url: str,
    target: str,
    issuer: str,
    private_pem: bytes,
    prepare: int,
    ready: mp.Queue,
    go,
    window,
    results: mp.Queue,
) -> None:
    """Prepare signed launches, then run login-and-launch pairs in the timed window.

    Each timed iteration is one login and one launch, so the tool does a complete
    launch's work. The launch posts an id_token signed before timing for an earlier
    login, so no RSA signing runs in the clients while the tool is measured. The
    logins made while timing are signed only when the prepared ones run out, and
    that count is reported.
    """
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    tool = ToolConnection(login_url, launch_url, issuer, target)
    prepared: deque = deque()
    failed_logins = 0
    while len(prepared) < prepare:
        login = tool.login()
        if login is None:
            failed_logins += 1
            if failed_logins > 10:
                raise SystemExit(
                    f"logins to {login_url} failed {failed_logins} times, the last "
                    f"with HTTP status {tool.last_status}; check that the tool started"
                )
            continue
        prepared.append(_signed_launch(key, issuer, target, login))
    ready.put(os.getpid())
    go.wait()
    start_at, stop_at = window[0], window[1]

    latencies: list[float] = []
    errors = signed_while_timing = 0
    pending: deque = deque()
    cpu_at_start = None
    while time.time() < stop_at:
        if cpu_at_start is None and time.time() >= start_at:
            cpu_at_start = time.process_time()
        began = time.perf_counter()
        login = tool.login()
        if login is None:
            errors += 1
            continue
        pending.append(login)
        if not prepared:
            prepared.append(_signed_launch(key, issuer, target, pending.popleft()))
            signed_while_timing += 1
        status = tool.launch(*prepared.popleft())
        elapsed = time.perf_counter() - began
        if status not in (200, 302):
            errors += 1
            continue
        if time.time() >= start_at:
            latencies.append(elapsed)
    client_cpu = time.process_time() - (cpu_at_start or time.process_time())
    results.put((latencies, errors, signed_while_timing, client_cpu))


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds of a process and of its live child processes."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(child) for child in handle.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            total += cpu_seconds(child)
        except OSError:  # the child ended between the two reads
            pass
    return total


def measure(
    name,
    pid,
    login_url,
    launch_url,
    target,
    issuer,
    private_pem,
    clients,
    seconds,
    warmup,
    prepare,
):
    results: mp.Queue = mp.Queue()
    ready: mp.Queue = mp.Queue()
    go = mp.Event()
    window = mp.Array("d", 2)
    workers = [
        mp.Process(
            target=client_loop,
            args=(
                login_url,
                launch_url,
                target,
                issuer,
                private_pem,
                prepare,
                ready,
                go,
                window,
                results,
            ),
        )
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    waiting = len(workers)
    while waiting:
        try:
            ready.get(timeout=1)
            waiting -= 1
        except queue.Empty:
            if not all(worker.is_alive() for worker in workers):
                raise SystemExit(
                    f"{name}: a client stopped while preparing launches; see its "
                    "message above (a 429 means --launch-rate-limit is too low)"
                ) from None
    start_at = time.time() + warmup
    stop_at = start_at + seconds
    window[0], window[1] = start_at, stop_at
    go.set()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = cpu_seconds(pid)
    time.sleep(max(0.0, stop_at - time.time()))
    cpu_after = cpu_seconds(pid)
    latencies: list[float] = []
    errors = signed_while_timing = 0
    client_cpu = 0.0
    for _ in workers:
        batch, batch_errors, batch_signed, batch_cpu = results.get(timeout=120)
        latencies.extend(batch)
        errors += batch_errors
        signed_while_timing += batch_signed
        client_cpu += batch_cpu
    for worker in workers:
        worker.join()

    latencies.sort()
    count = len(latencies)
    if count == 0:
        raise SystemExit(f"{name}: no launch succeeded ({errors} errors)")
    return {
        "tool": name,
        "launches": count,
        "errors": errors,
        "launches_per_second": count / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000,
        "cpu_ms_per_launch": (cpu_after - cpu_before) / count * 1000,
        "client_cpu_ms_per_launch": client_cpu / count * 1000,
        "signed_while_timing": signed_while_timing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients",
        type=int,
        default=8,
        help="client processes running launches (default 8)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="measured seconds per tool (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before measuring (default 2)",
    )
    parser.add_argument(
        "--prepare",
        type=int,
        default=2000,
        help="launches each client signs before timing starts (default 2000)",
    )
    parser.add_argument(
        "--launch-rate-limit",
        type=int,
        default=10_000_000,
        help="login and launch requests per minute (and burst) the bridge allows "
        "from one address (default 10,000,000)",
    )
    add_server_arguments(parser, workers=2, threads=2)
    args = parser.parse_args()
    server = {"name": args.server, "workers": args.workers, "threads": args.threads}
    load_before = os.getloadavg()[0]

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = platform_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    platform_port, bridge_port, baseline_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{platform_port}"
    folder = tempfile.mkdtemp(prefix="lti-bench-")

    servers = [
        mp.Process(target=run_platform, args=(platform_port, private_pem), daemon=True),
        mp.Process(
            target=run_bridge,
            args=(server, bridge_port, issuer, folder, args.launch_rate_limit),
            # Granian's main process starts worker processes, which a daemon cannot.
            daemon=args.server == "waitress",
        ),
        mp.Process(
            target=run_baseline,
            args=(server, baseline_port, issuer),
            daemon=args.server == "waitress",
        ),
    ]
    for process in servers:
        process.start()
    try:
        wait_for(f"{issuer}/jwks")
        wait_for(f"http://127.0.0.1:{bridge_port}/health")
        wait_for(f"http://127.0.0.1:{baseline_port}/login")
        public_id = (Path(folder) / "bridge_registration").read_text()

        bridge_base = f"http://127.0.0.1:{bridge_port}/lti/{public_id}"
        baseline_base = f"http://127.0.0.1:{baseline_port}"
        rows = [
            measure(
                "pylti1p3",
                servers[2].pid,
                f"{baseline_base}/login",
                f"{baseline_base}/launch",
                f"{baseline_base}/launch",
                issuer,
                private_pem,
                args.clients,
                args.seconds,
                args.warmup,
                args.prepare,
            ),
            measure(
                "bridge",
                servers[1].pid,
                f"{bridge_base}/login",
                f"{bridge_base}/launch",
                f"{bridge_base}/launch",
                issuer,
                private_pem,
                args.clients,
                args.seconds,
                args.warmup,
                args.prepare,
            ),
        ]
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            process.join(timeout=10)

    print(
        f"{args.clients} client processes, {args.seconds:.0f} s measured per tool, "
        f"{describe_server(server)}, {os.cpu_count()} CPUs; bridge "
        f"launch rate limit {args.launch_rate_limit:,} per minute; load average "
        f"before {load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'tool':<10}{'launches/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/launch':>15}{'client CPU ms':>15}{'errors':>8}"
    )
    for row in rows:
        print(
            f"{row['tool']:<10}{row['launches_per_second']:>12.1f}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
            f"{row['cpu_ms_per_launch']:>15.2f}"
            f"{row['client_cpu_ms_per_launch']:>15.2f}{row['errors']:>8}"
        )
        if row["signed_while_timing"]:
            print(
                f"  {row['tool']}: {row['signed_while_timing']} launches were signed "
                "while timing; raise --prepare"
            )
    baseline, bridge = rows
    print(
        f"throughput ratio bridge/pylti1p3: "
        f"{bridge['launches_per_second'] / baseline['launches_per_second']:.2f}"
    )
    print(
        f"CPU per launch ratio bridge/pylti1p3: "
        f"{bridge['cpu_ms_per_launch'] / baseline['cpu_ms_per_launch']:.2f}"
    )
    print(f"p99 ratio bridge/pylti1p3: {bridge['p99_ms'] / baseline['p99_ms']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
