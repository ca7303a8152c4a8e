"""Lab 05a's reference answers (instructor-only; see :mod:`autograder.reference`).

- Task 1 :func:`extract_snapshot` (and :func:`extract_day`, its full form with the fetch options);
- Task 2 :func:`data_quality_score` (and :func:`quality_score`, the lowest of several suites);
- Task 4 :func:`split_by_time`;
- Task 5.1 :func:`should_promote`.

Task 6's reference DAG is ``notebooks/lab05/dags/reference_training_pipeline.py`` (not released).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from helpers.api.extract import (
    Snapshot,
    fetch_events,
    file_sha256,
    snapshot_path,
    write_snapshot,
)
from helpers.quality.gate import GateResult


def extract_day(logical_date: date | datetime | str, root: str | Path | None = None, *,
                force: bool = False, **fetch_args: Any) -> Snapshot:
    """Extract the UTC day ``logical_date`` from the API into its immutable raw snapshot.

    Args:
        logical_date: the day to extract (``"2026-01-02"``, a date or a datetime).
        root: the data folder (default ``<capstone>/data``); see :func:`helpers.api.extract.snapshot_path`.
        force: re-extract and replace an existing snapshot (normally never needed).
        **fetch_args: passed to :func:`helpers.api.extract.fetch_events` (url, client_id, max_attempts...).

    Returns:
        A :class:`helpers.api.extract.Snapshot`; ``written`` is False when the snapshot existed and was kept.
    """
    t0 = time.perf_counter()
    path = snapshot_path(logical_date, root)
    day = pd.Timestamp(pd.Timestamp(logical_date).date())
    if path.exists() and not force:
        return Snapshot(day.date().isoformat(), str(path), pq.read_metadata(path).num_rows, file_sha256(path),
                        written=False, seconds=time.perf_counter() - t0)
    events, stats = fetch_events(day, day + timedelta(days=1), **fetch_args)
    if force and path.exists():
        os.chmod(path, 0o644)
    sha = write_snapshot(events, path)
    return Snapshot(day.date().isoformat(), str(path), len(events), sha, written=True,
                    pages=stats["pages"], retries=stats["retries"], seconds=time.perf_counter() - t0)


def extract_snapshot(day: str, root: Path, client_id: str = "lab05-notebook", **fetch_args: Any) -> dict:
    """Task 1: ``{"path", "rows", "sha256", "written", ...}`` of the day's snapshot (see :func:`extract_day`)."""
    return extract_day(day, root, client_id=client_id, **fetch_args).as_dict()


def data_quality_score(result: GateResult) -> float:
    """Task 2: 100 minus the failing row-level expectations' unexpected percent; 0.0 on a table-level failure."""
    if any(f.unexpected_count is None for f in result.failures):
        return 0.0
    return float(max(0.0, 100.0 - sum(f.unexpected_percent or 0.0 for f in result.failures)))


def quality_score(results: Iterable[GateResult]) -> float:
    """The run's score: the lowest :func:`data_quality_score` of its suites (100 when nothing ran)."""
    return min((data_quality_score(r) for r in results), default=100.0)


def split_by_time(frame: pd.DataFrame, holdout_share: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Task 4: events up to the ``1 - holdout_share`` time quantile train, the later ones are held out.

    Raises:
        ValueError: ``holdout_share`` outside (0, 1), or one side would be empty.
    """
    if not 0 < holdout_share < 1:
        raise ValueError(f"holdout_share is a fraction between 0 and 1, got {holdout_share!r}")
    cut = frame["event_time"].quantile(1 - holdout_share)
    train, holdout = frame[frame["event_time"] <= cut], frame[frame["event_time"] > cut]
    if train.empty or holdout.empty:
        raise ValueError(f"a time split of {len(frame)} events at {cut} leaves {len(train)} to train and "
                         f"{len(holdout)} to hold out: need events at more than one time")
    return train, holdout


def should_promote(new_score: float, champion_score: float | None, higher_is_better: bool = True,
                   min_delta: float = 0.0) -> bool:
    """Task 5.1: True without a champion, else only when better by more than ``min_delta`` (a tie keeps it)."""
    if champion_score is None:
        return True
    gain = new_score - champion_score if higher_is_better else champion_score - new_score
    return bool(gain > min_delta)
