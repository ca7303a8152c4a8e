"""Streaming plumbing for the Kafka labs: a bounded consume-process-produce loop, a dead-letter queue,
Prometheus metrics and consumer lag.

The loop takes *your* processing function and does the rest the way a production consumer would:

- every client is bounded (request, connect and idle timeouts) and closed in ``finally``;
- offsets are committed only after a batch was processed **and** its output acknowledged by the
  broker (at-least-once: a crash re-delivers, it never skips);
- a message the function rejects with :class:`PoisonMessage` (or crashes on) goes to the dead-letter
  topic with headers ``reason``, ``detail``, ``original_topic``, ``original_partition`` and
  ``original_offset``, and the loop goes on;
- :class:`StreamMetrics` counts events, errors and DLQ messages, times each message and tracks lag,
  in a per-run ``CollectorRegistry`` served over HTTP by ``prometheus_client``.

    >>> from helpers.streaming import run_stream, PoisonMessage       # doctest: +SKIP
    >>> def process(raw: bytes):                                      # doctest: +SKIP
    ...     event = json.loads(raw)
    ...     return [(str(event["user_id"]), {"seen": event["event_id"]})]
    >>> stats = run_stream(process, "user-events", sink_topic="features",
    ...                    dlq_topic="dead-letter-queue", group_id="fe")  # doctest: +SKIP

Nothing here knows about features or validation rules: those are the labs' answers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from helpers.config import kafka_bootstrap_servers
from helpers.ports import free_port

# Bounds shared by every client the helpers build: a missing or stuck broker costs seconds, not forever.
PRODUCER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000, "max_block_ms": 10_000,
                                   "delivery_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000}
CONSUMER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000,
                                   "session_timeout_ms": 10_000, "heartbeat_interval_ms": 2_000,
                                   "max_poll_interval_ms": 60_000}
ADMIN_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000}

Output = tuple[str | None, Any]
"""What a processing function emits: ``(key, JSON-serialisable value)``."""


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answers at the configured address (the message carries the doctor's hint)."""


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


# --------------------------------------------------------------------------------- broker, topics
def require_broker(timeout_s: float = 3.0) -> str:
    """Return the bootstrap servers if a broker answers within ``timeout_s``; else fail fast.

    Raises:
        BrokerUnavailable: with the doctor's one-line diagnosis and hint.
    """
    from helpers.doctor import check_kafka
    from helpers.kafka import is_reachable

    bootstrap = kafka_bootstrap_servers()
    if is_reachable(bootstrap, timeout_s=timeout_s):
        return bootstrap
    check = check_kafka()
    raise BrokerUnavailable(f"Kafka: {check.detail}. Hint: {check.hint}")


def unique_topic(prefix: str) -> str:
    """Return ``prefix-<8 hex>``: a fresh topic name, so reruns and parallel runs never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_client():
    """Return a bounded ``KafkaAdminClient`` (close it when done)."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers(), **ADMIN_BOUNDS)


def describe_topic(name: str) -> dict[str, Any]:
    """Return ``{"name", "partitions", "retention_ms", "configs"}`` of an existing topic.

    ``configs`` holds every topic-level setting the broker reports (value strings).

    Raises:
        KeyError: when the topic does not exist.
    """
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = admin_client()
    try:
        topics = [t for t in admin.describe_topics([name]) if t.get("error_code", 0) == 0 and t["partitions"]]
        if not topics:
            raise KeyError(f"topic {name!r} does not exist")
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                         config_filter="all")["topic"][name]
    finally:
        admin.close()
    values = {key: entry["value"] for key, entry in configs.items()}
    return {"name": name, "partitions": len(topics[0]["partitions"]),
            "retention_ms": int(values.get("retention.ms", -1)), "configs": values}


def end_offsets(topic: str) -> dict[int, int]:
    """Return ``{partition: next offset}`` of ``topic`` (how many messages each partition holds)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    admin = admin_client()
    try:
        parts = [p["partition_index"] for t in admin.describe_topics([topic]) for p in t["partitions"]]
        offsets = admin.list_partition_offsets({TopicPartition(topic, p): OffsetSpec.LATEST for p in parts})
    finally:
        admin.close()
    return {tp.partition: info.offset for tp, info in offsets.items()}


def committed_offsets(group_id: str, topic: str) -> dict[int, int]:
    """Return ``{partition: committed offset}`` of ``group_id`` on ``topic`` (missing: nothing committed)."""
    admin = admin_client()
    try:
        offsets = admin.list_group_offsets({group_id: None}).get(group_id, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def group_members(group_id: str) -> dict[str, list[int]]:
    """Return ``{client_id: [partitions]}`` of the live members of ``group_id`` (empty: nobody is in it)."""
    admin = admin_client()
    try:
        group = admin.describe_groups([group_id]).get(group_id, {})
    finally:
        admin.close()
    members: dict[str, list[int]] = {}
    for member in group.get("members") or []:
        assigned = (member.get("member_assignment") or {}).get("assigned_partitions", [])
        members[member["client_id"]] = sorted(p for a in assigned for p in a["partitions"])
    return members


def consumer_lag(group_id: str, topic: str) -> dict[int, int]:
    """Return ``{partition: lag}``: messages in the log that ``group_id`` has not committed yet."""
    ends = end_offsets(topic)
    done = committed_offsets(group_id, topic)
    return {p: max(0, end - done.get(p, 0)) for p, end in sorted(ends.items())}


@dataclass
class Record:
    """One message read back from a topic (value decoded from JSON when it can be)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: Any
    headers: dict[str, str]
    timestamp_ms: int


