"""A consumer-group scenario on the live broker: send at a fixed rate while members start, stop and die.

:func:`run_scenario` plays a schedule ("start w2 at 3 s, kill w1 at 8 s, ...") while
:func:`produce_at_rate` sends, waits until every event is processed, and returns a :class:`ScenarioRun`
for a chart (:func:`helpers.viz.plot_scenario`) and an audit (lost or duplicated events).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from helpers.kafka.clients import PRODUCER_BOUNDS, Record, read_topic, require_broker
from helpers.platform.config import kafka_bootstrap_servers
from helpers.streaming.group import ConsumerGroup
from helpers.streaming.monitor import GroupMonitor


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
