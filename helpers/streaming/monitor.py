"""Watch a consumer group from a thread: lag per partition and which member owns which partition."""

from __future__ import annotations

import threading
import time
from typing import Any

from helpers.kafka.admin import admin_client, consumer_lag, describe_group


class GroupMonitor:
    """Sample a group's lag per partition and its partition assignment every ``interval_s`` (a thread)."""

    def __init__(self, group_id: str, topic: str, interval_s: float = 0.5) -> None:
        self.group_id, self.topic, self.interval_s = group_id, topic, interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()

    def sample(self, admin: Any = None) -> dict[str, Any]:
        """Take one sample (with ``admin`` if given): ``{"t", "lag": {p: n}, "owners": {p: member}, "state"}``."""
        lag = consumer_lag(self.group_id, self.topic, admin)
        group = describe_group(self.group_id, admin, topic=self.topic)
        owners = {p: member for member, parts in group["members"].items() for p in parts}
        return {"t": time.monotonic() - self.t0, "lag": lag, "owners": owners, "state": group["state"]}

    def _run(self) -> None:
        from kafka.errors import KafkaError

        admin = admin_client()
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
