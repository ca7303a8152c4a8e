"""``make bench`` figures for Lab 05's streaming inference: events -> features -> champion model -> predictions.

``python -m benchmarks --only serving`` (part of ``make bench``). For each Kafka client
of the serving path (kafka-python, what the labs use; confluent-kafka, librdkafka), side by side:

- **latency at a fixed rate** (default 1,000 events/s for 60 s): each event carries its *intended* send
  time, and latency runs from it (no coordinated omission) to the prediction read downstream; p50 /
  p99 / max, the per-hop split and a histogram;
- **sustained throughput** through both stages: a backlog of events, timed until the last prediction;
- **scale-out**: N = 1, 2, 3 model-server processes in one group draining a backlog of feature records
  (throughput vs N, consumer lag over time: a PNG + JSON in the run's log folder);
- **fail-over** of the 3-node cluster: the leader of a busy partition SIGKILLed, the pause and the audit.

The stages are the real processes (``python -m helpers.serving``) with a small model registered in a
throw-away MLflow registry, driven by :mod:`helpers.serving.load` (the capstone uses the same). The
event source and the downstream reader use confluent-kafka for every run, so only the pipeline's client
differs. The 1-minute load average is printed beside each run (the 2 cores are shared: compare runs at
similar load). ``python -m benchmarks --only serving``; ``WORKBOOK_BENCH_RATE``, ``WORKBOOK_BENCH_LATENCY_S``,
``WORKBOOK_BENCH_SERVING_BACKLOG``, ``WORKBOOK_BENCH_CLIENTS``, ``WORKBOOK_BENCH_MEMBERS_SERVING``
(``1,2,3``; empty: no scale-out) and ``WORKBOOK_BENCH_SCALE_BACKLOG`` (100,000 feature records) change the runs.
"""

from __future__ import annotations

import os
import tempfile
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


def load_average() -> str:
    """The machine's 1-minute load average (other developers' runs share the 2 cores: read figures beside it)."""
    return f"{os.getloadavg()[0]:.1f}"


def latency_figures(record: Record, label: str, got: list[tuple[float, dict]]) -> dict[str, float]:
    """p50 / p99 / max from the intended send time, the split per hop and a histogram; return the three."""
    import numpy as np

    total = np.array([at - p["sent_at"] for at, p in got]) * 1000
    figures = {"p50": float(np.percentile(total, 50)), "p99": float(np.percentile(total, 99)), "max": float(total.max())}
    for name, value in figures.items():
        record(f"{label}: intended send -> prediction read, {name}", value, "ms")
    hops = {"sender late (intended -> produce call)": ("sent_at", "produced_at"),
            "produce -> feature stage": ("produced_at", "received_at"), "feature stage": ("received_at", "features_at"),
            "features -> scored": ("features_at", "scored_at"), "scored -> read downstream": ("scored_at", None)}
    for hop, (a, b) in hops.items():
        values = np.array([(p[b] if b else at) - p[a] for at, p in got if a in p]) * 1000
        if values.size:
            print(f"  {label}: hop {hop}: p50 {np.percentile(values, 50):.2f} ms, p99 {np.percentile(values, 99):.2f} ms,"
                  f" max {values.max():.1f} ms")
    edges = np.array([0, *HISTOGRAM_MS, np.inf])
    counts, _ = np.histogram(total, bins=edges)
    print(f"  {label}: histogram " + ", ".join(
        f"<{int(edges[i + 1]) if np.isfinite(edges[i + 1]) else 'inf'} ms: {c}" for i, c in enumerate(counts)))
    return figures


def _stages(client: str, model: str, bootstrap: str, topics: dict[str, str], tag: str, logs: Path) -> list:
    from helpers.serving.processes import StageProcess

    kind = client.split("+")[0]
    if client.endswith("+fused"):
        return [StageProcess("both", logs / f"{client}.log", client=kind, group=f"b-{tag}", model=model,
                             source=topics["events"], features_topic=topics["features"], out=topics["predictions"],
                             dlq=topics["dlq"], bootstrap=bootstrap)]
    return [StageProcess("features", logs / f"{client}-features.log", client=kind, group=f"f-{tag}",
                         source=topics["events"], out=topics["features"], dlq=topics["dlq"], bootstrap=bootstrap),
            StageProcess("model", logs / f"{client}-model.log", client=kind, group=f"m-{tag}", model=model,
                         source=topics["features"], out=topics["predictions"], dlq=topics["dlq"], bootstrap=bootstrap)]


