"""The lock that lets one `hpass-bridge run` at a time serve an instance folder.

A second `run` on the same instance would start a second worker and scheduler and
overwrite `run-base-url`, so later commands would print the address of whichever
started last. `run` takes an exclusive `flock` on `<instance>/run.lock` and keeps it
for the life of its process. The kernel releases the lock when the process ends in
any way, SIGKILL included, so a file left by a killed `run` blocks nothing. The file
also records the holder's pid and address, which the rejected `run` reports.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

RUN_LOCK_FILE = "run.lock"


class InstanceInUse(RuntimeError):
    """Another running process holds the instance's run lock."""

    def __init__(self, instance: Path, pid: int | None, url: str | None) -> None:
        self.instance = instance
        self.pid = pid
        self.url = url
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        if url is not None:
            holder += f", serving {url}"
        super().__init__(
            f"the instance folder {instance} is already in use by another "
            f"`hpass-bridge run` ({holder}); stop that one first, or run this one on "
            "another instance folder with HPASS_INSTANCE_PATH"
        )


def hold_run_lock(instance: Path, url: str) -> IO[str]:
    """Lock the instance for this process and record its pid and URL in the lock file.

    Returns the open lock file, which the caller keeps open for as long as it runs.
    Raises InstanceInUse with the holder's pid and URL when another process has it.
    """
    path = instance / RUN_LOCK_FILE
    # Opened without truncating, so a rejected caller does not erase the holder's
    # record before reading it.
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lock_file = os.fdopen(descriptor, "r+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(lock_file)
        lock_file.close()
        raise InstanceInUse(instance, holder.get("pid"), holder.get("url")) from None

    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
    lock_file.flush()
    return lock_file


def current_holder(instance: Path) -> InstanceInUse | None:
    """Return who holds the instance's run lock, or None when no process does.

    Creates nothing: a missing lock file means no `run` has served the folder.
    """
    try:
        descriptor = os.open(instance / RUN_LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    with os.fdopen(descriptor, "r") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(lock_file)
            return InstanceInUse(instance, holder.get("pid"), holder.get("url"))
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    return None


def _read_holder(lock_file: IO[str]) -> dict:
    # The holder writes its record just after it takes the lock, so the file may
    # still be empty in that moment.
    try:
        lock_file.seek(0)
        record = json.loads(lock_file.read() or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    pid = record.get("pid")
    url = record.get("url")
    return {
        "pid": pid if isinstance(pid, int) else None,
        "url": url if isinstance(url, str) else None,
    }
