"""The serving loop: consume a micro-batch, handle it as a whole, produce, commit once acknowledged.

At-least-once, like :func:`helpers.streaming.stream.run_stream`, but the handler sees the whole
batch (so a model scores it in one vectorised call) and the client is pluggable
(:mod:`helpers.serving.transport`). The loop does not wait for a batch's acknowledgements before it
reads the next one (it waited ~1 ms per batch on an idle machine and 2-10 ms under load: 37-48 % of
the loop's time at 1,000 events/s, measured, while new events queued behind it); batches in flight
are retired **in order** as their outputs are acknowledged (at most ``max_in_flight`` of them). Offsets
are committed only once every output of their batch, and of every batch before it, was
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
from collections import Counter, OrderedDict, deque
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
    """Seconds spent in ``poll``, ``handle``, ``produce``, ``ack wait`` (blocked on the oldest batch in flight)
    and ``commit``."""

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
          on_batch: Callable[[LoopStats], None] | None = None, commit_interval_s: float = 0.2,
          max_in_flight: int = 16) -> LoopStats:
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
        max_in_flight: batches produced but not yet acknowledged before the loop waits for the oldest.
    """
    stats = LoopStats()
    started = last = time.monotonic()
    done: dict[tuple[str, int], int] = {}  # next offset of each partition whose outputs are acknowledged
    last_commit = 0.0
    committed: dict[tuple[str, int], int] = {}  # what the last commit stated
    in_flight: deque[tuple[int, dict[tuple[str, int], int]]] = deque()  # (ticket, batch's next offsets), in order

    def retire(wait: bool) -> None:
        """Move the oldest batches whose outputs are all acknowledged into ``done``, in order (``wait``: the oldest)."""
        while in_flight:
            ticket, offsets = in_flight[0]
            t = time.perf_counter()
            while wait and not transport.acked(ticket):  # raises DeliveryFailed: nothing after it is committed
                time.sleep(0.0005)
            stats.phase_s["ack wait"] += time.perf_counter() - t
            if not wait and not transport.acked(ticket):
                return
            in_flight.popleft()
            for tp, offset in offsets.items():
                done[tp] = max(done.get(tp, 0), offset)
            stats.batches += 1
            if on_batch is not None:
                on_batch(stats)
            wait = False

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
            batch = transport.poll_batch(budget, 0.1 if not in_flight else 0.001)
            t1 = time.perf_counter()
            stats.phase_s["poll"] += t1 - t0
            retire(wait=False)
            if batch:
                last = time.monotonic()
                stats.consumed += len(batch)
                outputs = list(handle(batch, stats))
                t2 = time.perf_counter()
                offsets: dict[tuple[str, int], int] = {}
                for m in batch:
                    offsets[(m.topic, m.partition)] = max(offsets.get((m.topic, m.partition), 0), m.offset + 1)
                in_flight.append((transport.send_batch(outputs), offsets))  # acknowledged later, in order
                stats.produced += len(outputs)
                stats.phase_s["handle"] += t2 - t1
                stats.phase_s["produce"] += time.perf_counter() - t2
                if len(in_flight) > max_in_flight:
                    retire(wait=True)
            elif not transport.assignment():  # still joining the group: the idle clock waits
                last = time.monotonic()
            t4 = time.perf_counter()
            if done != committed and t4 - last_commit >= commit_interval_s:
                # acknowledged offsets, at most every commit_interval_s; also when the input goes quiet,
                # or the group's lag would stay above 0 until the next batch
                committed = _owned(done, transport)
                transport.commit(committed, asynchronous=True)
                last_commit = t4
                stats.phase_s["commit"] += time.perf_counter() - t4
        transport.flush()  # raises DeliveryFailed: then the batches in flight are not committed
        retire(wait=True)
        transport.commit(_owned(done, transport), asynchronous=False)  # everything acknowledged, waited for
    finally:
        stats.seconds = time.monotonic() - started
        transport.close()
    return stats
