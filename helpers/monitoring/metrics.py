"""The streaming components' Prometheus metrics (prometheus-client), defined once so every part of Lab 05
names them alike and the alert rules (``rules/workbook.rules.yml``) and the dashboard find them.

RED per component (Rate and Errors: ``stream_messages_total{outcome}``, Duration:
``stream_processing_seconds``), the prediction latency histogram with buckets around the 100 ms
objective, consumer lag, dead-letter messages, the served model's version and the score distribution.
Nothing is registered at import time: :func:`stream_metrics` builds them in a registry of your choice
(a fresh one per component in tests and notebooks; the default registry for a long-running service)::

    metrics = stream_metrics(registry)
    with metrics.observe("model-server") as outcome:    # counts, times, marks errors
        score = model.predict(features)
    metrics.prediction_latency.observe(0.042)
    server = serve_metrics(registry)                       # GET /metrics on 127.0.0.1:server.port
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.09, 0.1, 0.11, 0.125,
                   0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
"""Seconds: dense around the 100 ms objective, so the p99 near it is measured, not guessed; and fine below
20 ms, where the streaming pipeline's p50 is (a p50 of 3 ms inside a 0-5 ms bucket would be a guess too)."""
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
OUTCOMES = ("ok", "error", "dlq")


@dataclass(frozen=True)
class StreamMetrics:
    """The metric objects of one process; see the module docstring for what each measures."""

    messages: Counter
    processing: Histogram
    prediction_latency: Histogram
    prediction_score: Histogram
    consumer_lag: Gauge
    dlq: Counter
    model_version: Info

    @contextmanager
    def observe(self, component: str) -> Iterator[dict[str, str]]:
        """Count one message of ``component`` and time it; an exception counts it as an ``error`` (re-raised).

        Yields a dict whose ``"outcome"`` the block may set to ``"dlq"`` when it dead-letters the message.
        """
        outcome = {"outcome": "ok"}
        start = time.perf_counter()
        try:
            yield outcome
        except BaseException:
            outcome["outcome"] = "error"
            raise
        finally:
            if outcome["outcome"] not in OUTCOMES:
                raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome['outcome']!r}")
            self.processing.labels(component).observe(time.perf_counter() - start)
            self.messages.labels(component, outcome["outcome"]).inc()

    def dead_letter(self, component: str, reason: str) -> None:
        """Count one message of ``component`` sent to the dead-letter topic for ``reason`` (e.g. ``schema``)."""
        self.dlq.labels(component, reason).inc()

    def set_model(self, name: str, version: str, alias: str = "champion") -> None:
        """Publish which model version serves (``model_version_info{model, version, alias} 1``)."""
        self.model_version.info({"model": name, "version": str(version), "alias": alias})


def stream_metrics(registry: CollectorRegistry) -> StreamMetrics:
    """Create the streaming metrics in ``registry`` (a registry can hold them once)."""
    return StreamMetrics(
        messages=Counter("stream_messages", "Messages handled, by component and outcome (ok, error, dlq)",
                         ["component", "outcome"], registry=registry),
        processing=Histogram("stream_processing_seconds", "Time to handle one message, by component",
                             ["component"], buckets=LATENCY_BUCKETS, registry=registry),
        prediction_latency=Histogram("prediction_latency_seconds",
                                     "From the event's arrival to its prediction (objective: p99 < 100 ms)",
                                     buckets=LATENCY_BUCKETS, registry=registry),
        prediction_score=Histogram("prediction_score", "The model's scores (their distribution shows drift)",
                                   buckets=SCORE_BUCKETS, registry=registry),
        consumer_lag=Gauge("stream_consumer_lag", "Messages not yet consumed, by group, topic and partition",
                           ["group", "topic", "partition"], registry=registry),
        dlq=Counter("stream_dlq_messages", "Messages sent to the dead-letter topic, by component and reason",
                    ["component", "reason"], registry=registry),
        model_version=Info("model_version", "The model version being served", registry=registry),
    )


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint on 127.0.0.1: its ``port``, and :meth:`close` to stop serving."""

    port: int
    _server: Any

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(registry: CollectorRegistry, port: int = 0) -> MetricsServer:
    """Serve ``registry`` on ``http://127.0.0.1:<port>/metrics`` from a daemon thread (``WORKBOOK_METRICS_BIND``).

    ``port=0`` picks a free one. Register it with
    :func:`helpers.platform.monitoring_services.register_target` so Prometheus scrapes it.
    """
    if port == 0:
        from helpers.platform.ports import free_port

        port = free_port()
    from helpers.platform.config import metrics_hosts

    server, _thread = start_http_server(port, addr=metrics_hosts()[0], registry=registry)
    return MetricsServer(port, server)
