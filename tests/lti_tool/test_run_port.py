"""`hpass-bridge run` binds its port before it writes anything in the instance
folder, so a run that cannot listen leaves no lock, URL or demo rows naming that
port behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

START_SECONDS = 90


def test_busy_port_leaves_instance_empty(tmp_path):
    """`run --demo` on a port another program listens on exits 1 with the
    cannot-listen message and writes nothing in the instance folder."""
    instance = tmp_path / "instance"
    instance.mkdir()
    env = {
        **os.environ,
        "HPASS_INSTANCE_PATH": str(instance),
        "HPASS_PUBLIC_BASE_URL": "",
    }
    # The database must be in the instance folder, so an empty folder means no
    # demo rows were seeded.
    env.pop("HPASS_DATABASE_URL", None)
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        # The command is this Python running lti_tool with fixed options.
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "lti_tool", "run", "--demo", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )

    assert result.returncode == 1, result.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "choose another with --port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in instance.iterdir()) == []
