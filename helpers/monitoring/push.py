"""Batch runs push their metrics to the Pushgateway: the Prometheus pattern for jobs that end before a scrape.

A DAG's last task calls :func:`push_batch_run` with what the run measured; Prometheus scrapes the
Pushgateway (``honor_labels``), so the series keep ``job=<the job's name>`` and the rules
``QualityScoreLow`` and ``TrainingStale`` see them::

    push_batch_run("training", duration_s=42.0, rows=120_000, quality_score=0.99,
                   model_metrics={"auc": 0.91, "f1": 0.77})
"""

from __future__ import annotations

import math
import time

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    delete_from_gateway,
    pushadd_to_gateway,
)

from helpers.platform.config import monitoring_url


def _check(name: str, value: float, low: float = 0.0, high: float = math.inf) -> float:
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number between {low} and {high}, got {value!r}")
    return value


def push_batch_run(job: str, *, duration_s: float, rows: int, quality_score: float | None = None,
                   model_metrics: dict[str, float] | None = None, success: bool = True,
                   gateway: str | None = None) -> CollectorRegistry:
    """Push one batch run's metrics to the Pushgateway under ``job`` (series of the same names replace the previous push; a failed run keeps the last success time).

    Args:
        job: the batch job's name (``daily_etl``, ``training``...): the ``job`` label of every series.
        duration_s: how long the run took (``batch_duration_seconds``).
        rows: rows it processed (``batch_rows``).
        quality_score: share of the data quality checks that passed, 0..1 (``batch_quality_score``).
        model_metrics: e.g. ``{"auc": 0.91}`` (``batch_model_metric{metric="auc"}``).
        success: a successful run also sets ``batch_last_success_timestamp_seconds`` to now.
        gateway: the Pushgateway's URL; default :func:`helpers.platform.config.monitoring_url`.

    Returns:
        The registry that was pushed (what Prometheus will see).
    """
    if not job or not all(ch.isalnum() or ch in "-_." for ch in job):
        raise ValueError(f"job must be a name of letters, digits, '-', '_' or '.', not {job!r}")
    registry = CollectorRegistry()
    Gauge("batch_duration_seconds", "Duration of the last run", registry=registry).set(
        _check("duration_s", duration_s))
    Gauge("batch_rows", "Rows the last run processed", registry=registry).set(_check("rows", rows))
    Gauge("batch_last_run_success", "1 if the last run succeeded, else 0", registry=registry).set(int(success))
    if success:
        Gauge("batch_last_success_timestamp_seconds", "Unix time of the last successful run",
              registry=registry).set(time.time())
    if quality_score is not None:
        Gauge("batch_quality_score", "Share of the data quality checks that passed (0..1)",
              registry=registry).set(_check("quality_score", quality_score, 0.0, 1.0))
    if model_metrics:
        gauge = Gauge("batch_model_metric", "The trained model's evaluation metrics", ["metric"], registry=registry)
        for name, value in model_metrics.items():
            gauge.labels(name).set(_check(f"model_metrics[{name!r}]", value, -math.inf))
    pushadd_to_gateway(_address(gateway), job=job, registry=registry, timeout=10)
    return registry


def try_push_batch_run(job: str, **run: object) -> bool:
    """:func:`push_batch_run`, best-effort: a Pushgateway that does not answer prints a warning (stdout) and returns False.

    For a pipeline's callbacks: monitoring that is down must never fail the run it reports on. A bad value
    (a ``ValueError``) is still raised: that is a bug in the caller, not an outage.
    """
    try:
        push_batch_run(job, **run)  # type: ignore[arg-type]
    except OSError as err:  # urllib's URLError, a refused connection, a timeout
        print(f"WARNING: {job}'s run metrics were not pushed to the Pushgateway at {_address(run.get('gateway'))} "
              f"({err}); the run carries on. Start it with `make monitoring`, or set PUSHGATEWAY_URL.", flush=True)
        return False
    return True


def delete_batch_job(job: str, gateway: str | None = None) -> None:
    """Remove every series pushed under ``job`` from the Pushgateway (its alerts then resolve)."""
    delete_from_gateway(_address(gateway), job=job, timeout=10)


def _address(gateway: str | None) -> str:
    return gateway or monitoring_url("pushgateway")
