"""The serving loop: consume a micro-batch, handle it as a whole, produce, flush, then commit.

At-least-once, like :func:`helpers.streaming.stream.run_stream`, but the handler sees the whole
batch (so a model scores it in one vectorised call) and the client is pluggable
(:mod:`helpers.serving.transport`). Offsets are committed only once every output of their batch was
acknowledged, asynchronously and at most every ``commit_interval_s`` (one commit per batch, ~100/s at
1,000 events/s, queued up on the group coordinator's connection in front of the heartbeats: the
member's session timed out and its group rebalanced for ~20 s, measured), and when the input goes
quiet (so the group's lag reaches 0 without waiting for the next batch); the last commit is
synchronous, on a clean stop. A crash repeats what was not committed yet: the stages drop what they
already emitted (dedupe by event id).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from helpers.serving.transport import Headers, Message, Transport

Out = tuple[str, bytes | None, bytes, Headers | None]
"""What a handler emits: ``(topic, key, value, headers)``."""


@dataclass
class LoopStats:
    """What one :func:`serve` call did (``reasons``: dead-lettered messages by reason)."""

    consumed: int = 0
    produced: int = 0
    duplicates: int = 0
    batches: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    phase_s: Counter = field(default_factory=Counter)
    """Seconds spent in ``poll``, ``handle``, ``produce``, ``flush`` (waiting for acks) and ``commit``."""

    def __str__(self) -> str:
        rate = self.consumed / self.seconds if self.seconds else 0.0
        return (f"consumed {self.consumed:,}, produced {self.produced:,}, duplicates skipped {self.duplicates:,}, "
                f"dead-lettered {sum(self.reasons.values()):,} {dict(self.reasons)}, {self.batches:,} batches, "
                f"{self.seconds:.1f} s ({rate:,.0f} msg/s); time in " +
                ", ".join(f"{k} {v:.1f} s" for k, v in self.phase_s.items()))


class SeenIds:
    """The event ids handled lately (bounded, oldest forgotten first): the idempotent consumer's memory."""

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, event_id: Hashable) -> bool:
        """Remember ``event_id``; return False if it was already there (a duplicate)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, event_id: Hashable) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self):  # noqa: ANN204 - oldest first
        return iter(self._ids)


def _owned(done: dict[tuple[str, int], int], transport: Transport) -> dict[tuple[str, int], int]:
    """The offsets of the partitions this member still owns (a rebalance may have moved the others)."""
    owned = set(transport.assignment())
    for tp in [tp for tp in done if tp not in owned]:
        del done[tp]
    return dict(done)


def serve(transport: Transport, handle: Callable[[list[Message], LoopStats], Iterable[Out]], *,
          max_records: int = 500, idle_timeout_s: float | None = None, max_seconds: float | None = None,
          max_messages: int | None = None, stop: threading.Event | None = None,
          on_batch: Callable[[LoopStats], None] | None = None, commit_interval_s: float = 0.2) -> LoopStats:
    """Run ``handle`` over micro-batches until stopped, idle, or out of time; return the stats.

    Args:
        transport: the client (closed on return).
        handle: ``handle(messages, stats) -> [(topic, key, value, headers), ...]`` for one batch.
        max_records: the largest batch.
        idle_timeout_s: stop when nothing arrived for this long once partitions are assigned (None: never).
        max_seconds: stop after this long (None: never).
        max_messages: stop after this many input messages.
        stop: stop when set (a SIGTERM handler sets it).
        on_batch: called after each acknowledged batch (a hook for metrics).
        commit_interval_s: the least time between two commits.
    """
    stats = LoopStats()
    started = last = time.monotonic()
    done: dict[tuple[str, int], int] = {}  # next offset of each partition whose outputs are acknowledged
    last_commit = 0.0
    committed: dict[tuple[str, int], int] = {}  # what the last commit stated
    try:
        while not (stop is not None and stop.is_set()):
            now = time.monotonic()
            if max_seconds is not None and now - started > max_seconds:
                break
            if idle_timeout_s is not None and now - last > idle_timeout_s:
                break
            if max_messages is not None and stats.consumed >= max_messages:
                break
            budget = max_records if max_messages is None else min(max_records, max_messages - stats.consumed)
            t0 = time.perf_counter()
            batch = transport.poll_batch(budget, 0.1)
            t1 = time.perf_counter()
            stats.phase_s["poll"] += t1 - t0
            if not batch:
                if not transport.assignment():  # still joining the group: the idle clock waits
                    last = time.monotonic()
                elif done != committed and t1 - last_commit >= commit_interval_s:
                    # idle with acknowledged offsets not committed yet (the last batches came within the
                    # interval): commit them now, or the group's lag would stay above 0 until the next batch
                    committed = _owned(done, transport)
                    transport.commit(committed, asynchronous=True)
                    last_commit = t1
                continue
            last = time.monotonic()
            stats.consumed += len(batch)
            outputs = list(handle(batch, stats))
            t2 = time.perf_counter()
            for topic, key, value, headers in outputs:
                transport.produce(topic, key, value, headers)
            stats.produced += len(outputs)
            t3 = time.perf_counter()
            transport.flush()  # raises DeliveryFailed: then nothing of this batch is committed
            t4 = time.perf_counter()
            for m in batch:
                done[(m.topic, m.partition)] = max(done.get((m.topic, m.partition), 0), m.offset + 1)
            if t4 - last_commit >= commit_interval_s:
                committed = _owned(done, transport)
                transport.commit(committed, asynchronous=True)
                last_commit = t4
            t5 = time.perf_counter()
            for phase, seconds in (("handle", t2 - t1), ("produce", t3 - t2), ("flush", t4 - t3), ("commit", t5 - t4)):
                stats.phase_s[phase] += seconds
            stats.batches += 1
            if on_batch is not None:
                on_batch(stats)
        transport.commit(_owned(done, transport), asynchronous=False)  # everything acknowledged, waited for
    finally:
        stats.seconds = time.monotonic() - started
        transport.close()
    return stats
