"""``make bench`` figures for Lab 03: Kafka throughput, the feature engineer's throughput, end-to-end latency.

- producer and consumer throughput of ~200-byte JSON events (kafka-python, acks=all, idempotent);
- the feature engineer (validation + event-time windows) alone, in process, and through Kafka with
  :func:`helpers.streaming.stream.run_stream` (consume, process, produce, commit after each batch);
- end-to-end latency at a fixed rate (default 1,000 events/s for 60 s): each event carries its
  **intended** send time, and latency is measured from it (no coordinated omission) to (a) the feature
  record handed to the producer and (b) the feature record received by a downstream consumer.

The feature engineer is the lab's answer, so it is **not** in ``helpers/``: it is read from the
solution cells of ``notebooks/lab03/03_kafka_streaming.ipynb`` at run time (a released notebook with
stubs gives no feature-engineer figures). ``WORKBOOK_BENCH_LATENCY_S`` and ``WORKBOOK_BENCH_RATE``
change the latency run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks import cells
from helpers.platform.config import REPO_ROOT, kafka_bootstrap_servers

NOTEBOOK = REPO_ROOT / "notebooks" / "lab03" / "03_kafka_streaming.ipynb"
CELLS = ("windows_setup", "validation_setup", "task_2_1", "task_2_2", "task_3_1")


def load_solution(path: Path = NOTEBOOK) -> dict[str, Any]:
    """Execute the lab's window/engineer/validation cells and return their namespace."""
    from helpers.streaming.stream import PoisonMessage

    return cells.load_cells(path, CELLS, {"json": json, "datetime": datetime, "timedelta": timedelta,
                                          "timezone": timezone, "defaultdict": defaultdict,
                                          "PoisonMessage": PoisonMessage, "__name__": "lab03"})


def _events(n: int, seed: int = 1, now: bool = False) -> list[dict]:
    """``n`` JSON-ready events of about 200 bytes (a few columns of the course's dataset dropped)."""
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.data.malformed import event_records

    events = generate_ecommerce(rows=n, seed=seed, days=3, progress=False).events
    records = event_records(events.drop(columns=["session_id", "product_id", "device"]))
    if now:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        records = [{**r, "event_time": stamp} for r in records]
    return records


def _pipeline(solution: dict[str, Any]) -> Callable[[bytes], list]:
    engineer = solution["FeatureEngineer"]()
    validate = solution["validate_event"]

    def process(raw: bytes) -> list:
        event = validate(raw, max_bytes=4_096)
        features = engineer.process(event)
        if features is None:
            return []
        if "sent_at" in event:
            features["sent_at"] = event["sent_at"]
            features["emitted_at"] = time.time()
        return [(str(features["user_id"]), features)]

    return process


