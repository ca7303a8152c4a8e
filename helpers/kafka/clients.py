"""Bounded Kafka clients: produce JSON, read a topic back, and fail fast when the broker is missing.

Every client the helpers build carries the bounds below, so a missing or stuck broker costs
seconds, never a hung cell. :func:`read_topic` is the one way to read a topic back (``Record``
objects with key, headers and offsets); :func:`consume_json` is the same reader returning only the
decoded JSON values. Neither creates a topic: a mistyped name is an error that names the topics
that do exist.
"""

from __future__ import annotations

import difflib
import json
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from helpers.platform.config import kafka_bootstrap_servers

PRODUCER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000, "max_block_ms": 10_000,
                                   "delivery_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000}
"""Producer settings: a send that cannot reach the broker fails within seconds."""

CONSUMER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000,
                                   "session_timeout_ms": 10_000, "heartbeat_interval_ms": 2_000,
                                   "max_poll_interval_ms": 60_000}
"""Consumer settings: a lost member leaves its group within seconds."""

ADMIN_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000}
"""Admin client settings."""


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answers at the configured address (the message carries the doctor's hint)."""


class TopicNotFound(LookupError):
    """The topic does not exist (the helpers never create one by reading it)."""


class NotJsonMessage(ValueError):
    """A message's value is not JSON; ``records`` holds what was read before it."""

    def __init__(self, message: str, records: list[Record]) -> None:
        super().__init__(message)
        self.records = records


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


def _tcp_open(server: str, timeout_s: float) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def is_reachable(bootstrap: str | None = None, timeout_s: float = 3.0) -> bool:
    """Return True if a client can fetch cluster metadata from ``bootstrap`` within the timeout."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    bootstrap = bootstrap or kafka_bootstrap_servers()
    if not any(_tcp_open(server, timeout_s) for server in bootstrap.split(",")):
        return False  # nothing listens: answer at once instead of letting the client retry
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def require_broker(timeout_s: float = 3.0) -> str:
    """Return the bootstrap servers if a broker answers within ``timeout_s``; else fail fast.

    Raises:
        BrokerUnavailable: with the doctor's one-line diagnosis and hint.
    """
    from helpers.platform.doctor import check_kafka

    bootstrap = kafka_bootstrap_servers()
    if is_reachable(bootstrap, timeout_s=timeout_s):
        return bootstrap
    check = check_kafka()
    raise BrokerUnavailable(f"Kafka: {check.detail}. Hint: {check.hint}")


def unique_topic(prefix: str) -> str:
    """Return ``prefix-<8 hex>``: a fresh topic name, so reruns and parallel runs never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def require_topic(topic: str) -> None:
    """Raise :class:`TopicNotFound` (naming the closest existing topics) unless ``topic`` exists."""
    from kafka import KafkaAdminClient

    if not isinstance(topic, str) or not topic:
        raise TypeError(f"topic should be a non-empty string, got {topic!r}")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers(), **ADMIN_BOUNDS)
    try:
        existing = admin.list_topics()
    finally:
        admin.close()
    if topic not in existing:
        close = difflib.get_close_matches(topic, [t for t in existing if not t.startswith("__")], n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "create it with ensure_topic(name)"
        raise TopicNotFound(f"topic {topic!r} does not exist ({hint})")


def produce_json(topic: str, records: Iterable[dict], key_field: str | None = None) -> int:
    """Send each record as JSON to ``topic``, flush, and return how many were sent.

    Args:
        topic: destination topic.
        records: JSON-serialisable dicts.
        key_field: if given, the message key is ``str(record[key_field])`` (same key, same partition).

    Raises:
        BrokerUnavailable: no broker answers (after a bounded wait).
    """
    from kafka import KafkaProducer
    from kafka.serializer import DefaultSerializer, JsonSerializer

    producer = KafkaProducer(bootstrap_servers=require_broker(), value_serializer=JsonSerializer(),
                             key_serializer=DefaultSerializer(), acks="all", linger_ms=5, **PRODUCER_BOUNDS)
    sent = 0
    try:
        for record in records:
            key = str(record[key_field]) if key_field else None
            producer.send(topic, value=record, key=key)
            sent += 1
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return sent


def _record(msg: Any, decode_json: bool, strict_json: bool, read: list[Record]) -> Record:
    value: Any = msg.value
    if decode_json and value is not None:
        try:
            value = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            if strict_json:
                raise NotJsonMessage(
                    f"{msg.topic} partition {msg.partition} offset {msg.offset}: the value is not JSON "
                    f"({exc}; it starts {bytes(msg.value[:40])!r}); {len(read)} record(s) read before it are "
                    "in this error's .records; read the topic with read_topic(..., decode_json=False) to see raw "
                    "bytes", read) from exc
    headers = {k: (v.decode(errors="replace") if v is not None else "") for k, v in msg.headers or []}
    key = msg.key.decode(errors="replace") if isinstance(msg.key, bytes) else msg.key
    return Record(msg.topic, msg.partition, msg.offset, key, value, headers, msg.timestamp)


def read_topic(topic: str, *, group_id: str | None = None, max_records: int | None = None,
               idle_timeout_s: float = 3.0, decode_json: bool = True, strict_json: bool = False) -> list[Record]:
    """Read ``topic`` from the earliest offset until ``max_records`` arrived or it is idle.

    Args:
        topic: an existing topic (never created by reading it).
        group_id: read as this consumer group and commit what was read (default: no group, no commit).
        max_records: stop after this many.
        idle_timeout_s: stop when no message came for this long.
        decode_json: decode values as JSON (a value that is not JSON stays ``bytes``...).
        strict_json: ...unless this is set: then a non-JSON value raises :class:`NotJsonMessage`.

    Raises:
        BrokerUnavailable: no broker answers (after a bounded wait), with the doctor's hint.
        TopicNotFound: the topic does not exist; the message names the closest ones that do.
        NotJsonMessage: (``strict_json``) names the offset and keeps what was read before it.
    """
    from kafka import KafkaConsumer

    bootstrap = require_broker()
    require_topic(topic)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group_id,
                             enable_auto_commit=group_id is not None, auto_offset_reset="earliest",
                             allow_auto_create_topics=False, consumer_timeout_ms=int(idle_timeout_s * 1000),
                             **CONSUMER_BOUNDS)
    out: list[Record] = []
    try:
        for msg in consumer:
            out.append(_record(msg, decode_json, strict_json, out))
            if max_records is not None and len(out) >= max_records:
                break
    finally:
        consumer.close()
    return out


def consume_json(topic: str, group_id: str | None = None, max_records: int = 100,
                 timeout_s: float = 10.0) -> list[Any]:
    """Return the JSON values of up to ``max_records`` messages of ``topic`` (:func:`read_topic`, values only).

    Stops when ``max_records`` have arrived or no message came for ``timeout_s`` seconds.

    Raises:
        BrokerUnavailable, TopicNotFound: as :func:`read_topic`.
        NotJsonMessage: a value is not JSON; the error names its offset and keeps the values read before it
            (``[r.value for r in error.records]``).
    """
    records = read_topic(topic, group_id=group_id, max_records=max_records, idle_timeout_s=timeout_s,
                         strict_json=True)
    return [r.value for r in records]
