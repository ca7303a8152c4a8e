"""TODO docstring (from helpers/kafka, streaming.py)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from helpers.platform.config import kafka_bootstrap_servers


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
        admin = KafkaAdminClient(bootstrap_servers=bootstrap,
                                 request_timeout_ms=int(timeout_s * 1000))
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def produce_json(topic: str, records: Iterable[dict], key_field: str | None = None) -> int:
    """Send each record as JSON to ``topic``, flush, and return how many were sent.

    Args:
        topic: destination topic.
        records: JSON-serialisable dicts.
        key_field: if given, the message key is ``str(record[key_field])`` (same key, same partition).
    """
    from kafka import KafkaProducer
    from kafka.serializer import DefaultSerializer, JsonSerializer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap_servers(),
                             value_serializer=JsonSerializer(), key_serializer=DefaultSerializer(),
                             acks="all", linger_ms=5)
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


def consume_json(topic: str, group_id: str | None = None, max_records: int = 100,
                 timeout_s: float = 10.0) -> list[dict]:
    """Read up to ``max_records`` JSON messages of ``topic`` from the earliest offset.

    Stops when ``max_records`` have arrived or no message came for ``timeout_s`` seconds.
    """
    from kafka import KafkaConsumer
    from kafka.serializer import JsonSerializer

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap_servers(),
                             group_id=group_id, auto_offset_reset="earliest",
                             enable_auto_commit=group_id is not None,
                             consumer_timeout_ms=int(timeout_s * 1000),
                             value_deserializer=JsonSerializer())
    out: list[dict] = []
    try:
        for message in consumer:
            out.append(message.value)
            if len(out) >= max_records:
                break
    finally:
        consumer.close()
    return out


# Bounds shared by every client the helpers build: a missing or stuck broker costs seconds, not forever.
PRODUCER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000, "max_block_ms": 10_000,
                                   "delivery_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000}


CONSUMER_BOUNDS: dict[str, Any] = {"request_timeout_ms": 30_000, "bootstrap_timeout_ms": 10_000,
                                   "session_timeout_ms": 10_000, "heartbeat_interval_ms": 2_000,
                                   "max_poll_interval_ms": 60_000}


ADMIN_BOUNDS: dict[str, Any] = {"request_timeout_ms": 10_000}


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answers at the configured address (the message carries the doctor's hint)."""


# --------------------------------------------------------------------------------- broker, topics
def require_broker(timeout_s: float = 3.0) -> str:
    """Return the bootstrap servers if a broker answers within ``timeout_s``; else fail fast.

    Raises:
        BrokerUnavailable: with the doctor's one-line diagnosis and hint.
    """
    from helpers.kafka.clients import is_reachable
    from helpers.platform.doctor import check_kafka

    bootstrap = kafka_bootstrap_servers()
    if is_reachable(bootstrap, timeout_s=timeout_s):
        return bootstrap
    check = check_kafka()
    raise BrokerUnavailable(f"Kafka: {check.detail}. Hint: {check.hint}")


def unique_topic(prefix: str) -> str:
    """Return ``prefix-<8 hex>``: a fresh topic name, so reruns and parallel runs never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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
