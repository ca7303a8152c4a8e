"""One small interface over two Kafka clients, so the serving loop and the bench can run on either.

:class:`Transport` consumes micro-batches, produces, flushes and commits. Two implementations:

- ``"confluent"`` (librdkafka through confluent-kafka): the course's serving path. One hop measured
  p50 0.6 ms / p99 11-21 ms at 1,000 events/s on the shared 2-core machine;
- ``"kafka-python"``: what the learners write against in Labs 03-04. The same hop measured
  p50 7.6-16 ms / p99 63 ms (its producer alone adds 5-15 ms): see ``benchmarks/serving.py``.

Both are configured for latency: no linger, fetches answered within 10 ms, acks=all and idempotent
producers (an acknowledged record is in every in-sync replica, and a retry never writes it twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from helpers.kafka.clients import CONSUMER_BOUNDS, PRODUCER_BOUNDS

CLIENTS = ("confluent", "kafka-python")
Headers = list[tuple[str, bytes]]


@dataclass
class Message:
    """One consumed message, the same whichever client read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers


class DeliveryFailed(RuntimeError):
    """A produced record was not acknowledged: the batch's offsets must not be committed."""


class Transport(Protocol):
    """What the serving loop needs from a Kafka client."""

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]: ...
    def produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None) -> None: ...
    def flush(self) -> None: ...
    def send_batch(self, outputs: Sequence[tuple[str, bytes | None, bytes, Headers | None]]) -> int: ...
    def acked(self, ticket: int) -> bool: ...
    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool = True) -> None: ...
    def assignment(self) -> list[tuple[str, int]]: ...
    def close(self) -> None: ...


class ConfluentTransport:
    """confluent-kafka: a Consumer in ``group_id`` on ``topics`` and an idempotent Producer."""

    def __init__(self, bootstrap: str, group_id: str, topics: Sequence[str], client_id: str,
                 session_timeout_ms: int) -> None:
        from confluent_kafka import Consumer, Producer

        self._errors: list[str] = []
        self._open: dict[int, int] = {}  # ticket -> its records not acknowledged yet
        self._tickets = 0
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 0, "client.id": client_id, "socket.nagle.disable": True,
                                  "message.timeout.ms": PRODUCER_BOUNDS["delivery_timeout_ms"],
                                  "request.timeout.ms": PRODUCER_BOUNDS["request_timeout_ms"]})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "client.id": client_id,
                                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                                  "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 10, "socket.nagle.disable": True,
                                  "session.timeout.ms": session_timeout_ms,
                                  "heartbeat.interval.ms": max(500, session_timeout_ms // 5),
                                  "max.poll.interval.ms": CONSUMER_BOUNDS["max_poll_interval_ms"]})
        self.consumer.subscribe(list(topics))

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        # poll() returns as soon as one message is there; consume(n, 0) then takes what is already
        # fetched. (consume(n, timeout) would wait for n messages or the timeout: +50 ms at 1,000/s.)
        first = self.consumer.poll(timeout_s)
        raw = ([first] if first is not None else []) + (self.consumer.consume(max_records - 1, 0) if first is not None and max_records > 1 else [])
        out = []
        for m in raw:
            if m.error():
                if m.error().fatal():
                    raise RuntimeError(f"Kafka consumer error: {m.error()}")
                continue  # e.g. end of partition: informational
            out.append(Message(m.topic(), m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or [])))
        return out

    def produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain, then try again
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self) -> None:
        left = self.producer.flush(PRODUCER_BOUNDS["delivery_timeout_ms"] / 1000)
        if left or self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"{left} records unacknowledged, errors: {errors[:3]}")

    def send_batch(self, outputs: Sequence[tuple[str, bytes | None, bytes, Headers | None]]) -> int:
        """Produce one batch's outputs without waiting; return its ticket for :meth:`acked`."""
        self._tickets += 1
        ticket = self._tickets
        self._open[ticket] = len(outputs)

        def delivered(err: Any, msg: Any) -> None:
            self._delivered(err, msg)
            self._open[ticket] -= 1

        for topic, key, value, headers in outputs:
            while True:
                try:
                    self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain, then try again
                    self.producer.poll(0.05)
        self.producer.poll(0)
        return ticket

    def acked(self, ticket: int) -> bool:
        """Whether every record of ``ticket`` is acknowledged (serves delivery reports, never waits).

        Raises:
            DeliveryFailed: a record of any batch was refused: nothing after it may be committed.
        """
        self.producer.poll(0)
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"a record was not acknowledged: {errors[:3]}")
        if self._open.get(ticket, 0) > 0:
            return False
        self._open.pop(ticket, None)
        return True

    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
        """Commit ``{(topic, partition): next offset}``: stated offsets, never "whatever was fetched"."""
        from confluent_kafka import KafkaException, TopicPartition

        if not offsets:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 asynchronous=asynchronous)
        except KafkaException as err:
            raise RuntimeError(f"committing {offsets} failed: {err}") from err

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()