def bench_throughput(record: Callable[[str, float, str], None], n: int, solution: dict[str, Any] | None) -> None:
    """Producer, consumer, engineer-in-process and engineer-through-Kafka throughput over ``n`` events."""
    from kafka import KafkaConsumer, KafkaProducer

    from helpers.kafka.admin import ensure_topic
    from helpers.kafka.clients import CONSUMER_BOUNDS, PRODUCER_BOUNDS, unique_topic
    from helpers.streaming.stream import run_stream

    records = _events(n)
    payloads = [json.dumps(r).encode() for r in records]
    record("lab03: event size (JSON)", sum(map(len, payloads)) / n, "bytes")
    topic, sink, dlq = unique_topic("bench-lab03-events"), unique_topic("bench-lab03-features"), unique_topic("bench-lab03-dlq")
    ensure_topic(topic, 6)
    ensure_topic(sink, 6)
    ensure_topic(dlq, 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap_servers(), acks="all", enable_idempotence=True,
                             linger_ms=5, batch_size=256 * 1024, **PRODUCER_BOUNDS)
    try:
        t0 = time.perf_counter()
        for r, raw in zip(records, payloads):
            producer.send(topic, key=str(r["user_id"]).encode(), value=raw)
        producer.flush(timeout=60)
        record(f"lab03: produce {n:,} events (acks=all, idempotent)", n / (time.perf_counter() - t0), "events/s")
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap_servers(), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5_000,
                             fetch_max_bytes=50 * 1024 * 1024, max_poll_records=5_000, **CONSUMER_BOUNDS)
    try:
        got, t0 = 0, time.perf_counter()
        for _ in consumer:
            got += 1
            if got >= n:
                break
        record(f"lab03: consume {got:,} events (no processing)", got / (time.perf_counter() - t0), "events/s")
    finally:
        consumer.close()
    if solution is None:
        return
    process = _pipeline(solution)
    t0 = time.perf_counter()
    for raw in payloads:
        process(raw)
    record("lab03: feature engineer in process (validate + windows)", n / (time.perf_counter() - t0), "events/s")
    stats = run_stream(_pipeline(solution), topic, group_id=unique_topic("bench-lab03"), sink_topic=sink,
                       dlq_topic=dlq, max_messages=n, max_poll_records=2_000, idle_timeout_s=30,
                       producer_config={"linger_ms": 5, "batch_size": 256 * 1024})
    record(f"lab03: feature engineer through Kafka ({stats.consumed:,} in, {stats.emitted:,} out, commit per batch)",
           stats.consumed / stats.seconds, "events/s")
    bench_scale_out(record, topic, n, members=int(os.environ.get("WORKBOOK_BENCH_MEMBERS", "2")))


def bench_scale_out(record: Callable[[str, float, str], None], topic: str, n: int, members: int) -> None:
    """The same engineer as ``members`` processes of one group over ``topic`` (6 partitions), until lag 0.

    Timed from the moment every member owns partitions (process start-up excluded) to lag 0.
    """
    from helpers.kafka.admin import consumer_lag, ensure_topic, group_members
    from helpers.kafka.clients import unique_topic
    from helpers.streaming.group import ConsumerGroup

    sink, dlq, group_id = unique_topic("bench-lab03-scale"), unique_topic("bench-lab03-scale-dlq"), unique_topic("bench-lab03-scale")
    ensure_topic(sink, 6)
    ensure_topic(dlq, 1)
    with ConsumerGroup(topic, group_id, sink, dlq, process="benchmarks.streaming:worker_process",
                       max_poll_records=2_000) as group:
        for i in range(members):
            group.start(f"engine{i + 1}")
        deadline = time.time() + 60
        while len([m for m, parts in group_members(group_id).items() if parts]) < members and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.perf_counter()
        remaining = done = sum(consumer_lag(group_id, topic).values())  # what is left once all have joined
        while done and time.time() < deadline + 120:
            time.sleep(0.1)
            done = sum(consumer_lag(group_id, topic).values())
        seconds = time.perf_counter() - t0
    record(f"lab03: feature engineer through Kafka, {members} processes in one group ({remaining:,} events)",
           remaining / seconds, "events/s")


_WORKER_PIPELINE: Callable[[bytes], list] | None = None


def worker_process(raw: bytes) -> list:
    """The latency run's engine, in its own process (``helpers.streaming.group`` member): the lab's pipeline."""
    global _WORKER_PIPELINE
    if _WORKER_PIPELINE is None:
        _WORKER_PIPELINE = _pipeline(load_solution())
    return _WORKER_PIPELINE(raw)


