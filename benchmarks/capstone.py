"""``make bench`` figures for Lab 05's registry and data versioning (scratch folders; nothing asserted).

- ``import mlflow`` in a fresh interpreter (why the helpers import it inside functions);
- log + register a gradient-boosting model: the first (creates the SQLite registry) and a warm one;
- promotion (both models scored on the holdout) and loading ``models:/<name>@champion``;
- DVC on a raw snapshot of ``rows`` events: setup, add, push, status, checkout of the older version,
  in process (``dvc.repo.Repo``), and ``dvc status`` through the CLI for comparison.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

Record = Callable[[str, float, str], None]


def _timed(record: Record, name: str, step: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    result = step()
    record(name, time.perf_counter() - t0, "s")
    return result


def bench_registry(record: Record, rows: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from helpers.data.ecommerce import generate_ecommerce
    from helpers.features.definitions import FEATURE_NAMES, LABEL
    from helpers.features.stream import compute_features, label_next_hour

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow"], check=True, timeout=120)
    record("capstone: import mlflow (fresh interpreter)", time.perf_counter() - t0, "s")

    raw = generate_ecommerce(min(rows, 30_000), 5, "2026-01-01", 2, progress=False).events
    frame = compute_features(raw)
    frame[LABEL] = label_next_hour(raw.sort_values(["event_time", "event_id"], kind="stable")).to_numpy()
    cut = frame.event_time.quantile(0.7)
    train, hold = frame[frame.event_time <= cut], frame[frame.event_time > cut]
    x, holdout = train[list(FEATURE_NAMES)], (hold[list(FEATURE_NAMES)], hold[LABEL])
    with threadpool_limits(1):
        models = [HistGradientBoostingClassifier(max_iter=it, random_state=0).fit(x, train[LABEL]) for it in (20, 80)]
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, WORKBOOK_CAPSTONE=tmp):
        from autograder.reference.lab05a import should_promote
        from helpers.registry.models import load_model, log_and_register
        from helpers.registry.promotion import promote_if_better

        uri = f"sqlite:///{tmp}/mlflow.db"
        for label, model in zip(("first, new registry", "warm"), models):
            reg = _timed(record, f"capstone: MLflow log + register ({label})",
                         lambda m=model: log_and_register(m, "bench", x, params={"rows": len(x)}, tracking_uri=uri))
            _timed(record, f"capstone: promote_if_better ({len(hold):,} holdout rows)",
                   lambda r=reg: promote_if_better("bench", r.version, "roc_auc", holdout, rule=should_promote,
                                                    tracking_uri=uri))
        _timed(record, "capstone: load models:/bench@champion", lambda: load_model("bench", tracking_uri=uri))


def bench_dvc(record: Record, rows: int) -> None:
    from helpers.api.extract import write_snapshot
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.versioning.datarepo import checkout, setup_repo, status, track

    events = generate_ecommerce(rows, 3, "2026-01-01", 3, progress=False).events
    with tempfile.TemporaryDirectory() as tmp:
        root = _timed(record, "capstone: DVC setup (init, remote, config)",
                      lambda: setup_repo(Path(tmp) / "data", Path(tmp) / "remote"))
        path = Path(root) / "raw" / "events.parquet"
        write_snapshot(events, path)
        size = path.stat().st_size / 1e6
        first = _timed(record, f"capstone: DVC add ({rows:,} events, {size:.1f} MB)",
                       lambda: track(path, root=root, push=False))
        _timed(record, "capstone: DVC push", lambda: track(path, root=root))
        _timed(record, "capstone: DVC status (workspace + remote)", lambda: status(root))
        path.chmod(0o644)
        path.unlink()
        write_snapshot(events.head(len(events) // 2), path)
        _timed(record, "capstone: DVC add + push (second version)", lambda: track(path, root=root))
        _timed(record, "capstone: DVC checkout of the first version", lambda: checkout(path, first.md5, root=root))
        dvc = Path(sys.executable).with_name("dvc")
        _timed(record, "capstone: `dvc status` through the CLI, for comparison",
               lambda: subprocess.run([str(dvc), "status", "-q"], cwd=root, check=False, timeout=120))


def run(record: Record, rows: int) -> None:
    """Print Lab 05's registry and DVC figures (``rows`` events in the DVC snapshot)."""
    bench_registry(record, rows)
    bench_dvc(record, rows)
