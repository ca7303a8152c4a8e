"""Real consumer-group members: one process each, started, stopped (SIGTERM) and killed (SIGKILL) by name.

``python -m helpers.streaming.group --topic T --group G --out O --dlq D --name w1`` is one member:
:func:`helpers.streaming.stream.run_stream` in its own process (commit after processing), named ``w1``
in the group (its ``client_id``). A member's processing function is ``module:function`` taking the raw
value and returning ``[(key, value), ...]`` (default :func:`echo_event`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from helpers.platform.config import REPO_ROOT, state_dir
from helpers.streaming.stream import run_stream

WORKER_SESSION_TIMEOUT_MS = 6_000  # a killed member's partitions move on after about this long


def echo_event(raw: bytes) -> list[tuple[str | None, dict]]:
    """The default member work: decode the event, wait ``WORKER_WORK_MS``, report who processed it."""
    event = json.loads(raw)
    work_ms = float(os.environ.get("WORKER_WORK_MS", "0"))
    if work_ms:
        time.sleep(work_ms / 1000)
    return [(str(event.get("user_id")), {"event_id": event.get("event_id"),
                                         "worker": os.environ.get("WORKER_NAME", "?"), "pid": os.getpid()})]


def _load(spec: str) -> Callable[[bytes], Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def worker_main(argv: list[str] | None = None) -> int:
    """One consumer-group member (the subprocess :class:`ConsumerGroup` starts)."""
    parser = argparse.ArgumentParser(description="One consumer-group member.")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dlq", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--process", default="helpers.streaming.group:echo_event")
    parser.add_argument("--max-poll-records", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    os.environ["WORKER_NAME"] = args.name
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = run_stream(_load(args.process), args.topic, group_id=args.group, sink_topic=args.out,
                       dlq_topic=args.dlq, idle_timeout_s=args.max_seconds, max_seconds=args.max_seconds,
                       stop=stop, max_poll_records=args.max_poll_records,
                       consumer_config={"client_id": args.name, "session_timeout_ms": WORKER_SESSION_TIMEOUT_MS,
                                        "heartbeat_interval_ms": 1_000})
    print(f"{args.name}: {stats}", flush=True)
    return 0


class ConsumerGroup:
    """Members of one consumer group, each a separate Python process, managed by name.

    Use it as a context manager: every member still running is stopped on exit.
    """

    def __init__(self, topic: str, group_id: str, out_topic: str, dlq_topic: str, *, work_ms: float = 0.0,
                 process: str = "helpers.streaming.group:echo_event", max_poll_records: int = 20) -> None:
        self.topic, self.group_id, self.out_topic, self.dlq_topic = topic, group_id, out_topic, dlq_topic
        self.work_ms, self.process, self.max_poll_records = work_ms, process, max_poll_records
        self.members: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}
        self.log_dir = state_dir() / "streaming" / group_id
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> int:
        """Start member ``name`` (a new process) and return its pid."""
        if name in self.members and self.members[name].poll() is None:
            raise ValueError(f"member {name} is already running")
        self.starts[name] = self.starts.get(name, 0) + 1
        label = name if self.starts[name] == 1 else f"{name}#{self.starts[name]}"  # a restart is a new member
        env = {**os.environ, "WORKER_WORK_MS": str(self.work_ms)}
        cmd = [sys.executable, "-m", "helpers.streaming.group", "--topic", self.topic, "--group", self.group_id,
               "--out", self.out_topic, "--dlq", self.dlq_topic, "--name", label, "--process", self.process,
               "--max-poll-records", str(self.max_poll_records)]
        with open(self.log_dir / f"{name}.log", "ab") as log:  # one log per name, restarts appended
            self.members[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
        return self.members[name].pid

    def kill(self, name: str) -> None:
        """SIGKILL member ``name``: no goodbye, no last commit (what a crash looks like)."""
        proc = self.members[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str, timeout: float = 20.0) -> int | None:
        """SIGTERM member ``name`` and wait: it commits what it processed and leaves the group."""
        proc = self.members[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def alive(self) -> list[str]:
        """Names of the members whose process is running."""
        return [name for name, proc in self.members.items() if proc.poll() is None]

    def log(self, name: str) -> str:
        """The member's stdout and stderr so far."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop every running member."""
        for name in self.alive():
            self.stop(name)

    def __enter__(self) -> ConsumerGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    raise SystemExit(worker_main())
