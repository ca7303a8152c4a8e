"""Training data with known quality problems and known drift, for the data-quality lab (Lab 04).

One row per shopping session (with a ``converted`` label), built from the course's
e-commerce generator (:mod:`helpers.data.ecommerce`). :func:`make_batch` draws a clean batch, then injects
exactly what it is told to: each problem row gets one problem only, so the expected findings of a
validator are known by construction and written to a manifest next to the CSV.

- **problems** ``{(column, rule): rows}``: ``not_null`` (a missing value), ``range`` (a value outside
  :data:`RULES`' bounds), ``category`` (a value outside the allowed set, e.g. ``"Mobile"``) and
  ``freshness`` on ``start_time`` (a session older than ``max_age`` before ``as_of``, or in the future).
- **drift** ``{column: size}``: numeric columns are multiplied by ``size``; categorical columns are
  redrawn from the mix ``size`` (a dict of shares). Allowed values and bounds still hold.

:func:`ensure_training_data` caches ``training_data.csv`` (the clean reference batch) and the
lab's new batches under ``data/generated/quality/`` with their manifests. CLI:
``python -m helpers.data.quality_batches [--rows N]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.data.ecommerce import CHANNELS, COUNTRIES, DEVICES, SEGMENTS, generate_ecommerce
from helpers.platform import config

QUALITY_DATA_VERSION = 1
"""Bumped when the batches change, so cached files are rebuilt."""
POOL_START = "2026-01-01"
POOL_MIN = 60_000

COLUMNS = ("session_id", "user_id", "start_time", "device", "channel", "country", "segment",
           "n_events", "duration_s", "avg_price", "revenue", "converted")
NUMERIC = ("n_events", "duration_s", "avg_price", "revenue")
CATEGORICAL = ("device", "channel", "country", "segment")

RULES: dict[str, Any] = {
    "not_null": ["session_id", "user_id", "start_time", "device", "channel", "country", "segment",
                 "n_events", "duration_s", "avg_price", "revenue", "converted"],
    "range": {"n_events": (1, 40), "duration_s": (0, 14_400), "avg_price": (0.5, 20_000),
              "revenue": (0, 100_000)},
    "category": {"device": list(DEVICES), "channel": list(CHANNELS), "country": list(COUNTRIES),
                 "segment": list(SEGMENTS)},
    "freshness": {"column": "start_time", "max_age_days": 30},
}
"""The data contract of the training data: what a clean batch always satisfies (nulls are counted by
``not_null`` only; ``range``, ``category`` and ``freshness`` skip missing values; bounds are inclusive)."""

# Values that break one rule each (and only that rule).
_OUT_OF_RANGE = {"n_events": (0, 250), "duration_s": (-30.0, 86_400.0), "avg_price": (0.0, 99_999.0),
                 "revenue": (-25.0, -1.0)}
_UNKNOWN = {"device": ["Mobile", "smart_tv", "desktop "], "channel": ["affiliate", "Paid", "e-mail"],
            "country": ["XX", "us", "UK"], "segment": ["platinum", "VIP", "unknown"]}


POOL_SEED = 42
"""Every batch is a sample of one population of sessions, so batches differ only by what is injected."""


@functools.lru_cache(maxsize=2)
def _pool(sessions: int) -> pd.DataFrame:
    """Return at least ``sessions`` clean sessions of the e-commerce generator (January 2026), cached."""
    events_rows = int(sessions * 4.6) + 2_000
    while True:
        data = generate_ecommerce(rows=events_rows, seed=POOL_SEED, start=POOL_START, days=30, progress=False)
        if len(data.sessions) >= sessions:
            break
        events_rows = int(events_rows * 1.2)
    s, events = data.sessions, data.events
    n_sess = len(s)
    avg_price = np.bincount(events["session_id"] - 1, weights=events["price"], minlength=n_sess) / np.bincount(
        events["session_id"] - 1, minlength=n_sess)
    segment = data.users.set_index("user_id")["segment"]
    return pd.DataFrame({
        "session_id": s["session_id"].astype("int64"), "user_id": s["user_id"].astype("int64"),
        "start_time": s["start_time"], "device": s["device"], "channel": s["channel"], "country": s["country"],
        "segment": segment.reindex(s["user_id"]).to_numpy(), "n_events": s["n_events"].astype("int64"),
        "duration_s": (s["end_time"] - s["start_time"]).dt.total_seconds(),
        "avg_price": np.round(avg_price[s["session_id"].to_numpy() - 1], 2), "revenue": s["revenue"],
        "converted": s["converted"].astype("int64")})


def _sessions(rows: int, seed: int, start: str, days: int) -> pd.DataFrame:
    """Return ``rows`` clean sessions drawn from the pool, moved to the window ``[start, start + days)``."""
    pool = _pool(max(POOL_MIN, rows))
    keep = np.sort(np.random.default_rng([seed, 1]).choice(len(pool), rows, replace=False))
    df = pool.iloc[keep].reset_index(drop=True)
    span = (df["start_time"] - pd.Timestamp(POOL_START, tz="UTC")) * (days / 30)
    df["start_time"] = (pd.Timestamp(start, tz="UTC") + span).dt.floor("s")
    return df


def _key(problem: tuple[str, str] | str) -> tuple[str, str]:
    if isinstance(problem, str):
        column, rule = problem.split(":")
        return column, rule
    return problem


def make_batch(rows: int = 10_000, seed: int = 42, start: str = "2026-01-01", days: int = 30,
               problems: Mapping[Any, int] | None = None,
               drift: Mapping[str, float | Mapping[str, float]] | None = None) -> tuple[pd.DataFrame, dict]:
    """Build one batch and its manifest: same arguments, identical batch.

    Args:
        rows: number of sessions.
        seed: random seed.
        start, days: the sessions' UTC window; the batch is "as of" ``start + days``.
        problems: ``{(column, rule) or "column:rule": rows}`` to break (see the module docstring);
            every problem row is a different row.
        drift: ``{numeric column: factor}`` or ``{categorical column: {value: share}}``.

    Returns:
        ``(df, manifest)``; the manifest holds ``as_of``, ``problems`` (``column``, ``rule``, ``rows``),
        ``drift`` and ``drifted_columns``.
    """
    problems = {_key(k): int(v) for k, v in (problems or {}).items() if int(v) > 0}
    drift = dict(drift or {})
    for column, rule in problems:
        known = (rule == "not_null" and column in RULES["not_null"]) or (
            rule in ("range", "category") and column in RULES[rule]) or (
            rule == "freshness" and column == RULES["freshness"]["column"])
        if not known:
            raise ValueError(f"no rule {rule!r} on column {column!r}; see helpers.data.quality_batches.RULES")
    if unknown := set(drift) - set(NUMERIC) - set(CATEGORICAL):
        raise ValueError(f"drift only on {NUMERIC + CATEGORICAL}, not {sorted(unknown)}")
    if sum(problems.values()) > rows:
        raise ValueError("more problem rows than rows")
    df = _sessions(rows, seed, start, days)
    rng = np.random.default_rng([seed, 2])
    as_of = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=days)

    for column, size in drift.items():  # drift first: problems are then injected on top
        if column in NUMERIC:
            values = df[column] * float(size)
            df[column] = values.round().astype("int64").clip(*RULES["range"][column]) if column == "n_events" \
                else values.round(2)
        else:
            labels, shares = list(size), np.array(list(size.values()), dtype=float)
            df[column] = np.array(labels, dtype=object)[rng.choice(len(labels), rows, p=shares / shares.sum())]

    order = rng.permutation(rows)
    used = 0
    object_cols = set(CATEGORICAL)
    for (column, rule), count in sorted(problems.items()):
        idx = np.sort(order[used:used + count])
        used += count
        if rule == "not_null":
            if df[column].dtype.kind in "iub":  # integers can't hold a missing value: pandas' float NaN
                df[column] = df[column].astype("float64")
            df.loc[idx, column] = None if column in object_cols else (pd.NaT if column == "start_time" else np.nan)
        elif rule == "range":
            low, high = _OUT_OF_RANGE[column]
            df.loc[idx, column] = np.where(rng.random(count) < 0.5, low, high)
        elif rule == "category":
            df.loc[idx, column] = rng.choice(_UNKNOWN[column], count)
        else:  # freshness: stale by 31 to 400 days, or up to 10 days in the future
            max_age = RULES["freshness"]["max_age_days"]
            offset_days = np.where(rng.random(count) < 0.8, -rng.uniform(max_age + 1, 400, count),
                                   rng.uniform(0.1, 10, count))
            df.loc[idx, column] = as_of + pd.to_timedelta(np.round(offset_days * 86_400), unit="s")
    manifest = {
        "version": QUALITY_DATA_VERSION, "rows": rows, "seed": seed, "start": start, "days": days,
        "as_of": as_of.isoformat(),
        "problems": [{"column": c, "rule": r, "rows": n} for (c, r), n in sorted(problems.items())],
        "drift": {c: (v if isinstance(v, Mapping) else float(v)) for c, v in drift.items()},
        "drifted_columns": sorted(drift),
    }
    return df, manifest


def expected_failures(manifest: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """``{(column, rule): failing rows}`` a validator should report for a batch (problems only)."""
    return {(p["column"], p["rule"]): int(p["rows"]) for p in manifest["problems"]}


def read_batch(path: str | Path) -> pd.DataFrame:
    """Read a batch written by :func:`write_batch` (CSV or Parquet) with ``start_time`` as UTC timestamps."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (generate it with python -m helpers.data.quality_batches)")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix == ".csv":
        df = pd.read_csv(path, dtype={c: "object" for c in CATEGORICAL})
    else:
        raise ValueError(f"{path}: expected a .csv or .parquet file")
    if "start_time" in df.columns:
        df["start_time"] = pd.to_datetime(df["start_time"], utc=True, format="ISO8601")
    return df