class KafkaPythonTransport:
    """kafka-python: a KafkaConsumer in ``group_id`` on ``topics`` and an idempotent KafkaProducer."""

    def __init__(self, bootstrap: str, group_id: str, topics: Sequence[str], client_id: str,
                 session_timeout_ms: int) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group_id,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      **{**CONSUMER_BOUNDS, "fetch_max_wait_ms": 10, "client_id": client_id,
                                         "session_timeout_ms": session_timeout_ms,
                                         "heartbeat_interval_ms": max(500, session_timeout_ms // 5)})
        try:
            self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                          linger_ms=0, client_id=client_id, **PRODUCER_BOUNDS)
        except Exception:
            self.consumer.close()
            raise
        self._futures: list[Any] = []
        self._tickets = 0
        self._batches: dict[int, list[Any]] = {}  # ticket -> its records' futures

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Message]:
        batch = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [Message(m.topic, m.partition, m.offset, m.key, m.value, [(k, v) for k, v in m.headers or []])
                for messages in batch.values() for m in messages]

    def produce(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        self._futures.append(self.producer.send(topic, key=key, value=value, headers=headers or None))

    def flush(self) -> None:
        from kafka.errors import KafkaError

        self.producer.flush(timeout=PRODUCER_BOUNDS["delivery_timeout_ms"] / 1000)
        futures, self._futures = self._futures, []
        try:
            for future in futures:
                future.get(timeout=PRODUCER_BOUNDS["request_timeout_ms"] / 1000)
        except KafkaError as err:
            raise DeliveryFailed(f"a record was not acknowledged: {err}") from err

    def send_batch(self, outputs: Sequence[tuple[str, bytes | None, bytes, Headers | None]]) -> int:
        """Send one batch's outputs without waiting; return its ticket for :meth:`acked`."""
        self._tickets += 1
        self._batches[self._tickets] = [self.producer.send(topic, key=key, value=value, headers=headers or None)
                                        for topic, key, value, headers in outputs]
        return self._tickets

    def acked(self, ticket: int) -> bool:
        """Whether every record of ``ticket`` is acknowledged (never waits).

        Raises:
            DeliveryFailed: a record was refused: nothing after it may be committed.
        """
        futures = self._batches.get(ticket, [])
        if not all(f.is_done for f in futures):
            return False
        failed = next((f.exception for f in futures if f.failed()), None)
        if failed is not None:
            raise DeliveryFailed(f"a record was not acknowledged: {failed}") from failed
        self._batches.pop(ticket, None)
        return True

    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
        """Commit ``{(topic, partition): next offset}``."""
        from kafka import OffsetAndMetadata, TopicPartition

        if not offsets:
            return
        stated = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        if asynchronous:
            self.consumer.commit_async(stated)
        else:
            self.consumer.commit(stated)

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    def close(self) -> None:
        try:
            self.producer.close(timeout=10)
        finally:
            self.consumer.close()


def open_transport(client: str, bootstrap: str, group_id: str, topics: Sequence[str], *, client_id: str = "serving",
                   session_timeout_ms: int = 6_000) -> ConfluentTransport | KafkaPythonTransport:
    """Return a :class:`Transport` of ``client`` (one of :data:`CLIENTS`) consuming ``topics`` in ``group_id``."""
    if client == "confluent":
        return ConfluentTransport(bootstrap, group_id, topics, client_id, session_timeout_ms)
    if client == "kafka-python":
        return KafkaPythonTransport(bootstrap, group_id, topics, client_id, session_timeout_ms)
    raise ValueError(f"unknown Kafka client {client!r}: use one of {CLIENTS}")
