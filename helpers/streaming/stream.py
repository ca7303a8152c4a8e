"""The bounded stream loop: consume, process, produce, commit after each batch; poison goes to a DLQ.

:func:`run_stream` is at-least-once: outputs are acknowledged before their input's offset is
committed. A message that ``process`` cannot handle (:class:`PoisonMessage`, any exception, or
outputs that are not ``(str key, value)`` pairs) goes unchanged to the dead-letter topic with its
reason in the headers; the loop goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from helpers.kafka.clients import CONSUMER_BOUNDS, PRODUCER_BOUNDS, require_broker
from helpers.platform.config import kafka_bootstrap_servers
from helpers.streaming.metrics import StreamMetrics

LOW_LATENCY_CONSUMER: dict[str, Any] = {"fetch_max_wait_ms": 10}
"""Consumer settings of the stream loop: the broker answers a fetch after 10 ms even when nothing new
arrived (kafka-python's default, 500 ms, holds every message of a quiet partition up to half a second:
measured 16.5 -> 7.6 ms p50 for one hop at 1,000 events/s, see ``benchmarks/streaming.py``)."""

Output = tuple[str | None, Any]
"""What a processing function emits: ``(key, JSON-serialisable value)``."""


class PoisonMessage(ValueError):
    """A message that can never be processed: it belongs in the dead-letter queue, not in a retry.

    Args:
        reason: a short machine-readable category (``"bad_json"``, ``"missing_field"``, ``"late"``...).
        detail: a human-readable explanation.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(RuntimeError):
    """A failure that may go away if tried again (a timeout, a busy downstream service)."""


