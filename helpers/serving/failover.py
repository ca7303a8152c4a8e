"""The fail-over drill: write with ``acks=all`` to one partition, SIGKILL its leader mid-stream, audit.

:func:`failover_drill` sends numbered records at a fixed rate to one partition of a replicated topic,
kills that partition's leader after ``kill_at_s``, keeps sending, then reads the partition back: every
record the cluster acknowledged must be there (``lost`` is empty), and the longest time without an
acknowledgement after the kill is the fail-over pause a producer sees.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FailoverResult:
    """What the drill saw (times in seconds)."""

    sent: int
    acked: int
    failed: int
    lost: list[int]
    duplicates: int
    killed_leader: int
    new_leader: int
    pause_s: float
    isr_after: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"sent {self.sent:,}, acknowledged {self.acked:,}, failed {self.failed:,}, lost after ack "
                f"{len(self.lost):,}, duplicates {self.duplicates:,}; leader {self.killed_leader} killed -> "
                f"{self.new_leader}, ISR now {self.isr_after}; longest pause without an ack {self.pause_s:.2f} s")


def failover_drill(bootstrap: str, topic: str, kill: Callable[[int], None], leaders: Callable[[], list[dict]], *,
                   partition: int = 0, rate: float = 500.0, seconds: float = 8.0, kill_at_s: float = 2.0) -> FailoverResult:
    """Run the drill (see the module's docstring).

    Args:
        bootstrap: the cluster's bootstrap servers.
        topic: an existing topic with replication factor 3 and ``min.insync.replicas=2``.
        kill: ``kill(node_id)``: SIGKILL that node (:func:`helpers.platform.kafka_cluster.kill_node`).
        leaders: returns the topic's partitions (:func:`helpers.platform.kafka_cluster.partitions`).
        partition: the busy partition.
        rate, seconds: the send schedule.
        kill_at_s: when the leader is killed.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    acks: dict[int, float] = {}
    errors: list[str] = []

    def delivered(err: object, msg: object) -> None:
        if err is None:
            acks[int(msg.value())] = time.monotonic()  # type: ignore[attr-defined]
        else:
            errors.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                         "message.timeout.ms": 60_000, "log_level": 2})
    killed = {"node": -1, "at": 0.0}

    def killer() -> None:
        time.sleep(kill_at_s)
        node = next(p["leader"] for p in leaders() if p["partition"] == partition)
        killed.update(node=node, at=time.monotonic())
        kill(node)

    thread = threading.Thread(target=killer, daemon=True)
    n = int(rate * seconds)
    start = time.monotonic()
    thread.start()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, value=str(i).encode(), partition=partition, on_delivery=delivered)
        producer.poll(0)
    producer.flush(90)
    thread.join(timeout=30)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"drill-{topic}", "enable.auto.commit": False,
                         "enable.partition.eof": True, "log_level": 2})
    consumer.assign([TopicPartition(topic, partition, 0)])
    read: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            msgs = consumer.consume(1000, 1.0)
            if any(m.error() and m.error().code() == -191 for m in msgs):  # _PARTITION_EOF
                read += [int(m.value()) for m in msgs if not m.error()]
                break
            read += [int(m.value()) for m in msgs if not m.error()]
    finally:
        consumer.close()
    after = sorted(t for t in acks.values() if t >= killed["at"])
    gaps = [b - a for a, b in zip([killed["at"], *after], after)]
    state = next(p for p in leaders() if p["partition"] == partition)
    return FailoverResult(n, len(acks), len(errors), sorted(set(acks) - set(read)), len(read) - len(set(read)),
                          killed["node"], state["leader"], max(gaps, default=float("nan")), state["isr"], errors[:5])
