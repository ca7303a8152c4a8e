"""Time the e-commerce generator alone, then writing its events as Parquet and as CSV."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from helpers.data.ecommerce import generate_ecommerce
from helpers.data.tables import write_table


def benchmark_generation(rows: int = 1_000_000, seed: int = 42) -> dict[str, float]:
    """Time generation alone, then writing the events table as Parquet and as CSV (to a temp folder).

    Returns:
        ``rows``, ``generate_s``, ``generate_rows_per_s``, ``parquet_write_s``, ``parquet_rows_per_s``,
        ``parquet_mb``, ``csv_write_s``, ``csv_rows_per_s``, ``csv_mb``.
    """
    t0 = time.perf_counter()
    events = generate_ecommerce(rows, seed, progress=False).events
    seconds = time.perf_counter() - t0
    result: dict[str, float] = {"rows": rows, "generate_s": seconds, "generate_rows_per_s": rows / seconds}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("parquet", "csv"):
            t0 = time.perf_counter()
            path = write_table(events, Path(tmp) / f"events.{fmt}")
            seconds = time.perf_counter() - t0
            result.update({f"{fmt}_write_s": seconds, f"{fmt}_rows_per_s": rows / seconds,
                           f"{fmt}_mb": path.stat().st_size / 1e6})
    return result
