"""Consumer-group scaling on a live broker: real consumer processes that join, leave and get killed.

- ``python -m helpers.consumer_group --topic T --group G --out O --dlq D --name w1`` is one member:
  :func:`helpers.streaming.run_stream` in its own process (commit after processing), named ``w1`` in
  the group (its ``client_id``), stopping cleanly on SIGTERM.
- :class:`ConsumerGroup` starts, stops (SIGTERM) and kills (SIGKILL) such members by name.
- :class:`GroupMonitor` samples, from the admin client, the group's lag per partition and which member
  owns which partition, a few times a second, in a background thread.
- :func:`run_scenario` plays a schedule ("start w2 at 3 s, kill w1 at 8 s, ...") while a producer sends
  at a fixed rate, waits until every event is processed, and returns everything for a chart
  (:func:`plot_scenario`) and an audit.

A member's processing function is ``module:function`` taking the raw value and returning
``[(key, value), ...]`` like ``run_stream``'s (default :func:`echo_event`).
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.config import REPO_ROOT, kafka_bootstrap_servers, state_dir
from helpers.streaming import ADMIN_BOUNDS, PRODUCER_BOUNDS, Record, read_topic, require_broker, run_stream

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
    parser.add_argument("--process", default="helpers.consumer_group:echo_event")
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
                 process: str = "helpers.consumer_group:echo_event", max_poll_records: int = 20) -> None:
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
        env = {**os.environ, "WORKER_WORK_MS": str(self.work_ms),
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        cmd = [sys.executable, "-m", "helpers.consumer_group", "--topic", self.topic, "--group", self.group_id,
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


class GroupMonitor:
    """Sample a group's lag per partition and its partition assignment every ``interval_s`` (a thread)."""

    def __init__(self, group_id: str, topic: str, interval_s: float = 0.5) -> None:
        self.group_id, self.topic, self.interval_s = group_id, topic, interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()

    def sample(self, admin: Any) -> dict[str, Any]:
        """Take one sample with ``admin``: ``{"t", "lag": {p: n}, "owners": {p: member}}``."""
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        parts = [p["partition_index"] for t in admin.describe_topics([self.topic]) for p in t["partitions"]]
        ends = admin.list_partition_offsets({TopicPartition(self.topic, p): OffsetSpec.LATEST for p in parts})
        done = admin.list_group_offsets({self.group_id: None}).get(self.group_id, {})
        committed = {tp.partition: m.offset for tp, m in done.items() if tp.topic == self.topic and m.offset >= 0}
        lag = {tp.partition: max(0, info.offset - committed.get(tp.partition, 0)) for tp, info in ends.items()}
        owners: dict[int, str] = {}
        group = admin.describe_groups([self.group_id]).get(self.group_id, {})
        for member in group.get("members", []) or []:
            for assigned in (member.get("member_assignment") or {}).get("assigned_partitions", []):
                if assigned["topic"] == self.topic:
                    for p in assigned["partitions"]:
                        owners[p] = member["client_id"]
        return {"t": time.monotonic() - self.t0, "lag": dict(sorted(lag.items())), "owners": owners,
                "state": group.get("group_state")}

    def _run(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers(), **ADMIN_BOUNDS)
        try:
            while not self._stop.is_set():
                try:
                    self.samples.append(self.sample(admin))
                except KafkaError:  # a group in the middle of a rebalance: try again next tick
                    pass
                self._stop.wait(self.interval_s)
        finally:
            admin.close()

    def start(self) -> GroupMonitor:
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="group-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def total_lag(self) -> int | None:
        """The latest sample's total lag (None before the first sample)."""
        return sum(self.samples[-1]["lag"].values()) if self.samples else None


def produce_at_rate(topic: str, records: Iterable[dict], rate: float, *, key_field: str | None = "user_id",
                    stamp_field: str | None = None, stop: threading.Event | None = None) -> list[float]:
    """Send ``records`` as JSON at ``rate`` per second (each at its intended time), flush, close.

    Args:
        topic: destination topic.
        records: JSON-serialisable dicts (sent in order).
        rate: messages per second.
        key_field: the field whose ``str`` is the key (same key, same partition); None: no key.
        stamp_field: if given, each record gets its **intended** send time (epoch seconds) there, so a
            consumer can measure latency without coordinated omission.
        stop: end early when set.

    Returns:
        The intended send time (epoch seconds) of each record sent.
    """
    from kafka import KafkaProducer

    require_broker()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap_servers(), acks="all", enable_idempotence=True,
                             linger_ms=0, **PRODUCER_BOUNDS)
    intended: list[float] = []
    start = time.time() + 0.05
    try:
        for i, record in enumerate(records):
            if stop is not None and stop.is_set():
                break
            at = start + i / rate
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            if stamp_field:
                record = {**record, stamp_field: at}
            key = str(record[key_field]).encode() if key_field else None
            producer.send(topic, key=key, value=json.dumps(record, default=str).encode())
            intended.append(at)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return intended


