"""Write a data frame to Parquet or CSV the way every lab reads it: typed, chunked, atomic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

CHUNK_ROWS = 100_000


def _arrow(df: pd.DataFrame, fmt: str) -> Any:
    """Convert to a pyarrow Table typed for ``fmt``: Spark-readable µs timestamps for Parquet; whole
    seconds (``2026-01-01 00:00:38Z``) and plain dates for CSV."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            if fmt == "csv" and f.type.tz is None:
                f = f.with_type(pa.date32())
            else:
                f = f.with_type(pa.timestamp("us" if fmt == "parquet" else "s", tz=f.type.tz))
        fields.append(f)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def write_table(df: pd.DataFrame, path: Path, bar: tqdm | None = None) -> Path:
    """Write ``df`` to ``path`` (``.parquet`` or ``.csv``) in chunks, atomically: a temp file in the
    same folder is renamed over ``path`` only once complete."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fmt = path.suffix.lstrip(".")
    table = _arrow(df, fmt)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
        else:
            writer = pacsv.CSVWriter(tmp, table.schema, write_options=pacsv.WriteOptions(
                quoting_style="none", quoting_header="none"))
        with writer:
            for offset in range(0, max(table.num_rows, 1), CHUNK_ROWS):
                chunk = table.slice(offset, CHUNK_ROWS)
                writer.write_table(chunk)
                if bar is not None:
                    bar.update(chunk.num_rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
