"""TODO docstring (from helpers/consumer_group.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

from helpers.kafka.clients import ADMIN_BOUNDS
from helpers.platform.config import kafka_bootstrap_servers


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
