"""Drive the serving pipeline with a fixed-rate event stream and read its predictions (bench and capstone).

:class:`ServingLoad` starts the stage processes, an event producer and a downstream reader of the
predictions; :func:`run_at_rate` warms the pipeline up, then sends events on a fixed schedule, each
stamped with its **intended** send time (``sent_at``: latency is measured from there, so a stall of the
pipeline or of the sender counts in full: no coordinated omission) and the time it was actually handed
to the producer (``produced_at``: the sender's own lateness, reported apart), and waits for their
predictions. What the figures are (percentiles, audits) is the caller's business.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

LATENCY_CLIENT = {"linger.ms": 0, "socket.nagle.disable": True}
"""librdkafka settings of every client on the latency path: send at once, no Nagle delay on small requests."""


def event_producer(bootstrap: str) -> Any:
    """An idempotent ``acks=all`` confluent-kafka producer for the events (made before the clock starts)."""
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **LATENCY_CLIENT})


def send_at_rate(producer: Any, topic: str, events: Sequence[dict], rate: float | None) -> float:
    """Send ``events`` keyed by user at ``rate`` per second (``None``: as fast as possible); return the seconds.

    At a rate, each event gets ``sent_at`` (its intended send time on the schedule) and ``produced_at``
    (when it was handed to the producer). A malformed event without a user is keyed ``None``.
    """
    import orjson

    start = time.time() + 0.05
    for i, event in enumerate(events):
        if rate:
            at = start + i / rate
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            event = {**event, "sent_at": at, "produced_at": time.time()}
        while True:
            try:
                producer.produce(topic, key=str(event.get("user_id")).encode(), value=orjson.dumps(event))
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return time.time() - start


class Downstream:
    """Reads a predictions topic in a thread: ``got = {event_id: (read at, prediction)}`` (first copy kept)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.got: dict[Any, tuple[float, dict]] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"downstream-{uuid.uuid4().hex[:6]}",
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                   "fetch.wait.max.ms": 10, "socket.nagle.disable": True})
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import orjson

        while not self._stop.is_set():
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            now = time.time()
            for m in [first, *self._consumer.consume(1000, 0)]:
                if not m.error():
                    value = orjson.loads(m.value())
                    self.got.setdefault(value["event_id"], (now, value))

    def wait_for(self, ids: Iterable[Any], timeout_s: float) -> bool:
        """Wait until every id in ``ids`` has a prediction; False if ``timeout_s`` passed first."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            wanted -= self.got.keys()
            if not wanted:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


class ServingLoad:
    """A context: the stage processes started and ready, a producer, a reader of ``predictions_topic``.

    Args:
        stages: :class:`helpers.serving.processes.StageProcess` objects (started on enter, stopped on exit).
        bootstrap: the cluster.
        events_topic, predictions_topic: where events go in and predictions come out.
        ready_timeout_s: how long a stage may take to load its model and join.
    """

    def __init__(self, stages: Sequence[Any], bootstrap: str, events_topic: str, predictions_topic: str,
                 ready_timeout_s: float = 120.0) -> None:
        self.stages, self.bootstrap, self.events_topic = list(stages), bootstrap, events_topic
        self.predictions_topic, self.ready_timeout_s = predictions_topic, ready_timeout_s
        self.downstream: Downstream | None = None
        self.producer: Any = None

    def __enter__(self) -> ServingLoad:
        self.downstream = Downstream(self.bootstrap, self.predictions_topic)
        self.producer = event_producer(self.bootstrap)
        try:
            for stage in self.stages:
                stage.start()
            for stage in self.stages:
                stage.wait_ready(self.ready_timeout_s)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def send(self, events: Sequence[dict], rate: float | None) -> float:
        """:func:`send_at_rate` to the events topic."""
        return send_at_rate(self.producer, self.events_topic, events, rate)

    @property
    def got(self) -> dict[Any, tuple[float, dict]]:
        assert self.downstream is not None, "use ServingLoad as a context manager (with ServingLoad(...) as load)"
        return self.downstream.got

    def wait_for(self, ids: Iterable[Any], timeout_s: float) -> bool:
        assert self.downstream is not None, "use ServingLoad as a context manager (with ServingLoad(...) as load)"
        return self.downstream.wait_for(ids, timeout_s)

    def __exit__(self, *exc: object) -> None:
        try:
            if self.downstream is not None:
                self.downstream.close()
        finally:
            for stage in self.stages:
                stage.stop()


@dataclass
class RateRun:
    """What :func:`run_at_rate` saw: ``got`` holds ``(read at, prediction)`` of each expected timed event."""

    rate: float
    sent: int
    send_seconds: float
    expected: int
    got: list[tuple[float, dict]]

    @property
    def complete(self) -> bool:
        return len(self.got) == self.expected


def run_at_rate(load: ServingLoad, warm: Sequence[dict], timed: Sequence[dict], rate: float, *,
                warm_ids: Iterable[Any], timed_ids: Sequence[Any], timeout_s: float = 60.0,
                warm_rate: float = 200.0) -> RateRun:
    """Warm the pipeline up (``warm`` at ``warm_rate``: the groups join, caches fill), then send ``timed`` at ``rate``.

    Args:
        load: the running pipeline.
        warm, timed: the events (dicts with ``event_id`` and ``user_id``), sent in order.
        rate: events per second of the timed run.
        warm_ids, timed_ids: the ids that should get a prediction (the valid ones) in each part.
        timeout_s: the bound on waiting for the last predictions (never a measure of speed).
    """
    load.send(warm, warm_rate)
    load.wait_for(warm_ids, timeout_s)
    seconds = load.send(timed, rate)
    load.wait_for(timed_ids, timeout_s)
    got = [load.got[i] for i in timed_ids if i in load.got]
    return RateRun(rate, len(timed), seconds, len(timed_ids), got)
