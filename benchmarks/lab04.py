"""Lab 04 benchmarks (``make bench`` finds this module): the quality gate on a large batch.

Measures generating and writing the lab's batches at ``rows`` rows (1,000,000 by default), importing
Great Expectations, and the gate end to end (read the file, validate, verdict) on CSV and Parquet.
The gate runs the suite saved by Lab 04's notebook (``.state/lab04/suites/training_data.json``): run
the notebook once first, otherwise the gate figures are skipped with a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from helpers.platform.config import state_dir

Record = Callable[[str, float, str], None]


def suite_file():
    """The suite the notebook saves (the gate needs a suite; the lab's answer is not shipped in helpers)."""
    return state_dir() / "lab04" / "suites" / "training_data.json"


def run(record: Record, rows: int) -> None:
    """Print the figures through ``record(name, value, unit)``."""
    from helpers.data.quality_batches import ensure_training_data

    t0 = time.perf_counter()
    csv_paths = ensure_training_data(rows=rows, fmt="csv")
    record(f"lab04: generate + write 3 batches of {rows:,} rows as CSV (cached after)", time.perf_counter() - t0, "s")
    t0 = time.perf_counter()
    parquet_paths = ensure_training_data(rows=rows, fmt="parquet")
    record("lab04: same as Parquet (cached after)", time.perf_counter() - t0, "s")

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  - the gate's first cost in a fresh process

    record("lab04: import great_expectations", time.perf_counter() - t0, "s")
    suite = suite_file()
    if not suite.is_file():
        print(f"  lab04: no suite at {suite}: run notebooks/lab04/04_data_quality.ipynb once; gate skipped")
        return
    from helpers.quality.gate import run_gate
    from helpers.quality.suites import load_suite

    n_expectations = len(load_suite(suite).expectations)
    for fmt, paths in (("csv", csv_paths), ("parquet", parquet_paths)):
        for name in ("new_batch", "clean_batch"):
            result = run_gate(paths[name], suite)
            verdict = "pass" if result.passed else f"fail, {len(result.failures)} failing"
            record(f"lab04: gate {name}.{fmt}, {rows:,} rows, {n_expectations} expectations ({verdict})",
                   result.seconds, "s")
            record(f"lab04: gate {name}.{fmt} throughput", result.rows / result.seconds, "rows/s")
