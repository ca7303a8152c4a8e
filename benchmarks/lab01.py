"""Lab 01 figures for ``make bench``: in-process DAG runs of the lab's DAG files, a retried task, and
the alert sink. Printed, never asserted."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from unittest import mock

LAB_DAGS = Path(__file__).resolve().parent.parent / "notebooks" / "lab01" / "dags"


def run(record: Callable[[str, float, str], None], rows: int) -> None:
    """Time the lab's DAG runs (first in the process, then warm), a run with two retries, and alerts."""
    import os

    import pendulum

    from helpers.airflow.runner import dag_import_errors, run_dag
    from helpers.airflow.setup import setup_airflow

    setup_airflow()
    t0 = time.perf_counter()
    errors = dag_import_errors(LAB_DAGS)
    record(f"lab01: DagBag import of {len(list(LAB_DAGS.glob('*.py')))} DAG files, first in a process "
           f"({len(errors)} errors)",
           time.perf_counter() - t0, "s")
    for label in ("first run in a process", "warm run"):
        t0 = time.perf_counter()
        result = run_dag(LAB_DAGS / "lab01_first_dag.py")
        record(f"lab01: lab01_first_dag, 5 tasks, {label} ({result.state})", time.perf_counter() - t0, "s")
    t0 = time.perf_counter()
    result = run_dag(LAB_DAGS / "lab01_daily_schedule.py", logical_date="2026-01-10", conf={"region": "EU"})
    record(f"lab01: lab01_daily_schedule, branch + join ({result.state})", time.perf_counter() - t0, "s")

    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from helpers.airflow.faults import flaky

    with DAG("bench_lab01_retries", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             catchup=False, default_args={"retries": 2, "retry_delay": timedelta(seconds=1),
                                          "retry_exponential_backoff": True}) as dag:
        PythonOperator(task_id="flaky", python_callable=flaky(2))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = run_dag(dag)  # the failing tries log tracebacks: keep the figures readable
    task = result.tasks["flaky"]
    waits = sum((b.start_date - a.end_date).total_seconds()
                for a, b in zip(task.earlier_tries, [*task.earlier_tries[1:], task]))
    record(f"lab01: flaky task, 2 retries with backoff ({result.state})", time.perf_counter() - t0, "s")
    record("lab01: of which waiting between tries", waits, "s")

    from helpers.alerts import sink as alerts

    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"WORKBOOK_ALERTS_DB": f"{tmp}/a.db"}):
        os.environ.pop("WORKBOOK_ALERT_WEBHOOK", None)
        n = 200
        t0 = time.perf_counter()
        for i in range(n):
            alerts.send_alert("bench.lab01", f"alert {i}", severity="warning")
        record(f"lab01: send {n} alerts to the SQLite sink", n / (time.perf_counter() - t0), "alerts/s")
