"""``make bench`` figures for Lab 02: the naive and optimized Spark pipelines, and DuckDB on the same files.

For each size (``rows`` and ``10 × rows``; ``WORKBOOK_BENCH_LAB02_SIZES=1000000,10000000`` overrides)
it prints the wall time of the lab's first-draft pipeline and of the optimized one, their ratio, and
the same aggregation and window queries in DuckDB on the same Parquet files, as a Spark/DuckDB ratio.
Figures are printed, never asserted.

The pipelines are the instructor's: they are read from the source notebook's cells (``naive_pipeline``,
``task_2_1``, ``task_2_2``, ``task_3_1``), and the DuckDB queries from
``autograder/lab02_duckdb_queries.sql``; nothing here answers a task. Without those files (a learner's
copy) the benchmark says so and skips.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import cells
from helpers.platform.config import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "lab02" / "02_spark_processing.ipynb"
DUCKDB_SQL = REPO_ROOT / "autograder" / "lab02_duckdb_queries.sql"
CELLS = ("naive_pipeline", "task_2_1", "task_2_2", "task_3_1")


def load_cells(notebook: Path = NOTEBOOK, grade_ids: tuple[str, ...] = CELLS) -> dict[str, Any]:
    """Execute the lab's solution cells (definitions only) and return their namespace.

    The ``naive_pipeline`` cell ends by running the pipeline; only its definitions (the code before
    the first top-level ``print``) are kept.
    """
    from pyspark.sql import DataFrame, Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    def definitions_only(grade_id: str, source: str) -> str:
        return source.split("\nprint(", 1)[0] if grade_id == "naive_pipeline" else source

    return cells.load_cells(notebook, grade_ids, {"F": F, "T": T, "Window": Window, "DataFrame": DataFrame},
                            edit=definitions_only)


def duckdb_queries(path: Path = DUCKDB_SQL) -> dict[str, str]:
    """Return ``{name: sql}`` from the ``-- name:`` sections of the queries file."""
    parts = re.split(r"^-- name:\s*(\S+)\s*$", path.read_text(), flags=re.M)
    return {name: sql.strip().rstrip(";") for name, sql in zip(parts[1::2], parts[2::2])}


def _seconds(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(record: Callable[[str, float, str], None], rows: int) -> None:
    """Print the Lab 02 figures for ``rows`` and ``10 × rows`` events (see the module docstring)."""
    if not NOTEBOOK.exists() or not DUCKDB_SQL.exists():
        print(f"  lab02: {NOTEBOOK.name} or {DUCKDB_SQL.name} not found (learner copy?): skipped")
        return
    import duckdb
    from pyspark.sql import functions as F

    from helpers.data.files import ensure_dataset
    from helpers.spark.pipeline import run_pipeline, spark_conf
    from helpers.spark.session import get_spark

    spark = get_spark("module05-bench")
    code = load_cells()
    queries = duckdb_queries()
    env = os.environ.get("WORKBOOK_BENCH_LAB02_SIZES", "")
    sizes = [int(s) for s in env.split(",") if s.strip()] or [rows, 10 * rows]
    for size in sizes:
        paths = {k: str(v) for k, v in ensure_dataset(size, 42, progress=False).items()}
        tag = f"{size / 1e6:g}M rows"
        spark.catalog.clearCache()
        naive = run_pipeline(code["naive_pipeline"], spark, paths, conf=code["NAIVE_CONF"], progress=False)
        spark.catalog.clearCache()
        optimized = run_pipeline(code["optimized_pipeline"], spark, paths, conf=code["optimized_conf"](),
                                 progress=False)
        spark.catalog.clearCache()
        record(f"lab02 {tag}: naive pipeline (CSV, no cache, no broadcast)", naive.seconds, "s")
        record(f"lab02 {tag}: optimized pipeline (Parquet, broadcast, cache)", optimized.seconds, "s")
        record(f"lab02 {tag}: naive / optimized", naive.seconds / optimized.seconds, "x")

        def spark_windows() -> None:
            with spark_conf(spark, code["optimized_conf"]()):
                features = code["add_rolling_spend"](code["add_temporal_features"](spark.read.parquet(paths["events.parquet"])))
                features.agg(F.count("*"), F.count("days_since_prev_event"), F.sum("spend_7d"), F.sum("spend_30d")).collect()

        spark_window_s = _seconds(spark_windows)
        with duckdb.connect() as con:
            sql = {name: q.format(events=paths["events.parquet"], users=paths["users.parquet"]) for name, q in queries.items()}
            duck_agg_s = _seconds(lambda: [con.execute(sql[n]).fetchall() for n in ("daily_segment_revenue", "segment_summary")])
            duck_window_s = _seconds(lambda: con.execute(sql["window_features"]).fetchall())
        record(f"lab02 {tag}: DuckDB, the two aggregations", duck_agg_s, "s")
        record(f"lab02 {tag}: Spark optimized / DuckDB, aggregations", optimized.seconds / duck_agg_s, "x")
        record(f"lab02 {tag}: Spark, lag + 7/30-day range windows", spark_window_s, "s")
        record(f"lab02 {tag}: DuckDB, lag + 7/30-day range windows", duck_window_s, "s")
        record(f"lab02 {tag}: Spark / DuckDB, windows", spark_window_s / duck_window_s, "x")
