"""``make bench`` figures for Lab 05's training DAG (scratch folders and a scratch events API; nothing asserted).

For each size in ``BENCH_TRAINING_ROWS`` (comma-separated, default ``200000``; add ``1000000`` to ask
for the 1M figure) a scratch API serves that many events over 7 days and the training DAG runs over
all of them (:func:`helpers.capstone.training.run_training`): the DAG's wall time, each task's time,
and the registration step (MLflow log + register + promotion). ``benchmarks/capstone.py`` times the
MLflow and DVC calls on their own. With ``WORKBOOK_API_URL`` set, the external API's dataset is used.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from unittest import mock

Record = Callable[[str, float, str], None]
DAYS = 7


def sizes() -> list[int]:
    """The dataset sizes to time (``BENCH_TRAINING_ROWS``, default 200,000)."""
    text = os.environ.get("BENCH_TRAINING_ROWS", "").strip() or "200000"
    return [int(part) for part in text.split(",") if part.strip()]


def bench_training(record: Record, rows: int) -> None:
    """One training DAG run over ``rows`` events served by a scratch API."""
    from helpers.api.server import start_api, stop_api
    from helpers.capstone.training import run_training
    from helpers.platform import config
    from helpers.platform.ports import free_port

    with tempfile.TemporaryDirectory() as tmp:
        pinned = {"AIRFLOW_HOME": str(config.airflow_home()), "WORKBOOK_JARS": str(config.jars_dir()),
                  "WORKBOOK_DATA": str(config.data_dir()), "WORKBOOK_COURSE": str(config.course_dir())}
        scratch = {"WORKBOOK_STATE": tmp, "WORKBOOK_CAPSTONE": f"{tmp}/capstone",
                   "WORKBOOK_DVC_REMOTE": f"{tmp}/capstone/dvc-remote",
                   "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/capstone/mlflow.db", "WORKBOOK_ALERTS_DB": f"{tmp}/alerts.db",
                   "WORKBOOK_API_PORT": str(free_port()), "WORKBOOK_API_ROWS": str(rows),
                   "WORKBOOK_API_DAYS": str(DAYS), "WORKBOOK_API_START": "2026-01-01"}
        with mock.patch.dict(os.environ, {**pinned, **scratch}):
            try:
                t0 = time.perf_counter()
                start_api(timeout=600)
                record(f"training: scratch API start ({rows:,} events generated)", time.perf_counter() - t0, "s")
                t0 = time.perf_counter()
                section = run_training({"date": f"2026-01-{DAYS:02d}", "days": DAYS})
                wall = time.perf_counter() - t0
            finally:
                stop_api()
        label = f"{section['records'].get('raw_events') or 0:,} events"
        record(f"training: DAG wall time, {label} ({'ok' if section['ok'] else 'FAILED'})", wall, "s")
        for task, figures in section["tasks"].items():
            if figures["seconds"] is not None:
                record(f"training:   {task}", figures["seconds"], "s")
        if section["ok"]:
            m = section["model"]["metrics"]
            record("training: holdout ROC AUC", m["roc_auc"], "")
            record(f"training: holdout PR AUC (prior {section['model']['baseline']['pr_auc']:.3f})", m["pr_auc"], "")
            record("training: data quality score", section["quality"]["score"], "%")
        else:
            print(f"  training: the run failed: {section.get('error')}")


def run(record: Record, rows: int) -> None:
    """``benchmarks.run`` entry point (``rows``, the other labs' size, is not used: see :func:`sizes`)."""
    for size in sizes():
        bench_training(record, size)
