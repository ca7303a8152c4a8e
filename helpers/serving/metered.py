"""A serving stage's Prometheus metrics: the names of :mod:`helpers.monitoring.metrics`, measured on the live stage.

:class:`StageMetrics` wraps a stage's batch handler (:mod:`helpers.serving.stages`) and the loop's ``on_batch``
hook (:func:`helpers.serving.loop.serve`) without changing either, serves ``/metrics`` on its own
127.0.0.1 port and registers the process as a Prometheus target (component ``<stage>-<name>``), so the
rules of ``helpers/monitoring/rules`` and the dashboard see the real pipeline:

- RED: ``stream_messages_total{component, outcome}`` (``ok``, ``dlq``, ``error``: a handler that raises
  counts its whole batch as errors) and ``stream_processing_seconds{component}`` (each message's batch time
  in the handler);
- ``prediction_latency_seconds`` (model stage: from the event's arrival at the feature stage,
  ``received_at``, to its score, ``scored_at``) and ``prediction_score``;
- ``stream_dlq_messages_total{component, reason}`` (the ``reason`` header of each dead letter);
- ``stream_consumer_lag{group, topic, partition}`` for the partitions this member owns (high watermark
  minus the group's committed offset, read every ``lag_every_s`` by a consumer of its own, so a stuck
  loop still shows a growing lag);
- ``model_version_info{model, version, alias}`` (the champion the stage serves now), and the process's
  own CPU and memory (``process_*``).

``python -m helpers.serving`` uses it (``--metrics-port``, ``--no-metrics``)::

    metrics = StageMetrics("model", "model-server-1", out_topic, dlq_topic, group, bootstrap, watcher).start()
    handler = metrics.wrap(handler)
    serve(transport, handler, on_batch=lambda stats: metrics.on_batch(transport.assignment()))
    metrics.close()
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, ProcessCollector

from helpers.monitoring.metrics import MetricsServer, serve_metrics, stream_metrics
from helpers.serving.loop import LoopStats, Out
from helpers.serving.transport import Message

Handler = Callable[[list[Message], LoopStats], Iterable[Out]]
SCORING_STAGES = ("model", "both")


def component_name(stage: str, name: str) -> str:
    """The component (and Prometheus target) name of a stage process: ``<stage>-<name>``, safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{stage}-{name}")[:100]


def _reason(headers: Any) -> str:
    for key, value in headers or []:
        if key == "reason":
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return "unknown"