def read_topic(topic: str, *, max_records: int | None = None, idle_timeout_s: float = 3.0,
               decode_json: bool = True) -> list[Record]:
    """Read ``topic`` from the beginning (no group, nothing committed) until it is idle.

    Args:
        topic: the topic to read.
        max_records: stop after this many.
        idle_timeout_s: stop when no message came for this long.
        decode_json: decode values as JSON (a value that is not JSON stays ``bytes``).
    """
    from kafka import KafkaConsumer

    require_broker()
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap_servers(), group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=int(idle_timeout_s * 1000), **CONSUMER_BOUNDS)
    out: list[Record] = []
    try:
        for msg in consumer:
            value: Any = msg.value
            if decode_json and value is not None:
                try:
                    value = json.loads(value)
                except (ValueError, UnicodeDecodeError):
                    pass
            out.append(Record(msg.topic, msg.partition, msg.offset,
                              msg.key.decode() if msg.key is not None else None, value,
                              {k: (v.decode(errors="replace") if v is not None else "") for k, v in msg.headers or []},
                              msg.timestamp))
            if max_records is not None and len(out) >= max_records:
                break
    finally:
        consumer.close()
    return out


# ----------------------------------------------------------------------------------------- metrics
class StreamMetrics:
    """The pipeline's Prometheus metrics, in their own registry (one per run: no duplicate-name clash).

    ``serve()`` exposes them on ``http://127.0.0.1:<port>/metrics``; ``close()`` stops the server.
    Use it as a context manager.

    Metrics: ``events_processed_total``, ``events_emitted_total``, ``processing_errors_total{reason}``,
    ``dlq_messages_total{reason}``, ``processing_latency_seconds`` (histogram) and ``consumer_lag``
    (gauge, per partition).
    """

    def __init__(self, namespace: str = "stream") -> None:
        from prometheus_client import CollectorRegistry, Counter as PCounter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.processed = PCounter("events_processed", "Messages consumed and processed", namespace=namespace,
                                  registry=self.registry)
        self.emitted = PCounter("events_emitted", "Output messages produced", namespace=namespace,
                                registry=self.registry)
        self.errors = PCounter("processing_errors", "Messages that failed (poison or a crash)", ["reason"],
                               namespace=namespace, registry=self.registry)
        self.dlq = PCounter("dlq_messages", "Messages sent to the dead-letter queue", ["reason"],
                            namespace=namespace, registry=self.registry)
        self.latency = Histogram("processing_latency_seconds", "Time to process one message",
                                 namespace=namespace, registry=self.registry,
                                 buckets=(.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1))
        self.lag = Gauge("consumer_lag", "Messages behind the end of the log", ["partition"],
                         namespace=namespace, registry=self.registry)
        self.namespace = namespace
        self.port: int | None = None
        self._server = None

    def serve(self, port: int | None = None) -> int:
        """Start the HTTP endpoint on 127.0.0.1 (a free port unless given) and return the port."""
        from prometheus_client import start_http_server

        if self._server is None:
            self.port = port or free_port()
            self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        return int(self.port)

    def close(self) -> None:
        """Stop the HTTP endpoint (the values stay readable with :meth:`snapshot`)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StreamMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def snapshot(self) -> dict[str, float]:
        """Return every sample as ``{"name{label=value}": value}`` (read from the registry)."""
        return _samples(self.registry.collect())


def _samples(families: Iterable[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return out


def scrape(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """Fetch a Prometheus text endpoint and return its samples as :meth:`StreamMetrics.snapshot` does."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - a local http URL we built
        text = response.read().decode()
    return _samples(text_string_to_metric_families(text))


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
        idle_timeout_s: stop when nothing arrived for this long.
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
                             max_poll_records=max_poll_records, **{**CONSUMER_BOUNDS, **(consumer_config or {})})
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
                continue
            last_message = time.monotonic()
            futures = []
            for messages in batch.values():
                for msg in messages:
                    futures += _process_one(process, msg, producer, sink_topic, dlq_topic, stats, metrics)
            producer.flush(timeout=PRODUCER_BOUNDS["delivery_timeout_ms"] / 1000)
            for future in futures:  # every output and DLQ record acknowledged, or we stop before committing
                future.get(timeout=PRODUCER_BOUNDS["request_timeout_ms"] / 1000)
            consumer.commit()
            stats.commits += 1
            if metrics is not None:
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        metrics.lag.labels(partition=str(tp.partition)).set(max(0, high - consumer.position(tp)))
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
        outputs = list(process(msg.value) or [])
        payloads = [(key, _json_bytes(value)) for key, value in outputs]
    except PoisonMessage as exc:
        reason, detail = exc.reason, exc.detail or str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug on one message must not stop the pipeline
        reason, detail = "processing_error", f"{type(exc).__name__}: {exc}"
    else:
        if metrics is not None:
            metrics.processed.inc()
            metrics.emitted.inc(len(payloads))
            metrics.latency.observe(time.perf_counter() - t0)
        stats.emitted += len(payloads)
        return [producer.send(sink_topic, key=key.encode() if key is not None else None, value=value)
                for key, value in payloads]
    stats.dead_lettered += 1
    stats.reasons[reason] += 1
    if metrics is not None:
        metrics.processed.inc()
        metrics.errors.labels(reason=reason).inc()
        metrics.dlq.labels(reason=reason).inc()
        metrics.latency.observe(time.perf_counter() - t0)
    return [producer.send(dlq_topic, key=msg.key, value=msg.value,
                          headers=dlq_headers(reason, detail, msg.topic, msg.partition, msg.offset))]