def write_batch(df: pd.DataFrame, path: str | Path, manifest: Mapping[str, Any] | None = None) -> Path:
    """Write ``df`` to ``path`` (``.csv`` or ``.parquet``) atomically, and its manifest next to it
    (``<file name>.manifest.json``, e.g. ``new_batch.csv.manifest.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out = df.copy()
        if path.suffix == ".csv":
            out["start_time"] = out["start_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.to_csv(tmp, index=False)
        else:
            out.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if manifest is not None:
        manifest_path = manifest_file(path)
        manifest_path.write_text(json.dumps(dict(manifest, file=path.name), indent=2) + "\n")
    return path


# The lab's batches: the January reference, and February's new batch with problems and drift.
LAB_BATCHES: dict[str, dict[str, Any]] = {
    "training_data": {"seed": 42, "start": "2026-01-01"},
    "new_batch": {"seed": 43, "start": "2026-01-31",
                  "problems": {"revenue:not_null": 40, "channel:not_null": 25, "n_events:range": 30,
                               "avg_price:range": 15, "device:category": 35, "country:category": 20,
                               "start_time:freshness": 50},
                  "drift": {"avg_price": 1.8, "device": {"mobile": 0.80, "desktop": 0.15, "tablet": 0.05}}},
    "clean_batch": {"seed": 44, "start": "2026-01-31"},
}


def quality_dir() -> Path:
    """Return the cache folder of the quality batches, ``data/generated/quality``."""
    return config.data_dir() / "quality"


def ensure_training_data(rows: int = 10_000, fmt: str = "csv", force: bool = False) -> dict[str, Path]:
    """Write the lab's batches once (``training_data``, ``new_batch``, ``clean_batch``) and return their paths.

    Args:
        rows: rows per batch (10,000 in the lab: a few seconds; 1,000,000 for the benchmark).
        fmt: ``"csv"`` or ``"parquet"``.
        force: rebuild even when the cached files match.

    Returns:
        ``{"training_data": Path, ...}``; each file has a ``<file name>.manifest.json`` next to it.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be 'csv' or 'parquet'")
    folder = quality_dir() / f"rows{rows}"
    paths = {}
    for name, params in LAB_BATCHES.items():
        path = folder / f"{name}.{fmt}"
        manifest_path = manifest_file(path)
        fresh = (not force and path.is_file() and manifest_path.is_file()
                 and json.loads(manifest_path.read_text()).get("version") == QUALITY_DATA_VERSION
                 and json.loads(manifest_path.read_text()).get("file") == path.name)
        if not fresh:
            df, manifest = make_batch(rows=rows, **params)
            write_batch(df, path, manifest)
        paths[name] = path
    return paths


def manifest_file(path: str | Path) -> Path:
    """Return where the manifest of a batch file lives: ``<file name>.manifest.json`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Return the manifest written next to a batch file."""
    return json.loads(manifest_file(path).read_text())


def main(argv: list[str] | None = None) -> int:
    """Command line: write the lab's batches and print where they are."""
    ap = argparse.ArgumentParser(prog="python -m helpers.data.quality_batches", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    for name, path in ensure_training_data(args.rows, args.format, args.force).items():
        print(f"{name:>14}: {path}  ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