# ------------------------------------------------------------------------------ DLQ and the loop
def dlq_headers(reason: str, detail: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Return the headers a dead-lettered message carries (what failed, and where it came from)."""
    return [("reason", reason.encode()), ("detail", detail[:500].encode()), ("original_topic", topic.encode()),
            ("original_partition", str(partition).encode()), ("original_offset", str(offset).encode())]


@dataclass
class StreamStats:
    """What one :func:`run_stream` call did."""

    consumed: int = 0
    emitted: int = 0
    dead_lettered: int = 0
    reasons: Counter = field(default_factory=Counter)
    commits: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        rate = self.consumed / self.seconds if self.seconds else 0.0
        why = ", ".join(f"{k}: {v}" for k, v in self.reasons.most_common()) or "none"
        return (f"consumed {self.consumed:,}, emitted {self.emitted:,}, dead-lettered {self.dead_lettered:,} "
                f"({why}), {self.commits} commits, {self.seconds:.1f} s ({rate:,.0f} msg/s)")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


class BadOutput(TypeError):
    """``process`` returned something that is not a list of ``(str or None key, value)`` pairs."""


def _payloads(outputs: Iterable[Any]) -> list[tuple[bytes | None, bytes]]:
    """Encode ``process``'s outputs, or raise :class:`BadOutput` naming the first bad one."""
    payloads = []
    for output in outputs:
        if not (isinstance(output, tuple) and len(output) == 2):
            raise BadOutput(f"expected (key, value) pairs, got {output!r:.80}")
        key, value = output
        if key is not None and not isinstance(key, str):
            raise BadOutput(f"an output key must be a str or None, got {type(key).__name__} {key!r:.40}; "
                            "use str(...) on it")
        payloads.append((key.encode() if key is not None else None, _json_bytes(value)))
    return payloads


def run_stream(process: Callable[[bytes], Iterable[Output] | None], source_topic: str, *, group_id: str,
               sink_topic: str, dlq_topic: str, metrics: StreamMetrics | None = None,
               max_messages: int | None = None, idle_timeout_s: float = 3.0, max_seconds: float = 120.0,
               stop: threading.Event | None = None, max_poll_records: int = 500,
               producer_config: dict[str, Any] | None = None,
               consumer_config: dict[str, Any] | None = None) -> StreamStats:
    """Consume ``source_topic`` in ``group_id``, apply ``process`` to each raw value, produce its outputs.

    At-least-once: after each polled batch the outputs are flushed and every send acknowledged, then
    the batch's offsets are committed. ``PoisonMessage`` (and any other exception ``process`` raises
    for one message) sends that message, unchanged, to ``dlq_topic`` with the reason in its headers.

    Args:
        process: ``process(raw_value) -> [(key, value), ...]`` (``None`` or ``[]``: emit nothing).
        source_topic: the input topic.
        group_id: the consumer group (offsets are committed there).
        sink_topic: where the outputs go (JSON values, string keys).
        dlq_topic: the dead-letter topic.
        metrics: a :class:`StreamMetrics` to update (optional).
        max_messages: stop after this many input messages.
        idle_timeout_s: stop when nothing arrived for this long once partitions are assigned (joining
            the group, seconds on a busy machine, does not count; ``max_seconds`` still bounds it).
        max_seconds: stop after this long in any case (a bound, not a target).
        stop: stop when this event is set (another thread's way to end the loop).
        max_poll_records: batch size: one flush and one commit per batch.
        producer_config: overrides for the output producer (e.g. ``linger_ms``).
        consumer_config: overrides for the consumer (e.g. ``client_id``, ``session_timeout_ms``).

    Returns:
        A :class:`StreamStats`.

    Raises:
        BrokerUnavailable: at once, with the doctor's hint, when no broker answers.
    """
    from kafka import KafkaConsumer, KafkaProducer

    require_broker()  # a missing broker fails here, in seconds, with the doctor's hint
    stats = StreamStats()
    started = time.monotonic()
    consumer = KafkaConsumer(source_topic, bootstrap_servers=kafka_bootstrap_servers(), group_id=group_id,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=max_poll_records,
                             **{**CONSUMER_BOUNDS, **LOW_LATENCY_CONSUMER, **(consumer_config or {})})
    try:
        producer = KafkaProducer(**{"bootstrap_servers": kafka_bootstrap_servers(), "acks": "all",
                                    "enable_idempotence": True, "linger_ms": 0, **PRODUCER_BOUNDS,
                                    **(producer_config or {})})
    except Exception:
        consumer.close()
        raise
    try:
        last_message = time.monotonic()
        while not (stop is not None and stop.is_set()):
            now = time.monotonic()
            if now - started > max_seconds or now - last_message > idle_timeout_s:
                break
            if max_messages is not None and stats.consumed >= max_messages:
                break
            budget = None if max_messages is None else max_messages - stats.consumed
            batch = consumer.poll(timeout_ms=100, max_records=budget)
            if not batch:
                if not consumer.assignment():  # still joining the group: the idle clock has not started
                    last_message = time.monotonic()
                continue
            last_message = time.monotonic()
            futures = []
            for messages in batch.values():
                for msg in messages:
                    futures += _process_one(process, msg, producer, sink_topic, dlq_topic, stats, metrics)
            producer.flush(timeout=PRODUCER_BOUNDS["delivery_timeout_ms"] / 1000)
            for future in futures:  # every output and DLQ record acknowledged, or we stop before committing
                future.get(timeout=PRODUCER_BOUNDS["request_timeout_ms"] / 1000)
            # The batch's outputs are acknowledged: its offsets may be committed now. Asynchronously, so
            # the next batch is not held up by the round trip (commits are ordered; the last one is
            # made synchronously on exit, so a clean stop loses nothing and a crash only repeats).
            consumer.commit_async()
            stats.commits += 1
            if metrics is not None:
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        metrics.lag.labels(partition=str(tp.partition)).set(max(0, high - consumer.position(tp)))
        if stats.commits:
            consumer.commit()  # the last batch's offsets, synchronously, before leaving the group
    finally:
        stats.seconds = time.monotonic() - started
        try:
            producer.close(timeout=10)
        finally:
            consumer.close()
    return stats


def _process_one(process: Callable, msg: Any, producer: Any, sink_topic: str, dlq_topic: str,
                 stats: StreamStats, metrics: StreamMetrics | None) -> list:
    """Process one message; return the send futures of its outputs (or of its DLQ copy)."""
    stats.consumed += 1
    t0 = time.perf_counter()
    try:
        payloads = _payloads(process(msg.value) or [])
    except PoisonMessage as exc:
        reason, detail = exc.reason, exc.detail or str(exc)
    except BadOutput as exc:
        reason, detail = "bad_output", str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug on one message must not stop the pipeline
        reason, detail = "processing_error", f"{type(exc).__name__}: {exc}"
    else:
        if metrics is not None:
            metrics.processed.inc()
            metrics.emitted.inc(len(payloads))
            metrics.latency.observe(time.perf_counter() - t0)
        stats.emitted += len(payloads)
        return [producer.send(sink_topic, key=key, value=value) for key, value in payloads]
    stats.dead_lettered += 1
    stats.reasons[reason] += 1
    if metrics is not None:
        metrics.processed.inc()
        metrics.errors.labels(reason=reason).inc()
        metrics.dlq.labels(reason=reason).inc()
        metrics.latency.observe(time.perf_counter() - t0)
    return [producer.send(dlq_topic, key=msg.key, value=msg.value,
                          headers=dlq_headers(reason, detail, msg.topic, msg.partition, msg.offset))]
