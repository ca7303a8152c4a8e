"""``make bench`` figures for Lab 05's streaming inference: events -> features -> champion model -> predictions.

Called by :mod:`benchmarks.streaming` (``python -m benchmarks --only streaming``). For each Kafka client
of the serving path (kafka-python, what the labs use; confluent-kafka, librdkafka), side by side:

- **latency at a fixed rate** (default 1,000 events/s for 60 s): each event carries its *intended* send
  time, and latency runs from it (no coordinated omission) to the prediction read downstream; p50 /
  p99 / max, the per-hop split and a histogram;
- **sustained throughput** through both stages: a backlog of events, timed until the last prediction.

The stages are the real processes (``python -m helpers.serving``) with a small model registered in a
throw-away MLflow registry. The event source and the downstream reader use confluent-kafka for both
runs, so only the pipeline's client differs. ``WORKBOOK_BENCH_RATE``, ``WORKBOOK_BENCH_LATENCY_S`` and
``WORKBOOK_BENCH_SERVING_BACKLOG`` change the runs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

Record = Callable[[str, float, str], None]
HISTOGRAM_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def register_model(rows: int = 20_000) -> str:
    """Train a small gradient-boosting model on generated events and make it the champion; return its name."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from autograder.reference.lab05a import should_promote
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.features.definitions import FEATURE_NAMES, LABEL
    from helpers.features.stream import compute_features, label_next_hour
    from helpers.registry.models import log_and_register
    from helpers.registry.promotion import promote_if_better

    raw = generate_ecommerce(rows, 3, "2026-01-01", 2, progress=False).events
    frame = compute_features(raw)
    frame[LABEL] = label_next_hour(raw.sort_values(["event_time", "event_id"], kind="stable")).to_numpy()
    x, y = frame[list(FEATURE_NAMES)].astype(float), frame[LABEL]
    with threadpool_limits(1):
        model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x, y)
    name = f"bench-serving-{uuid.uuid4().hex[:6]}"
    version = log_and_register(model, name, x).version
    promote_if_better(name, version, "roc_auc", (x, y), rule=should_promote)
    return name


def _events(n: int) -> list[dict]:
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.data.malformed import event_records

    raw = generate_ecommerce(n, 7, "2026-02-01", max(1, n // 20_000), progress=False).events
    return event_records(raw.sort_values(["event_time", "event_id"], kind="stable").head(n))


class Downstream:
    """Reads ``predictions`` in a thread: ``{event_id: (received at, prediction)}``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.got: dict[int, tuple[float, dict]] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                   "fetch.wait.max.ms": 10})
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

    def wait_for(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def source(bootstrap: str) -> object:
    """The event source's producer (made once: its idempotent id is fetched during the warm-up, not timed)."""
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0})


def produce(producer: object, topic: str, events: list[dict], rate: float | None) -> None:
    """Send ``events`` keyed by user, at ``rate``/s each stamped with its intended time (``None``: at once).

    A malformed event without a user is keyed ``None`` (it goes to the dead-letter topic downstream).
    """
    import orjson

    start = time.time() + 0.05
    for i, event in enumerate(events):
        if rate:
            at = start + i / rate
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            event = {**event, "sent_at": at}
        while True:
            try:
                producer.produce(topic, key=str(event.get("user_id")).encode(), value=orjson.dumps(event))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)


