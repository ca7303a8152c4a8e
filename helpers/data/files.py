"""The cached e-commerce dataset on disk: one folder per set of generator arguments, written once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from helpers.data.ecommerce import GENERATOR_VERSION, generate_ecommerce
from helpers.data.tables import write_table
from helpers.platform import config

TABLES = ("events", "users", "sessions", "products")


def dataset_dir(rows: int = 1_000_000, seed: int = 42, start: str = "2026-01-01", days: int = 30,
                drift: float = 0.0, dirty_fraction: float = 0.0) -> Path:
    """Return the cache folder for these arguments, ``<data_dir>/ecommerce_<rows>_<seed>[_...]``."""
    name = f"ecommerce_{rows}_{seed}"
    if (start, days) != ("2026-01-01", 30):
        name += f"_{start}_{days}d"
    name += f"_drift{drift:g}" if drift else ""
    name += f"_dirty{dirty_fraction:g}" if dirty_fraction else ""
    return config.data_dir() / name


def ensure_dataset(rows: int = 1_000_000, seed: int = 42, formats: tuple[str, ...] = ("parquet", "csv"), *,
                   start: str = "2026-01-01", days: int = 30, drift: float = 0.0, dirty_fraction: float = 0.0,
                   progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Generate and write the dataset once; later calls with the same arguments return at once.

    Args:
        rows, seed, start, days, drift, dirty_fraction: as in :func:`generate_ecommerce`.
        formats: any of ``"parquet"`` and ``"csv"``.
        progress: show tqdm bars while generating and writing.
        force: regenerate even when the files exist.

    Returns:
        ``{"events.parquet": Path, "events.csv": Path, "users.parquet": ..., ...}`` (one per table and format).
    """
    if unknown := set(formats) - {"parquet", "csv"}:
        raise ValueError(f"unknown formats {sorted(unknown)}; use 'parquet' and/or 'csv'")
    out = dataset_dir(rows, seed, start, days, drift, dirty_fraction)
    paths = {f"{t}.{f}": out / f"{t}.{f}" for t in TABLES for f in formats}
    params = {"version": GENERATOR_VERSION, "rows": rows, "seed": seed, "start": start, "days": days,
              "drift": drift, "dirty_fraction": dirty_fraction}
    manifest = out / "manifest.json"
    fresh = not force and manifest.exists() and json.loads(manifest.read_text())["params"] == params
    todo = [name for name, p in paths.items() if not (fresh and p.exists())]
    if not todo:
        return paths
    data = generate_ecommerce(rows, seed, start, days, drift, dirty_fraction, progress=progress)._asdict()
    out.mkdir(parents=True, exist_ok=True)
    total = sum(len(data[name.split(".")[0]]) for name in todo)
    with tqdm(total=total, desc=f"writing {out.name}", unit="rows", unit_scale=True, disable=not progress) as bar:
        for name in todo:
            write_table(data[name.split(".")[0]], paths[name], bar)
    info = {"params": params, "rows": {t: len(df) for t, df in data.items()},
            "files": sorted(p.name for p in out.iterdir() if p.suffix in (".parquet", ".csv"))}
    tmp = manifest.with_name(f".manifest.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, manifest)
    return paths