@dataclass
class ScenarioRun:
    """What :func:`run_scenario` saw: actions, monitor samples, outputs, and the members' logs."""

    sent: int
    actions: list[tuple[float, str, str]]
    samples: list[dict[str, Any]]
    outputs: list[Record]
    logs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def per_worker(self) -> dict[str, int]:
        """Output messages per member (duplicates included)."""
        counts: dict[str, int] = {}
        for rec in self.outputs:
            name = rec.value.get("worker", "?") if isinstance(rec.value, dict) else "?"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))


def run_scenario(group: ConsumerGroup, records: list[dict], rate: float,
                 schedule: list[tuple[float, str, str]], *, drain_timeout_s: float = 60.0,
                 await_timeout_s: float = 30.0,
                 monitor_interval_s: float = 0.5, progress: bool = True) -> ScenarioRun:
    """Produce ``records`` at ``rate``/s while playing ``schedule`` on ``group``; wait until all is processed.

    Args:
        group: the members' runner (its topics must exist).
        records: events to send (keyed by ``user_id``).
        rate: events per second.
        schedule: ``[(seconds after start, "start" | "stop" | "kill" | "await", member name), ...]``;
            ``"await"`` waits until the member owns a partition (a restarted member is ``name#2``).
        drain_timeout_s: after the producer finished, how long to wait for the lag to reach 0.
        await_timeout_s: the longest an ``"await"`` step waits.
        monitor_interval_s: lag/assignment sampling period.
        progress: show a tqdm bar of the lag draining.

    Returns:
        A :class:`ScenarioRun`; every member is stopped (SIGTERM) before it returns.
    """
    from tqdm.auto import tqdm

    monitor = GroupMonitor(group.group_id, group.topic, monitor_interval_s).start()
    producer = threading.Thread(target=produce_at_rate, args=(group.topic, records, rate), daemon=True)
    actions: list[tuple[float, str, str]] = []
    t0 = monitor.t0
    producer.start()
    try:
        todo = sorted(schedule)
        bar = tqdm(total=len(todo), desc="scenario steps", disable=not progress)
        for at, action, name in todo:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            if action == "await":  # wait (bounded) until that member owns partitions: the next step hits it mid-work
                deadline = time.monotonic() + await_timeout_s
                while time.monotonic() < deadline and name not in (monitor.samples[-1]["owners"].values()
                                                                   if monitor.samples else ()):
                    time.sleep(0.1)
            else:
                getattr(group, action)(name)
                actions.append((time.monotonic() - t0, action, name))
            bar.update()
        bar.close()
        producer.join(timeout=len(records) / rate + 30)
        deadline = time.monotonic() + drain_timeout_s
        time.sleep(2 * monitor_interval_s)
        while time.monotonic() < deadline and (monitor.total_lag() or 0) > 0:
            time.sleep(monitor_interval_s)
        time.sleep(2 * monitor_interval_s)  # one more sample at lag 0 for the chart
    finally:
        monitor.stop()
        group.close()
    outputs = read_topic(group.out_topic, idle_timeout_s=2.0)
    return ScenarioRun(len(records), actions, monitor.samples, outputs,
                       {name: group.log(name) for name in group.members}, time.monotonic() - t0)


def plot_scenario(run: ScenarioRun, title: str = "Consumer group: lag and partition owners") -> Any:
    """Draw lag over time (top) and which member owned each partition (bottom), with the actions marked."""
    import matplotlib.pyplot as plt

    fig, (ax_lag, ax_own) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [1.2, 1]})
    times = [s["t"] for s in run.samples]
    parts = sorted({p for s in run.samples for p in s["lag"]})
    ax_lag.stackplot(times, [[s["lag"].get(p, 0) for s in run.samples] for p in parts],
                     labels=[f"partition {p}" for p in parts], alpha=0.8)
    ax_lag.set_ylabel("lag (messages)")
    ax_lag.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    names = sorted({o for s in run.samples for o in s["owners"].values()})
    colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(names)}
    for p in parts:
        for a, b in zip(run.samples, run.samples[1:]):
            owner = a["owners"].get(p)
            if owner:
                ax_own.plot([a["t"], b["t"]], [p, p], color=colours[owner], linewidth=8, solid_capstyle="butt")
    for name in names:
        ax_own.plot([], [], color=colours[name], linewidth=8, label=name)
    ax_own.set_yticks(parts)
    ax_own.set_ylabel("partition")
    ax_own.set_xlabel("seconds since start")
    ax_own.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, title="member")
    for at, action, name in run.actions:
        for ax in (ax_lag, ax_own):
            ax.axvline(at, color="red" if action == "kill" else "grey", linestyle="--", linewidth=1)
        ax_lag.annotate(f"{action} {name}", (at, ax_lag.get_ylim()[1] * 0.9), rotation=90, fontsize=8,
                        va="top", ha="right")
    ax_lag.set_title(title)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    raise SystemExit(worker_main())
