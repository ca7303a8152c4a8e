"""``make bench``: print the figures that tell whether the workbook is fast enough on a laptop.

Each figure is measured, printed and returned; none is asserted (a noisy machine would make a timed
assert flake). Run with ``python -m benchmarks [--rows N] [--skip airflow,spark,...]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

FIGURES: list[tuple[str, float, str]] = []


def record(name: str, value: float, unit: str) -> None:
    FIGURES.append((name, value, unit))
    print(f"  {name:<60} {value:>12,.2f} {unit}", flush=True)


def bench_kafka(messages: int = 20_000) -> None:
    """Cold start of a second broker in a scratch folder, and JSON produce/consume throughput."""
    from helpers.kafka.admin import ensure_topic
    from helpers.kafka.clients import consume_json, produce_json
    from helpers.platform import config
    from helpers.platform.kafka_broker import start_broker, stop_broker

    if not config.external_kafka():
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(
                os.environ, WORKBOOK_JARS=str(config.jars_dir()), WORKBOOK_STATE=tmp,
                WORKBOOK_KAFKA_PORT="29192"):
            t0 = time.perf_counter()
            start_broker()
            record("kafka: cold start, fresh storage", time.perf_counter() - t0, "s")
            t0 = time.perf_counter()
            stop_broker()
            record("kafka: clean stop", time.perf_counter() - t0, "s")
    start_broker()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    ensure_topic(topic, partitions=2)
    records = [{"event_id": i, "user_id": i % 997, "amount": i * 0.01} for i in range(messages)]
    t0 = time.perf_counter()
    produce_json(topic, records, key_field="user_id")
    record(f"kafka: produce {messages:,} JSON events", messages / (time.perf_counter() - t0), "msg/s")
    t0 = time.perf_counter()
    got = consume_json(topic, max_records=messages, timeout_s=10)
    record(f"kafka: consume {len(got):,} JSON events", len(got) / (time.perf_counter() - t0), "msg/s")


def bench_data(rows: int) -> None:
    """Generation of the e-commerce dataset, and its Parquet/CSV writes."""
    from benchmarks.generation import benchmark_generation

    figures = benchmark_generation(rows)
    record(f"data: generate {rows:,} events", figures["generate_s"], "s")
    for fmt in ("parquet", "csv"):
        if f"{fmt}_write_s" in figures:
            record(f"data: write events as {fmt}", figures[f"{fmt}_write_s"], "s")


def bench_spark(rows: int) -> None:
    """SparkSession start-up and one aggregation over the generated dataset."""
    from pyspark.sql import functions as F

    from helpers.data.files import ensure_dataset
    from helpers.spark.session import get_spark

    t0 = time.perf_counter()
    spark = get_spark("module05-bench")
    record("spark: session start (local[*])", time.perf_counter() - t0, "s")
    path = ensure_dataset(rows=rows, formats=("parquet",), progress=False)["events.parquet"]
    t0 = time.perf_counter()
    (spark.read.parquet(str(path)).groupBy("category")
     .agg(F.sum("amount").alias("revenue"), F.countDistinct("user_id").alias("users")).collect())
    record(f"spark: revenue+distinct users by category, {rows:,} rows", time.perf_counter() - t0, "s")


def bench_airflow() -> None:
    """Airflow metadata DB set-up and one in-process run of a two-task DAG."""
    from helpers.airflow.runner import run_dag
    from helpers.airflow.setup import setup_airflow

    t0 = time.perf_counter()
    setup_airflow()
    record("airflow: setup (migrate once, then reuse)", time.perf_counter() - t0, "s")
    dag_file = Path(__file__).resolve().parent.parent / "notebooks" / "lab00" / "dags"
    files = sorted(dag_file.glob("*.py"))
    if not files:
        print("  airflow: no DAG file in notebooks/lab00/dags, skipped")
        return
    for label in ("first run in a process", "second run"):
        t0 = time.perf_counter()
        result = run_dag(files[0])
        record(f"airflow: {result.dag_id}, {label} ({result.state})", time.perf_counter() - t0, "s")


BENCHES: dict[str, Callable[[int], None]] = {
    "kafka": lambda rows: bench_kafka(),
    "data": bench_data,
    "spark": bench_spark,
    "airflow": lambda rows: bench_airflow(),
}


def lab_benches() -> dict[str, Callable[[int], None]]:
    """Each lab's benchmarks: the modules of this package with ``run(record, rows)`` (``lab01``, ``streaming``...).

    A lab adds its own module (so labs don't edit this file); ``record(name, value, unit)`` prints
    and keeps one figure.
    """
    found: dict[str, Callable[[int], None]] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).resolve().parent)]), key=lambda m: m.name):
        if info.name not in ("run", "generation", "__main__"):
            module = importlib.import_module(f"benchmarks.{info.name}")
            if not hasattr(module, "run"):  # a helper module (cells, serving): run by a lab's module
                continue
            found[info.name] = (lambda m: lambda rows: m.run(record, rows))(module)
    return found


def main(argv: list[str] | None = None) -> int:
    benches = {**BENCHES, **lab_benches()}
    parser = argparse.ArgumentParser(description="Print the workbook's benchmark figures.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="comma-separated: " + ",".join(benches))
    parser.add_argument("--only", default="", help="comma-separated: run only these")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"Benchmarks on {os.cpu_count()} cores ({time.strftime('%Y-%m-%d %H:%M')}):")
    for name, bench in benches.items():
        if name not in skip and (not only or name in only):
            bench(args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
