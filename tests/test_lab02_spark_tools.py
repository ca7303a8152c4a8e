"""Lab 02's plumbing (helpers.spark, benchmarks.lab02) against a live local Spark session.

Lab 02's notebook reads its dataset size from ``WORKBOOK_LAB_ROWS`` (1M for learners; ``conftest.py``
sets 200,000 rows for the whole test session).
"""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.sql import functions as F

from benchmarks import lab02 as bench_lab02
from helpers.data.files import ensure_dataset
from helpers.data.malformed import MALFORMED_KINDS
from helpers.feedback.code_checks import code_feedback, collect_calls, udf_definitions
from helpers.spark.frames import ensure_malformed_csv, events_frame, inspect_partitioned_parquet
from helpers.spark.pipeline import run_pipeline, spark_conf
from helpers.spark.plans import plan_operators, python_udf_nodes
from helpers.viz import times_chart


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, str]:
    return {k: str(v) for k, v in ensure_dataset(5_000, seed=3, progress=False).items()}


def test_spark_conf_applies_and_restores(spark):
    spark.conf.set("spark.sql.shuffle.partitions", "8")
    spark.conf.unset("spark.sql.files.maxRecordsPerFile")
    with spark_conf(spark, {"spark.sql.shuffle.partitions": "3", "spark.sql.files.maxRecordsPerFile": "7"}):
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.conf.get("spark.sql.files.maxRecordsPerFile") == "7"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "8"
    assert spark.conf.get("spark.sql.files.maxRecordsPerFile") == "0"  # back to the default
    with pytest.raises(ValueError, match="cannot change"):
        with spark_conf(spark, {"spark.driver.memory": "1g"}):
            pass


def test_run_pipeline_runs_every_output_under_its_settings(spark, small):
    seen = {}

    def pipeline(spark, paths):
        seen["partitions"] = spark.conf.get("spark.sql.shuffle.partitions")
        events = spark.read.parquet(paths["events.parquet"])
        return {"per_type": events.groupBy("event_type").count(), "rows": events.select("event_id")}

    run = run_pipeline(pipeline, spark, small, label="tiny", conf={"spark.sql.shuffle.partitions": "2"},
                       progress=False)
    assert seen["partitions"] == "2" and spark.conf.get("spark.sql.shuffle.partitions") != "2"
    assert list(run.output_seconds) == ["per_type", "rows"] and run.seconds >= sum(run.output_seconds.values())
    assert "tiny" in str(run)
    with pytest.raises(TypeError, match="DataFrame"):
        run_pipeline(lambda: {"oops": [1, 2]}, progress=False)