def bench_client(record: Record, client: str, model: str, bootstrap: str, rate: float, seconds: float,
                 backlog: int, logs: Path) -> dict[str, float]:
    """Latency at ``rate`` for ``seconds``, then throughput over ``backlog`` events, with ``client`` stages.

    ``client`` is ``kafka-python``, ``confluent`` (two processes, as in the lab's topology) or
    ``confluent+fused`` (both stages in one process: half the hops). Returns p50/p99/max and ``per_s``.
    """
    from helpers.serving.load import ServingLoad, run_at_rate
    from helpers.serving.topics import ensure_topics

    tag = uuid.uuid4().hex[:6]
    topics = ensure_topics({r: f"bench-{r}-{tag}" for r in ("events", "features", "predictions", "dlq")},
                           bootstrap=bootstrap, partitions=6)
    stages = _stages(client, model, bootstrap, topics, tag, logs)
    n = int(rate * seconds)
    events = _events(n + backlog + 200)
    warm, timed, bulk = events[:200], events[200:200 + n], events[200 + n:]
    label = f"serving ({client}): {rate:,.0f}/s for {seconds:.0f} s"
    figures: dict[str, float] = {}
    try:
        with ServingLoad(stages, bootstrap, topics["events"], topics["predictions"]) as load:
            before = load_average()
            run = run_at_rate(load, warm, timed, rate, warm_ids=[e["event_id"] for e in warm],
                              timed_ids=[e["event_id"] for e in timed], timeout_s=60)
            print(f"  {label}: load average {before} -> {load_average()} (1 min; 2 cores shared)")
            record(f"{label}: predictions for {len(run.got):,} of {n:,} events", len(run.got), "events")
            if run.got:
                figures.update(latency_figures(record, label, run.got))
            if backlog:
                t0 = time.perf_counter()
                load.send(bulk, None)
                load.wait_for([e["event_id"] for e in bulk], 300)
                seconds_bulk = time.perf_counter() - t0
                done = len(load.got) - len(warm) - n
                figures["per_s"] = done / seconds_bulk
                record(f"serving ({client}): {done:,} backlogged events through both stages (load {load_average()})",
                       figures["per_s"], "events/s")
    finally:
        for stage in stages:
            print(f"  serving ({client}): {stage.log().strip().splitlines()[-1][:400] if stage.log().strip() else '(no log)'}")
    return figures


def feature_records(events: list[dict]) -> list[tuple[bytes | None, bytes]]:
    """``(key, value)`` of the feature record of each valid event, computed in process by the feature stage."""
    import orjson

    from helpers.serving.loop import LoopStats
    from helpers.serving.stages import FeatureStage
    from helpers.serving.transport import Message

    stage = FeatureStage("features", "dlq")
    messages = [Message("events", 0, i, str(e.get("user_id")).encode(), orjson.dumps(e), []) for i, e in enumerate(events)]
    return [(key, value) for topic, key, value, _ in stage(messages, LoopStats()) if topic == "features"]


def group_lag(consumer: object, group_topic: str) -> int:
    """Records of ``group_topic`` not committed yet by the consumer's group (high watermark - committed)."""
    from confluent_kafka import TopicPartition

    parts = [TopicPartition(group_topic, p) for p in consumer.list_topics(group_topic, timeout=10).topics[group_topic].partitions]
    done = {tp.partition: max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)}
    return sum(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] - done[tp.partition] for tp in parts)


