"""Small Spark data helpers for the labs: events frames from tuples, a raw CSV with broken lines, and
what a partitioned Parquet output looks like on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.data.malformed import write_malformed_csv

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# ----------------------------------------------------------------------------------- on disk
@dataclass
class PartitionedOutput:
    """What a partitioned Parquet folder holds on disk, and what Spark reads back from it."""

    path: Path
    column: str
    values: list[str]
    files_per_value: dict[str, int]
    rows: int
    schema: Any

    def __str__(self) -> str:
        files = sum(self.files_per_value.values())
        shown = ", ".join(self.values[:3]) + (", ..." if len(self.values) > 3 else "")
        return (f"{self.path.name}: {len(self.values)} folders {self.column}=[{shown}], {files} Parquet "
                f"files, {self.rows:,} rows read back")


def inspect_partitioned_parquet(spark: SparkSession, path: str | Path, column: str) -> PartitionedOutput:
    """List the ``column=value`` folders of a partitioned Parquet output and read it back.

    Raises:
        FileNotFoundError: no such folder, or no ``_SUCCESS`` marker (the write did not finish).
        ValueError: no ``column=...`` folder, or a folder without Parquet files.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist: nothing was written there")
    if not (path / "_SUCCESS").exists():
        raise FileNotFoundError(f"{path} has no _SUCCESS file: the write did not complete")
    folders = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith(f"{column}="))
    if not folders:
        seen = sorted(p.name for p in path.iterdir())[:5]
        raise ValueError(f"no '{column}=...' folder in {path} (found {seen}): use .partitionBy('{column}')")
    files = {p.name.split("=", 1)[1]: len(list(p.glob("*.parquet"))) for p in folders}
    if empty := [v for v, n in files.items() if n == 0]:
        raise ValueError(f"folders without Parquet files: {empty}")
    back = spark.read.parquet(str(path))
    return PartitionedOutput(path, column, list(files), files, back.count(), back.schema)


# ------------------------------------------------------------------------------ input files
def ensure_malformed_csv(clean_parquet: str | Path, out: str | Path, n_bad: int, seed: int = 0) -> Path:
    """Write (once) a CSV copy of an events Parquet file with ``n_bad`` lines that cannot be parsed.

    The broken lines are those of :func:`helpers.data.malformed.write_malformed_csv` (too few or too many
    fields, text in a numeric column, an unparseable timestamp). A second call with the same
    arguments returns at once.

    Returns:
        The CSV's path.
    """
    import json

    import pandas as pd


    out = Path(out)
    marker = out.with_name(out.name + ".json")
    params = {"source": str(Path(clean_parquet).resolve()), "n_bad": n_bad, "seed": seed}
    if out.exists() and marker.exists() and json.loads(marker.read_text()) == params:
        return out
    events = pd.read_parquet(clean_parquet)
    events["event_time"] = events["event_time"].astype("datetime64[ns, UTC]")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    write_malformed_csv(events, tmp, n_bad=n_bad, seed=seed)
    tmp.replace(out)
    marker.write_text(json.dumps(params))
    return out


# ------------------------------------------------------------------------------ small frames
EVENT_DEFAULTS: dict[str, Any] = {"session_id": 1, "product_id": 100_000, "category": "books", "price": 10.0,
                                  "quantity": 1, "device": "mobile", "country": "US"}


def events_frame(spark: SparkSession, rows: list[tuple], columns: tuple[str, ...] = (
        "user_id", "event_time", "event_type", "amount")) -> DataFrame:
    """Build a small events DataFrame with the dataset's schema from a few hand-written rows.

    Columns not given take :data:`EVENT_DEFAULTS`; ``event_id`` numbers the rows from 1 in the
    order given, and ``event_time`` strings (``"2026-01-05 10:00:00"``) are read as UTC timestamps.

    Example::

        df = events_frame(spark, [(1, "2026-01-05 10:00:00", "purchase", 20.0),
                                  (1, "2026-01-12 10:00:00", "view", 5.0)])

    Returns:
        A DataFrame with the columns of ``events.parquet``, in the same order and types.
    """
    from pyspark.sql import functions as F

    records = []
    for i, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} values for the columns {columns}")
        record = {"event_id": i, **EVENT_DEFAULTS, **dict(zip(columns, row))}
        records.append(record)
    order = ["event_id", "event_time", "user_id", "session_id", "event_type", "product_id", "category",
             "price", "quantity", "amount", "device", "country"]
    ddl = ("event_id bigint, event_time string, user_id bigint, session_id bigint, event_type string, "
           "product_id bigint, category string, price double, quantity bigint, amount double, "
           "device string, country string")
    df = spark.createDataFrame([tuple(r[c] for c in order) for r in records], ddl)
    return df.withColumn("event_time", F.to_timestamp("event_time"))
