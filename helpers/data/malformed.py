"""Broken input on purpose: CSV lines with too few or too many fields or non-numeric values, and JSON
events with missing fields, wrong types or bad timestamps, for the labs' error handling.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.data.tables import write_table

# ------------------------------------------------------------- malformed input for the labs
MALFORMED_KINDS = ("too_few_fields", "too_many_fields", "non_numeric_price", "non_numeric_quantity",
                   "bad_timestamp")


def write_malformed_csv(events: pd.DataFrame, path: str | Path, n_bad: int = 10, seed: int = 0) -> int:
    """Write ``events`` as CSV with ``n_bad`` data lines replaced by lines that cannot be parsed.

    The kinds cycle through :data:`MALFORMED_KINDS` (wrong field count, text in a numeric column,
    an unparseable timestamp). Returns the number of malformed lines; the rest parse cleanly.
    """
    path = Path(path)
    if not 0 <= n_bad <= len(events):
        raise ValueError("n_bad must be between 0 and len(events)")
    with tempfile.TemporaryDirectory() as tmp:
        text = write_table(events, Path(tmp) / "events.csv").read_text()
    lines = text.splitlines()
    header = lines[0].split(",")
    bad_lines = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(lines)), n_bad, replace=False))
    for i, line_no in enumerate(bad_lines):
        fields = lines[line_no].split(",")
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        if kind == "too_few_fields":
            fields = fields[: len(fields) // 2]
        elif kind == "too_many_fields":
            fields = fields + ["EXTRA", "FIELDS"]
        else:
            column, junk = {"non_numeric_price": ("price", "abc"), "non_numeric_quantity": ("quantity", "two"),
                            "bad_timestamp": ("event_time", "yesterday 25:61")}[kind]
            fields[header.index(column)] = junk
        lines[line_no] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return n_bad


def event_records(events: pd.DataFrame, malformed_fraction: float = 0.0, seed: int = 0) -> list[dict[str, Any]]:
    """Return events as JSON-ready dicts for a Kafka producer (``event_time`` as ISO-8601 ``...Z``).

    Args:
        events: an events frame (or a slice of one: converting a million rows takes seconds).
        malformed_fraction: share of records broken for a dead-letter-queue exercise: a missing
            ``user_id``, a text ``price``, an unparseable ``event_time`` or a null ``event_type``.
        seed: picks which records are broken.

    Returns:
        One dict per row, in order; NaN/NaT become ``None``.
    """
    df = events.copy()
    df["event_time"] = df["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    rng = np.random.default_rng(seed)
    n_bad = int(round(malformed_fraction * len(records)))
    for i, r in enumerate(rng.choice(len(records), n_bad, replace=False)):
        if i % 4 == 0:
            del records[r]["user_id"]
        else:
            key, junk = [("price", "abc"), ("event_time", "not-a-time"), ("event_type", None)][i % 4 - 1]
            records[r][key] = junk
    return records