def bench_client(record: Record, client: str, model: str, bootstrap: str, rate: float, seconds: float,
                 backlog: int, logs: Path) -> None:
    """Latency at ``rate`` for ``seconds``, then throughput over ``backlog`` events, with ``client`` stages.

    ``client`` is ``kafka-python``, ``confluent`` (two processes, as in the lab's topology) or
    ``confluent+fused`` (both stages in one process: half the hops).
    """
    import numpy as np

    from helpers.serving.processes import StageProcess
    from helpers.serving.topics import ensure_topics

    tag = uuid.uuid4().hex[:6]
    topics = ensure_topics({r: f"bench-{r}-{tag}" for r in ("events", "features", "predictions", "dlq")},
                           bootstrap=bootstrap, partitions=6)
    kind, fused = client.split("+")[0], client.endswith("+fused")
    stages = [StageProcess("features", logs / f"{client}-features.log", client=kind, group=f"f-{tag}",
                           source=topics["events"], out=topics["features"], dlq=topics["dlq"], bootstrap=bootstrap),
              StageProcess("model", logs / f"{client}-model.log", client=kind, group=f"m-{tag}", model=model,
                           source=topics["features"], out=topics["predictions"], dlq=topics["dlq"],
                           bootstrap=bootstrap)]
    if fused:
        stages = [StageProcess("both", logs / f"{client}.log", client=kind, group=f"b-{tag}", model=model,
                               source=topics["events"], features_topic=topics["features"], out=topics["predictions"],
                               dlq=topics["dlq"], bootstrap=bootstrap)]
    n = int(rate * seconds)
    events = _events(n + backlog + 200)
    warm, timed, bulk = events[:200], events[200:200 + n], events[200 + n:]
    downstream = Downstream(bootstrap, topics["predictions"])
    producer = source(bootstrap)
    try:
        for stage in stages:
            stage.start()
        for stage in stages:
            stage.wait_ready(120)
        produce(producer, topics["events"], warm, 200.0)  # joins the groups, warms the caches
        downstream.wait_for(len(warm), 60)
        produce(producer, topics["events"], timed, rate)
        downstream.wait_for(len(warm) + n, 60)
        got = [downstream.got[e["event_id"]] for e in timed if e["event_id"] in downstream.got]
        label = f"serving ({client}): {rate:,.0f}/s for {seconds:.0f} s"
        record(f"{label}: predictions for {len(got):,} of {n:,} events", len(got), "events")
        if got:
            total = np.array([at - p["sent_at"] for at, p in got]) * 1000
            for q in (50, 99):
                record(f"{label}: intended send -> prediction read, p{q}", float(np.percentile(total, q)), "ms")
            record(f"{label}: intended send -> prediction read, max", float(total.max()), "ms")
            hops = {"send -> feature stage": ("sent_at", "received_at"), "feature stage": ("received_at", "features_at"),
                    "features -> scored": ("features_at", "scored_at")}
            for hop, (a, b) in hops.items():
                values = np.array([p[b] - p[a] for _, p in got]) * 1000
                record(f"{label}: hop {hop}, p50", float(np.percentile(values, 50)), "ms")
                record(f"{label}: hop {hop}, p99", float(np.percentile(values, 99)), "ms")
            edges = np.array([0, *HISTOGRAM_MS, np.inf])
            counts, _ = np.histogram(total, bins=edges)
            print(f"  {label}: histogram " + ", ".join(
                f"<{int(edges[i + 1]) if np.isfinite(edges[i + 1]) else 'inf'} ms: {c}" for i, c in enumerate(counts)))
        if backlog:
            t0 = time.perf_counter()
            produce(producer, topics["events"], bulk, None)
            downstream.wait_for(len(warm) + n + len(bulk), 300)
            seconds_bulk = time.perf_counter() - t0
            done = len(downstream.got) - len(warm) - n
            record(f"serving ({client}): {done:,} backlogged events through both stages", done / seconds_bulk,
                   "events/s")
    finally:
        downstream.close()
        for stage in stages:
            stage.stop()
            print(f"  serving ({client}): {stage.log().strip().splitlines()[-1][:400]}")


def bench_failover(record: Record) -> None:
    """The 3-node cluster: SIGKILL the leader of a busy partition (500 acks=all writes/s), the pause and the audit."""
    from helpers.platform import kafka_cluster as kc
    from helpers.serving.failover import failover_drill
    from helpers.serving.topics import ensure_topics

    ok, detail = kc.check_memory()
    if not ok:
        print(f"  cluster: skipped ({detail})")
        return
    t0 = time.perf_counter()
    bootstrap = kc.start_cluster()
    record("cluster: start 3 KRaft nodes", time.perf_counter() - t0, "s")
    try:
        topic = f"bench-drill-{uuid.uuid4().hex[:6]}"
        ensure_topics({"events": topic}, bootstrap=bootstrap, partitions=3, replication=3, min_insync=2)
        result = failover_drill(bootstrap, topic, kc.kill_node, lambda: kc.partitions(topic), rate=500, seconds=10,
                                kill_at_s=3)
        print(f"  cluster: {result}")
        record("cluster: fail-over pause after SIGKILL of the leader (longest time without an ack)", result.pause_s, "s")
        record("cluster: acknowledged records lost in the fail-over", len(result.lost), "records")
    finally:
        kc.stop_cluster()


def bench_serving(record: Record, rate: float, seconds: float, backlog: int) -> None:
    """Both clients side by side, with one model in a throw-away registry."""
    from helpers.platform.config import kafka_bootstrap_servers, state_dir

    logs = state_dir() / "bench-serving" / time.strftime("%Y%m%d-%H%M%S")  # the stages' logs: kept for a post-mortem
    clients = os.environ.get("WORKBOOK_BENCH_CLIENTS", "kafka-python,confluent,confluent+fused").split(",")
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "WORKBOOK_CAPSTONE": tmp,
            "WORKBOOK_ALERTS_DB": f"{tmp}/alerts.db"}):
        model = register_model()
        for client in clients:
            bench_client(record, client.strip(), model, kafka_bootstrap_servers(), rate, seconds, backlog, logs)
    bench_failover(record)
