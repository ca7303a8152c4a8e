"""``make bench`` figures for Lab 05's monitoring services: cold start time and memory of each.

Prometheus, Alertmanager, the Pushgateway, the alert receiver and OpenSearch are started in a scratch state
folder on scratch ports (nothing of the learner's is touched), measured (seconds to ready, resident memory
of the process once ready), then stopped, and the time an alert takes from a pushed bad quality score to
the alert sink is measured. Nothing is asserted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from unittest import mock

Record = Callable[[str, float, str], None]
SCRATCH_PORTS = {"WORKBOOK_PROMETHEUS_PORT": "29620", "WORKBOOK_PUSHGATEWAY_PORT": "29621",
                 "WORKBOOK_ALERTMANAGER_PORT": "29622", "WORKBOOK_ALERT_RECEIVER_PORT": "29623",
                 "WORKBOOK_OPENSEARCH_PORT": "29624", "WORKBOOK_OPENSEARCH_TRANSPORT_PORT": "29625"}


def _rss_mb(pid: int | None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20 if pid else float("nan")


def run(record: Record, rows: int) -> None:
    """Measure each service's cold start and memory, and one alert's way from push to sink."""
    from helpers.platform import config

    if shutil.which("prometheus") is None:
        print("  monitoring: Prometheus is not installed (make system), skipped")
        return
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(
            os.environ, WORKBOOK_STATE=tmp, WORKBOOK_JARS=str(config.jars_dir()),
            WORKBOOK_ALERTS_DB=f"{tmp}/alerts.db", **SCRATCH_PORTS):
        from helpers.platform import monitoring_services as ms
        from helpers.platform import opensearch_node as osn

        try:
            for name in ms.START_ORDER:
                t0 = time.perf_counter()
                ms.start_service(name)
                record(f"monitoring: {name} cold start to ready", time.perf_counter() - t0, "s")
                record(f"monitoring: {name} resident memory", _rss_mb(ms.service_pid(name)), "MB")
            _alert_latency(record)
            osn.fetch_jars()
            osn.compile_launcher(osn.fetch_jars())
            t0 = time.perf_counter()
            osn.start_opensearch()
            record("monitoring: opensearch cold start to green (jars cached)", time.perf_counter() - t0, "s")
            record("monitoring: opensearch resident memory", _rss_mb(osn.node_pid()), "MB")
        finally:
            t0 = time.perf_counter()
            ms.stop_monitoring()
            osn.stop_opensearch()
            record("monitoring: stop everything", time.perf_counter() - t0, "s")


def _alert_latency(record: Record) -> None:
    from helpers.alerts.alertmanager import alert_timeline, wait_until
    from helpers.alerts.sink import last_alert_id
    from helpers.monitoring.push import delete_batch_job, push_batch_run

    job, since = f"bench_{uuid.uuid4().hex[:6]}", last_alert_id()
    t0 = time.perf_counter()
    push_batch_run(job, duration_s=1.0, rows=1, quality_score=0.5)
    fired = wait_until(lambda: alert_timeline("QualityScoreLow", since), 60, every_s=0.2)
    if fired:
        record("monitoring: pushed bad score -> alert in the sink", time.perf_counter() - t0, "s")
    t0 = time.perf_counter()
    push_batch_run(job, duration_s=1.0, rows=1, quality_score=1.0)
    resolved = wait_until(lambda: [a for a in alert_timeline("QualityScoreLow", since) if a["resolved_at"]], 60, every_s=0.2)
    if resolved:
        record("monitoring: good score -> resolved in the sink", time.perf_counter() - t0, "s")
    delete_batch_job(job)
