"""The streaming part's pipeline kept running in the background, for the parts that watch it (monitoring, incident).

:class:`LivePipeline` starts the two stage processes (``python -m helpers.serving features|model``) on
topics of its own, serving the champion of ``model``, and sends generated events (1 % malformed: the
dead-letter panel has data) at a steady ``rate`` from a thread until stopped, while a consumer reads the
predictions. Each stage serves ``/metrics`` and registers itself with the embedded Prometheus
(:mod:`helpers.serving.metered`), so the dashboard and the alert rules see the real pipeline::

    with LivePipeline("purchase_next_1h", bootstrap, rate=50) as live:
        ...                                   # query Prometheus, inject a fault, move the champion
        live.versions_seen()                  # model versions in the predictions so far
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from helpers.capstone.streaming import stream_events


class PredictionReader:
    """Reads a predictions topic from the start in a thread: ``got`` is ``{event_id: (read at, prediction)}``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.got: dict[Any, tuple[float, dict]] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"live-read-{uuid.uuid4().hex[:6]}",
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False, "log_level": 2})
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, name="live-predictions", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import orjson

        while not self._stop.is_set():
            for m in self._consumer.consume(500, 0.2):
                if not m.error():
                    value = orjson.loads(m.value())
                    self.got.setdefault(value.get("event_id"), (time.time(), value))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def series_count(port: int) -> int:
    """Samples (series) a ``/metrics`` endpoint on 127.0.0.1 exposes now."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


class LivePipeline:
    """Features and model stages, an event source at ``rate``/s and a predictions reader (see the module).

    Args:
        model: the registered model whose champion the model stage serves (and follows).
        bootstrap: the Kafka cluster.
        logs: folder for the stages' logs.
        rate: events per second; max_seconds: events generated for at most this long.
        reload_s: how often the model stage checks the champion alias.
    """

    def __init__(self, model: str, bootstrap: str, logs: Path, rate: float = 50.0, max_seconds: float = 900.0,
                 reload_s: float = 2.0) -> None:
        if rate <= 0 or max_seconds <= 0:
            raise ValueError(f"rate and max_seconds must be positive, got {rate!r} and {max_seconds!r}")
        self.model, self.bootstrap, self.logs, self.rate = model, bootstrap, Path(logs), rate
        self.max_seconds, self.reload_s = max_seconds, reload_s
        self.tag = uuid.uuid4().hex[:6]
        self.topics: dict[str, str] = {}
        self.stages: list[Any] = []
        self.sent = 0
        self.downstream: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LivePipeline:
        """Create the topics, start both stages (ready: model loaded, metrics served), start sending."""
        from helpers.serving.processes import StageProcess
        from helpers.serving.topics import ensure_topics

        self.topics = ensure_topics({r: f"live-{r}-{self.tag}" for r in ("events", "features", "predictions", "dlq")},
                                    bootstrap=self.bootstrap, partitions=3)
        common = {"dlq": self.topics["dlq"], "bootstrap": self.bootstrap}
        self.stages = [
            StageProcess("features", self.logs / "features.log", group=f"live-f-{self.tag}", name=f"live-{self.tag}",
                         source=self.topics["events"], out=self.topics["features"], **common),
            StageProcess("model", self.logs / "model.log", group=f"live-m-{self.tag}", name=f"live-{self.tag}",
                         model=self.model, reload_s=self.reload_s, source=self.topics["features"],
                         out=self.topics["predictions"], **common)]
        for stage in self.stages:
            stage.start()
        for stage in self.stages:
            stage.wait_ready(120)
        self.downstream = PredictionReader(self.bootstrap, self.topics["predictions"])
        events, _valid = stream_events(int(self.rate * self.max_seconds))
        self._thread = threading.Thread(target=self._send, args=(events,), name="live-source", daemon=True)
        self._thread.start()
        return self

    def _send(self, events: list[dict]) -> None:
        import orjson
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 0, "log_level": 2})
        start = time.time()
        try:
            for i, event in enumerate(events):
                if self._stop.wait(max(0.0, start + i / self.rate - time.time())):
                    break
                producer.produce(self.topics["events"], key=str(event.get("user_id")).encode(),
                                 value=orjson.dumps({**event, "sent_at": time.time()}))
                producer.poll(0)
                self.sent += 1
        finally:
            producer.flush(30)

    def metrics_ports(self) -> dict[str, int]:
        """``{stage: port of its /metrics}``, read from each stage's ready line."""
        import re

        ports = {}
        for stage in self.stages:
            found = re.findall(r"metrics on port (\d+)", stage.log())
            if found:
                ports[stage.stage] = int(found[-1])
        return ports

    def versions_seen(self, since: float = 0.0) -> dict[str, float]:
        """``{model version: when its first prediction was read}`` among predictions read after ``since``."""
        first: dict[str, float] = {}
        for at, prediction in list(self.downstream.got.values()) if self.downstream else []:
            version = str(prediction.get("model_version"))
            if at >= since and (version not in first or at < first[version]):
                first[version] = at
        return first

    def stop(self) -> None:
        """Stop sending, stop the stages (SIGTERM: last commit, targets unregistered), stop reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for stage in self.stages:
            stage.stop()
        if self.downstream is not None:
            self.downstream.close()

    def __enter__(self) -> LivePipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