class StageMetrics:
    """The metrics of one stage process (see the module docstring).

    Args:
        stage: ``features``, ``model`` or ``both``.
        component: its ``component`` label and target name (:func:`component_name`).
        out_topic: where its predictions (or features) go; dlq_topic: its dead-letter topic.
        group, bootstrap: its consumer group and cluster (for the lag).
        watcher: the :class:`helpers.serving.champion.ChampionWatcher` of a scoring stage.
        lag_every_s: how often the lag and the model version are refreshed.
    """

    def __init__(self, stage: str, component: str, out_topic: str, dlq_topic: str, group: str, bootstrap: str,
                 watcher: Any = None, lag_every_s: float = 2.0) -> None:
        self.stage, self.component, self.out_topic, self.dlq_topic = stage, component, out_topic, dlq_topic
        self.group, self.bootstrap, self.watcher, self.lag_every_s = group, bootstrap, watcher, lag_every_s
        self.registry = CollectorRegistry()
        self.metrics = stream_metrics(self.registry)
        if stage not in SCORING_STAGES:  # no predictions here (and an Info never set still exports a bare 1)
            for unused in (self.metrics.model_version, self.metrics.prediction_latency, self.metrics.prediction_score):
                self.registry.unregister(unused)
        ProcessCollector(registry=self.registry)
        for outcome in ("ok", "error", "dlq"):  # present from the start: rate() gives 0, not "no data"
            self.metrics.messages.labels(component, outcome)
        self.port: int | None = None
        self.registered = False
        self._server: MetricsServer | None = None
        self._assigned: list[tuple[str, int]] = []
        self._lag_labels: set[tuple[str, str, str]] = set()
        self._served: tuple[str, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0, register: bool | None = None) -> StageMetrics:
        """Serve ``/metrics`` (``port=0``: a free one), register the target, start the lag thread.

        ``register=None`` registers when a Prometheus reads the targets folder: the embedded one was started
        with this state folder (the folder exists), or compose's (``PROMETHEUS_URL``); True always; False never.
        """
        from helpers.platform.monitoring_services import PROMETHEUS, register_target

        self._server = serve_metrics(self.registry, port)
        self.port = self._server.port
        if register or (register is None and (PROMETHEUS.external or (PROMETHEUS.home / "targets").is_dir())):
            try:
                register_target(self.component, self.port, {"stage": self.stage})
                self.registered = True
            except OSError as err:  # a read-only targets folder: serve unscraped rather than not serve at all
                print(f"{self.component}: not registered with Prometheus ({err}); /metrics on port {self.port}",
                      flush=True)
        self._refresh_model()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{self.component}", daemon=True)
        self._thread.start()
        return self

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` measured: each batch's messages counted by outcome and timed, predictions observed."""

        def measured(batch: list[Message], stats: LoopStats) -> list[Out]:
            m, t0 = self.metrics, time.perf_counter()
            try:
                outputs = list(handler(batch, stats))
            except BaseException:
                m.messages.labels(self.component, "error").inc(len(batch))
                raise
            spent = time.perf_counter() - t0
            timer = m.processing.labels(self.component)
            for _ in batch:
                timer.observe(spent)
            dead = 0
            for topic, _key, value, headers in outputs:
                if topic == self.dlq_topic:
                    dead += 1
                    m.dead_letter(self.component, _reason(headers))
                elif topic == self.out_topic and self.stage in SCORING_STAGES:
                    self._observe_prediction(value)
            m.messages.labels(self.component, "dlq").inc(dead)
            m.messages.labels(self.component, "ok").inc(max(0, len(batch) - dead))
            return outputs

        return measured

    def _observe_prediction(self, value: bytes) -> None:
        try:
            prediction = orjson.loads(value)
            score = float(prediction["score"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        self.metrics.prediction_score.observe(score)
        received, scored = prediction.get("received_at"), prediction.get("scored_at")
        if isinstance(received, (int, float)) and isinstance(scored, (int, float)) and scored >= received:
            self.metrics.prediction_latency.observe(scored - received)

    def on_batch(self, assigned: list[tuple[str, int]]) -> None:
        """The loop's hook after each acknowledged batch: remember which partitions this member owns."""
        self._assigned = list(assigned)

    def _refresh_model(self) -> None:
        if self.watcher is None:
            return
        served = self.watcher.current()
        if (served.name, served.version) != self._served:
            self.metrics.set_model(served.name, served.version)
            self._served = (served.name, served.version)

    def _refresh_lag(self, consumer: Any) -> None:
        from confluent_kafka import TopicPartition

        owned = [TopicPartition(t, p) for t, p in self._assigned]
        labels: set[tuple[str, str, str]] = set()
        if owned:
            for tp in consumer.committed(owned, timeout=5):
                _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
                lag = high - tp.offset if tp.offset >= 0 else high  # nothing committed yet: all of it
                key = (self.group, tp.topic, str(tp.partition))
                self.metrics.consumer_lag.labels(*key).set(max(0, lag))
                labels.add(key)
        for gone in self._lag_labels - labels:  # partitions another member owns now
            self.metrics.consumer_lag.remove(*gone)
        self._lag_labels = labels

    def _run(self) -> None:
        from confluent_kafka import Consumer, KafkaException

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "log_level": 2,
                             "enable.auto.commit": False})  # never subscribes: it only reads offsets
        try:
            while not self._stop.wait(self.lag_every_s):
                self._refresh_model()
                try:
                    self._refresh_lag(consumer)
                except KafkaException as err:  # the broker away for a moment: keep the last values
                    print(f"{self.component}: consumer lag not read ({err})", flush=True)
        finally:
            consumer.close()

    def close(self, linger_s: float = 3.0) -> None:
        """Stop the lag thread, unregister the target, stop serving ``linger_s`` later (a last scrape)."""
        from helpers.platform.monitoring_services import unregister_target

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.registered:
            unregister_target(self.component)
        if self._server is not None:
            if self.registered:
                time.sleep(linger_s)  # Prometheus scrapes every 2 s: the last counts are not lost
            self._server.close()
