"""Background processes of the embedded services: found by their command line, started once, stopped cleanly.

The Kafka broker and the events API run in the background and survive notebook restarts. Each is found
again by markers in its command line (a path inside its own state folder), so a lost or stale pid file
never leaves an orphan, and two notebooks starting one at the same moment get one (:func:`start_lock`).
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def find_process(*markers: str) -> int | None:
    """Return the pid of a running process whose command line holds every one of ``markers``, or None."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if all(marker in cmdline for marker in markers):
            return int(proc.info["pid"])
    return None


@contextmanager
def start_lock(folder: Path) -> Iterator[None]:
    """Hold ``<folder>/start.lock`` (created) while a service is checked and started."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def tail(path: Path, lines: int = 25) -> str:
    """Return the last ``lines`` lines of a log (what to show when a service will not start)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def stop_process(find: Callable[[], int | None], timeout: float, poll_s: float = 0.2) -> bool:
    """Stop the process ``find()`` returns: SIGTERM, then SIGKILL after ``timeout``; False if none ran."""
    pid = find()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and find() is not None:
        time.sleep(poll_s)
    if find() is not None:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and find() is not None:
            time.sleep(0.1)
    return True
