"""Prometheus metrics for a stream: events, errors, DLQ messages, latency and lag, in a per-run registry.

:class:`StreamMetrics` serves its registry over HTTP with ``prometheus_client``; :func:`scrape` reads
any Prometheus text endpoint back into ``{sample name: value}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from helpers.platform.ports import free_port


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
        from prometheus_client import CollectorRegistry, Gauge, Histogram
        from prometheus_client import Counter as PCounter

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