def bench_scaling(record: Record, model: str, bootstrap: str, backlog: int, logs: Path,
                  members: tuple[int, ...] = (1, 2, 3)) -> dict[int, dict]:
    """N model-server processes in one group (6 partitions) drain ``backlog`` feature records: rate and lag over time.

    The features are computed once in process (so the model stage alone is measured) and written to a
    fresh topic only once all N members own partitions. The rate is what was left unconsumed right
    after the writes (all of it in the topic) over the time until the last prediction was read
    downstream. Lag (written - committed) is sampled every 0.2 s for the chart.
    """
    import orjson
    from confluent_kafka import Consumer, Producer

    from helpers.kafka.admin import group_members
    from helpers.serving.load import LATENCY_CLIENT, Downstream
    from helpers.serving.processes import StageProcess
    from helpers.serving.topics import ensure_topics

    records = feature_records(_events(backlog))
    ids = [orjson.loads(value)["event_id"] for _, value in records]
    results: dict[int, dict] = {}
    for n in members:
        tag = f"{n}-{uuid.uuid4().hex[:6]}"
        topics = ensure_topics({r: f"bench-scale-{r}-{tag}" for r in ("features", "predictions", "dlq")},
                               bootstrap=bootstrap, partitions=6)
        group = f"scale-{tag}"
        servers = [StageProcess("model", logs / f"scale-{n}-model-{i}.log", group=group, model=model, name=f"model-{i}",
                                source=topics["features"], out=topics["predictions"], dlq=topics["dlq"],
                                bootstrap=bootstrap) for i in range(1, n + 1)]
        downstream = Downstream(bootstrap, topics["predictions"])
        lag_reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        samples: list[tuple[float, int]] = []
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready(120)
            deadline = time.monotonic() + 60
            while len([m for m, parts in group_members(group).items() if parts]) < n and time.monotonic() < deadline:
                time.sleep(0.1)
            load = load_average()
            producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                 **LATENCY_CLIENT, "linger.ms": 5})
            t0, wall0 = time.perf_counter(), time.time()
            for key, value in records:
                while True:
                    try:
                        producer.produce(topics["features"], key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.flush(60)
            finish = time.monotonic() + 120
            while time.monotonic() < finish:
                samples.append((time.perf_counter() - t0, group_lag(lag_reader, topics["features"])))
                if len(downstream.got) >= len(ids) and samples[-1][1] == 0:
                    break
                time.sleep(0.2)
            read_at = [at for at, _ in downstream.got.values()]
            seconds = max(read_at) - wall0 if read_at else float("nan")  # from the first write to the last read
        finally:
            lag_reader.close()
            downstream.close()
            for server in servers:
                server.stop()
        # the drain rate: what was left right after the backlog was written (all of it in the topic,
        # every member consuming) over the time until the last prediction was read
        written_s, left = samples[0] if samples else (float("nan"), 0)
        per_s = left / (seconds - written_s) if seconds > written_s else float("nan")
        record(f"serving scale-out: {n} model server(s), {len(downstream.got):,} of {len(ids):,} scored; "
               f"{left:,} left when written ({written_s:.1f} s), drained by {seconds:.1f} s (load {load})", per_s,
               "events/s")
        results[n] = {"per_s": per_s, "seconds": seconds, "scored": len(downstream.got), "backlog": len(ids),
                      "load_average": float(load), "lag": samples}
    return results


def chart_scaling(results: dict[int, dict], path: Path) -> Path:
    """Throughput vs N and lag over time, one PNG; the figures beside it as JSON."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    ns = sorted(results)
    left.bar([str(n) for n in ns], [results[n]["per_s"] for n in ns], color="tab:blue")
    for i, n in enumerate(ns):
        left.annotate(f"{results[n]['per_s']:,.0f}/s", (i, results[n]["per_s"]), ha="center", va="bottom")
    load = ", ".join(f"{results[n]['load_average']:.1f}" for n in ns)
    left.set(xlabel="model-server processes in the group", ylabel="predictions/s (backlog drain rate)",
             title=f"Throughput vs N ({os.cpu_count()} cores, load {load})")
    for n in ns:
        t, lag = zip(*results[n]["lag"]) if results[n]["lag"] else ((), ())
        right.plot(t, lag, label=f"N = {n}")
    right.set(xlabel="seconds since the first record of the backlog was written", ylabel="consumer lag (records)",
              title=f"Lag of the model group, {results[ns[0]]['backlog']:,} records")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps({
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
        "members": {str(n): {**results[n], "lag": [[round(t, 2), lag] for t, lag in results[n]["lag"]]} for n in ns}}))
    return path


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
    """Both clients side by side, N model servers, the cluster's fail-over; one model in a throw-away registry."""
    from helpers.platform.config import kafka_bootstrap_servers, state_dir

    logs = state_dir() / "bench-serving" / time.strftime("%Y%m%d-%H%M%S")  # the stages' logs: kept for a post-mortem
    clients = os.environ.get("WORKBOOK_BENCH_CLIENTS", "kafka-python,confluent,confluent+fused").split(",")
    members = tuple(int(n) for n in os.environ.get("WORKBOOK_BENCH_MEMBERS_SERVING", "1,2,3").split(",") if n.strip())
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "WORKBOOK_CAPSTONE": tmp,
            "WORKBOOK_ALERTS_DB": f"{tmp}/alerts.db"}):
        model = register_model()
        for client in clients:
            bench_client(record, client.strip(), model, kafka_bootstrap_servers(), rate, seconds, backlog, logs)
        scale_backlog = int(os.environ.get("WORKBOOK_BENCH_SCALE_BACKLOG", "100000"))  # 30k drain in ~1 s: too short
        if members and scale_backlog:
            results = bench_scaling(record, model, kafka_bootstrap_servers(), scale_backlog, logs, members)
            print(f"  serving scale-out chart: {chart_scaling(results, logs / 'serving-scaling.png')}")
    bench_failover(record)


def run(record: Record, rows: int) -> None:
    """``python -m benchmarks --only serving``: Lab 05's serving figures (rate, length, backlog from the environment)."""
    from helpers.platform.kafka_broker import start_broker

    start_broker()
    bench_serving(record, float(os.environ.get("WORKBOOK_BENCH_RATE", "1000")),
                  float(os.environ.get("WORKBOOK_BENCH_LATENCY_S", "60")),
                  int(os.environ.get("WORKBOOK_BENCH_SERVING_BACKLOG", "30000")))