def test_plan_operators_tell_joins_caches_and_sources_apart(spark, small):
    events = spark.read.parquet(small["events.parquet"])
    users = spark.read.parquet(small["users.parquet"])
    with spark_conf(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1", "spark.sql.adaptive.enabled": "false"}):
        merged = plan_operators(events.join(users, "user_id"))
        broadcast = plan_operators(events.join(F.broadcast(users), "user_id"))
    assert "SortMergeJoin" in merged and "BroadcastHashJoin" not in merged
    assert "BroadcastHashJoin" in broadcast and "SortMergeJoin" not in broadcast
    assert any(op.startswith("FileScan parquet") for op in broadcast), broadcast
    cached = events.filter(F.col("event_type") == "purchase").cache()
    try:
        assert "InMemoryTableScan" in plan_operators(cached.groupBy("category").count())
    finally:
        cached.unpersist()


def test_python_udfs_are_found_in_plans_and_sources(spark):
    from pyspark.sql.functions import udf

    df = spark.range(5)
    plus_one = udf(lambda x: x + 1, "long")
    assert python_udf_nodes(df.withColumn("y", plus_one("id"))) in (["BatchEvalPython"], ["ArrowEvalPython"])
    assert python_udf_nodes(df.withColumn("y", F.col("id") + 1)) == []

    def uses_udf(frame):
        double = F.udf(lambda x: 2 * x, "long")
        return frame.withColumn("y", double("id"))

    def pulls_rows(frame):
        rows = frame.collect()
        return frame.sparkSession.createDataFrame(frame.toPandas()), rows

    assert len(udf_definitions(uses_udf)) == 1 and udf_definitions(pulls_rows) == []
    assert [c.split(": ")[1] for c in collect_calls(pulls_rows)] == [".collect()", ".toPandas()"]
    assert collect_calls(uses_udf) == []
    lines = code_feedback({"uses_udf": uses_udf, "pulls_rows": pulls_rows}, {"udf_frame": uses_udf(df)})
    assert len(lines) == 4 and any("EvalPython" in line for line in lines)


def test_events_frame_matches_the_dataset_schema(spark, small):
    tiny = events_frame(spark, [(1, "2026-01-05 10:00:00", "purchase", 20.0), (2, "2026-01-06 00:00:00", "view", 1.5)])
    assert tiny.dtypes == spark.read.parquet(small["events.parquet"]).dtypes
    rows = tiny.select("event_id", F.date_format("event_time", "yyyy-MM-dd HH:mm:ss").alias("t")).collect()
    assert [tuple(r) for r in rows] == [(1, "2026-01-05 10:00:00"), (2, "2026-01-06 00:00:00")]  # read as UTC
    with pytest.raises(ValueError, match="row 1"):
        events_frame(spark, [(1, "2026-01-05 10:00:00")])


def test_malformed_csv_is_written_once_and_every_bad_line_is_countable(spark, small, tmp_path):
    out = tmp_path / "raw.csv"
    path = ensure_malformed_csv(small["events.parquet"], out, n_bad=15, seed=1)
    first_write = path.stat().st_mtime_ns
    assert ensure_malformed_csv(small["events.parquet"], out, n_bad=15, seed=1).stat().st_mtime_ns == first_write
    assert sum(1 for _ in open(path)) == 5_001
    ddl = ("event_id long, event_time timestamp, user_id long, session_id long, event_type string, product_id long, "
           "category string, price double, quantity int, amount double, device string, country string, "
           "_corrupt_record string")
    df = spark.read.csv(str(path), header=True, schema=ddl, columnNameOfCorruptRecord="_corrupt_record").cache()
    try:
        assert df.count() == 5_000 and df.filter(F.col("_corrupt_record").isNotNull()).count() == 15
    finally:
        df.unpersist()
    assert len(MALFORMED_KINDS) == 5  # 15 lines: each kind three times
    ensure_malformed_csv(small["events.parquet"], out, n_bad=5, seed=1)
    assert sum(1 for line in open(path) if "EXTRA,FIELDS" in line) == 1  # new arguments: rewritten


def test_partitioned_output_is_listed_and_read_back(spark, small, tmp_path):
    events = spark.read.parquet(small["events.parquet"]).withColumn("event_date", F.to_date("event_time"))
    events.write.partitionBy("event_date").parquet(str(tmp_path / "out"))
    report = inspect_partitioned_parquet(spark, tmp_path / "out", "event_date")
    days = sorted(str(d) for d in pd.read_parquet(small["events.parquet"])["event_time"].dt.date.unique())
    assert report.values == days and report.rows == 5_000
    assert report.schema["event_date"].dataType.simpleString() == "date"
    assert "30 folders" in str(report) or f"{len(days)} folders" in str(report)
    with pytest.raises(ValueError, match="partitionBy"):
        inspect_partitioned_parquet(spark, tmp_path / "out", "day")
    with pytest.raises(FileNotFoundError):
        inspect_partitioned_parquet(spark, tmp_path / "nothing", "event_date")
    (tmp_path / "out" / "_SUCCESS").unlink()
    with pytest.raises(FileNotFoundError, match="_SUCCESS"):
        inspect_partitioned_parquet(spark, tmp_path / "out", "event_date")


def test_times_chart_draws_one_bar_per_run():
    import matplotlib

    matplotlib.use("Agg")
    ax = times_chart({"naive": 30.0, "optimized": 5.0})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["optimized", "naive"]
    assert any("6.0× faster" in t.get_text() for t in ax.texts)


def test_bench_compares_the_same_queries_in_spark_and_duckdb(spark, small):
    """The DuckDB queries of `make bench` return what the lab's pipelines return, on the same files."""
    import duckdb

    code = bench_lab02.load_cells()
    sql = {n: q.format(events=small["events.parquet"], users=small["users.parquet"])
           for n, q in bench_lab02.duckdb_queries().items()}
    assert set(sql) == {"daily_segment_revenue", "segment_summary", "window_features"}
    with spark_conf(spark, code["optimized_conf"]()):
        spark_out = {n: sorted(tuple(r) for r in df.collect())
                     for n, df in code["optimized_pipeline"](spark, small).items()}
        naive_out = {n: sorted(tuple(r) for r in df.collect()) for n, df in code["naive_pipeline"](spark, small).items()}
        features = code["add_rolling_spend"](code["add_temporal_features"](spark.read.parquet(small["events.parquet"])))
        window = features.agg(F.count("*"), F.count("days_since_prev_event"), F.sum("spend_7d"), F.sum("spend_30d")).first()
    spark.catalog.clearCache()
    assert not code["result_differences"](spark_out, naive_out)
    with duckdb.connect() as con:
        for name in ("daily_segment_revenue", "segment_summary"):
            duck = sorted(tuple(r) for r in con.execute(sql[name]).fetchall())
            keys = 2 if name == "daily_segment_revenue" else 1
            assert [r[:keys] for r in duck] == [r[:keys] for r in spark_out[name]], name
            for got, want in zip(duck, spark_out[name]):
                assert got[keys:] == pytest.approx(want[keys:], abs=0.011), (name, got, want)
        n, gaps, s7, s30 = con.execute(sql["window_features"]).fetchone()
    assert (n, gaps) == (window[0], window[1]) and s7 == pytest.approx(window[2]) and s30 == pytest.approx(window[3])