def bench_latency(record: Callable[[str, float, str], None], rate: float, seconds: float) -> None:
    """Send at ``rate``/s for ``seconds``; latency from the intended send time to the feature record.

    Three processes' worth of roles, as in production: this process produces (at the intended times)
    and reads ``features`` downstream in a thread; the feature engineer runs in its own process.
    """
    import numpy as np
    from kafka import KafkaConsumer

    from helpers.kafka.admin import consumer_lag, ensure_topic
    from helpers.kafka.clients import CONSUMER_BOUNDS, unique_topic
    from helpers.streaming.group import ConsumerGroup
    from helpers.streaming.scenario import produce_at_rate

    n = int(rate * seconds)
    records = _events(n, seed=2, now=True)
    topic, sink, dlq = unique_topic("bench-lab03-lat"), unique_topic("bench-lab03-lat-features"), unique_topic("bench-lab03-lat-dlq")
    ensure_topic(topic, 6)
    ensure_topic(sink, 1)
    ensure_topic(dlq, 1)
    stop = threading.Event()
    received: dict[int, float] = {}
    emitted: dict[int, float] = {}
    sent_at: dict[int, float] = {}

    def downstream() -> None:
        consumer = KafkaConsumer(sink, bootstrap_servers=kafka_bootstrap_servers(), group_id=None,
                                 auto_offset_reset="earliest", enable_auto_commit=False, **CONSUMER_BOUNDS)
        try:
            while not stop.is_set():
                for messages in consumer.poll(timeout_ms=100).values():
                    now = time.time()
                    for msg in messages:
                        value = json.loads(msg.value)
                        if "sent_at" in value:  # not the warm-up event
                            received[value["event_id"]] = now
                            emitted[value["event_id"]] = value["emitted_at"]
                            sent_at[value["event_id"]] = value["sent_at"]
        finally:
            consumer.close()

    reader = threading.Thread(target=downstream, daemon=True)
    reader.start()
    group_id = unique_topic("bench-lab03-lat")
    with ConsumerGroup(topic, group_id, sink, dlq, process="benchmarks.streaming:worker_process",
                       max_poll_records=500) as engine:
        engine.start("engine")
        deadline = time.time() + 30  # the engine has joined once it committed a warm-up event
        produce_at_rate(topic, [{**records[0], "event_id": -1}], rate)
        while sum(consumer_lag(group_id, topic).values()) and time.time() < deadline:
            time.sleep(0.2)
        produce_at_rate(topic, records, rate, stamp_field="sent_at")
        deadline = time.time() + 30
        while len(received) < n and time.time() < deadline:
            time.sleep(0.2)
    stop.set()
    reader.join(timeout=30)
    ids = sorted(received)
    if not ids:
        raise RuntimeError(f"no feature arrived downstream; the engine's log:\n{engine.log('engine')[-2000:]}")
    to_emit = np.array([emitted[i] - sent_at[i] for i in ids]) * 1000
    to_consumer = np.array([received[i] - sent_at[i] for i in ids]) * 1000
    record(f"lab03: latency run: features for {len(ids):,} of {n:,} events at {rate:,.0f}/s for {seconds:.0f} s",
           len(ids), "events")
    for label, values in (("produce -> feature emitted", to_emit), ("produce -> feature consumed downstream", to_consumer)):
        for q in (50, 99):
            record(f"lab03: latency {label}, p{q}", float(np.percentile(values, q)), "ms")
    record("lab03: latency produce -> feature consumed downstream, max", float(to_consumer.max()), "ms")


def run(record: Callable[[str, float, str], None], rows: int) -> None:
    """``make bench`` entry point: throughput over min(rows, 50,000) events, then the latency run."""
    from helpers.platform.kafka_broker import start_broker

    start_broker()
    try:
        solution = load_solution()
        _pipeline(solution)(json.dumps(_events(10)[0]).encode())
    except NotImplementedError:
        print("  lab03: the notebook's answers are stubs: feature-engineer figures skipped")
        solution = None
    bench_throughput(record, min(rows, 50_000), solution)
    rate, seconds = float(os.environ.get("WORKBOOK_BENCH_RATE", "1000")), float(os.environ.get("WORKBOOK_BENCH_LATENCY_S", "60"))
    if solution is not None:
        bench_latency(record, rate, seconds)
    # Lab 05's serving pipeline (features -> model -> predictions) is benchmarks.serving: --only serving


if __name__ == "__main__":
    from benchmarks.run import record

    run(record, 50_000)
