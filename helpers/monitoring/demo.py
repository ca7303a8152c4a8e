"""A small live metric source: simulated stream traffic with knobs for faults, scraped by the embedded Prometheus.

It stands in for part 2's serving stages where they do not run: the 05c notebook's dashboard cell (05c must
not depend on 05b's pipeline) and the dashboard renderer's test, which need every panel and alert rule to see
data in seconds and a fault injected on purpose (slow predictions, errors, dead letters, score drift, growing
lag). The real stages serve the same metrics (:mod:`helpers.serving.metered`); the capstone watches those::

    with DemoSource() as source:          # serves /metrics, registered with Prometheus as component "demo"
        source.latency_s = 0.2             # p99 over 100 ms: PredictionLatencyP99High fires after 1 minute
"""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry

from helpers.monitoring.metrics import MetricsServer, serve_metrics, stream_metrics


class DemoSource:
    """Generate ``rate`` messages per second in a background thread until :meth:`stop`.

    Attributes (change them while it runs): ``latency_s`` (mean prediction latency), ``error_ratio``,
    ``dlq_ratio``, ``score_mean`` (mean prediction score), ``lag_growth`` (messages added to the lag per tick).
    """

    def __init__(self, name: str = "demo", rate: float = 50.0, seed: int = 5) -> None:
        if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
            raise ValueError(f"name must be letters, digits, '-' or '_', not {name!r}")
        if rate <= 0:
            raise ValueError(f"rate must be positive (messages per second), got {rate!r}")
        self.name, self.rate = name, rate
        self.latency_s, self.error_ratio, self.dlq_ratio = 0.03, 0.0, 0.0
        self.score_mean, self.lag_growth = 0.3, 0
        self.registry = CollectorRegistry()
        self.metrics = stream_metrics(self.registry)
        self.port: int | None = None
        self._server: MetricsServer | None = None
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lag = 0

    def start(self) -> DemoSource:
        """Serve the metrics, register them with the embedded Prometheus and start generating."""
        from helpers.platform.monitoring_services import register_target

        self._server = serve_metrics(self.registry)
        self.port = self._server.port
        register_target(self.name, self.port)
        self.metrics.set_model("demo-model", "1")
        self._thread = threading.Thread(target=self._run, name=f"metrics-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _tick(self, batch: int) -> None:
        rnd, m = self._random, self.metrics
        for _ in range(batch):
            if rnd.random() < self.dlq_ratio:
                m.dead_letter(self.name, "schema")
                m.messages.labels(self.name, "dlq").inc()
                continue
            outcome = "error" if rnd.random() < self.error_ratio else "ok"
            m.messages.labels(self.name, outcome).inc()
            latency = max(0.001, rnd.gauss(self.latency_s, self.latency_s / 5))
            m.processing.labels(self.name).observe(latency)
            m.prediction_latency.observe(latency)
            m.prediction_score.observe(min(1.0, max(0.0, rnd.gauss(self.score_mean, 0.1))))
        self._lag = max(0, self._lag + self.lag_growth) if self.lag_growth else max(0, self._lag // 2)
        m.consumer_lag.labels(f"{self.name}-group", f"{self.name}-events", "0").set(self._lag + rnd.randint(0, 5))

    def _run(self) -> None:
        tick = 0.2
        while not self._stop.wait(tick):
            self._tick(max(1, round(self.rate * tick)))

    def stop(self) -> None:
        """Stop generating, have Prometheus forget the target, and stop serving /metrics 5 s later."""
        from helpers.platform.monitoring_services import unregister_target

        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        unregister_target(self.name)
        if self._server:  # keep answering until Prometheus has re-read its targets, or it records the target down
            timer = threading.Timer(5.0, self._server.close)
            timer.daemon = True
            timer.start()

    def __enter__(self) -> DemoSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
