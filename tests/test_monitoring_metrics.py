"""Lab 05 metrics: the streaming metric names and types the rules and dashboard rely on, and batch pushes."""

from __future__ import annotations

import shutil
import uuid

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from helpers.monitoring.metrics import LATENCY_BUCKETS, stream_metrics
from helpers.monitoring.push import push_batch_run


def _families(registry: CollectorRegistry) -> dict[str, str]:
    return {family.name: family.type for family in registry.collect()}


def test_stream_metrics_have_the_names_and_types_the_rules_use():
    """Check the exposition: names and types the alert rules and the dashboard query."""
    registry = CollectorRegistry()
    metrics = stream_metrics(registry)
    metrics.set_model("churn", "3")
    metrics.consumer_lag.labels("scorer", "events", "0").set(5)
    metrics.dead_letter("scorer", "schema")
    metrics.prediction_latency.observe(0.05)
    metrics.prediction_score.observe(0.4)
    with metrics.observe("scorer"):
        pass
    expected = {"stream_messages": "counter", "stream_processing_seconds": "histogram",
                "prediction_latency_seconds": "histogram", "prediction_score": "histogram",
                "stream_consumer_lag": "gauge", "stream_dlq_messages": "counter", "model_version": "info"}
    got = _families(registry)
    assert got == expected, f"expected exactly these metric families {expected}, got {got}"
    assert 0.1 in LATENCY_BUCKETS and sum(0.05 <= b <= 0.2 for b in LATENCY_BUCKETS) >= 5, (
        f"expected dense buckets around the 100 ms objective, got {LATENCY_BUCKETS}")


def test_observe_counts_errors_and_dead_letters():
    """Check the RED helper: an exception is an error (and re-raised), a dead-lettered message is 'dlq'."""
    registry = CollectorRegistry()
    metrics = stream_metrics(registry)
    with pytest.raises(KeyError):
        with metrics.observe("scorer"):
            raise KeyError("user_id")
    with metrics.observe("scorer") as outcome:
        outcome["outcome"] = "dlq"
    with pytest.raises(ValueError, match="outcome must be one of"):
        with metrics.observe("scorer") as outcome:
            outcome["outcome"] = "lost"
    value = registry.get_sample_value
    assert value("stream_messages_total", {"component": "scorer", "outcome": "error"}) == 1.0, "expected 1 error"
    assert value("stream_messages_total", {"component": "scorer", "outcome": "dlq"}) == 1.0, "expected 1 dlq"
    assert value("stream_processing_seconds_count", {"component": "scorer"}) == 2.0, (
        "expected the two valid messages timed (the invalid outcome is refused, not counted)")


@pytest.mark.parametrize("kwargs, message", [
    ({"quality_score": 1.5}, "quality_score must be a number between 0.0 and 1.0"),
    ({"duration_s": float("nan")}, "duration_s must be a number"),
    ({"rows": -1}, "rows must be a number"),
])
def test_push_refuses_impossible_values(kwargs, message):
    """Check bad batch metrics are refused with the field's name, before anything is pushed."""
    args = {"duration_s": 1.0, "rows": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        push_batch_run("training", gateway="http://127.0.0.1:1", **args)
    with pytest.raises(ValueError, match="job must be a name"):
        push_batch_run("bad job/../x", duration_s=1.0, rows=1, gateway="http://127.0.0.1:1")


@pytest.mark.skipif(shutil.which("prometheus-pushgateway") is None and shutil.which("pushgateway") is None,
                    reason="the Pushgateway is not installed (apt-get install prometheus-pushgateway)")
def test_push_reaches_the_live_pushgateway_and_a_failed_run_keeps_the_last_success():
    """Check a push lands in the real Pushgateway, and a failed run does not erase the last success time."""
    from helpers.monitoring.push import delete_batch_job
    from helpers.platform.monitoring_services import PUSHGATEWAY, start_service

    start_service("pushgateway")
    job = f"push_{uuid.uuid4().hex[:6]}"
    try:
        push_batch_run(job, duration_s=3.5, rows=1200, quality_score=0.97, model_metrics={"auc": 0.91})
        push_batch_run(job, duration_s=1.0, rows=0, success=False)
        text = httpx.get(f"{PUSHGATEWAY.url}/metrics", timeout=10).text
        ours = {(f.name, s.labels.get("metric"), s.value) for f in text_string_to_metric_families(text)
                for s in f.samples if s.labels.get("job") == job}
        names = {name for name, _, _ in ours}
        for name in ("batch_duration_seconds", "batch_rows", "batch_quality_score", "batch_model_metric",
                     "batch_last_success_timestamp_seconds", "batch_last_run_success"):
            assert name in names, f"expected {name} for job {job} in the Pushgateway, got {sorted(names)}"
        assert ("batch_last_run_success", None, 0.0) in ours, "expected the failed run to set batch_last_run_success 0"
        assert ("batch_model_metric", "auc", 0.91) in ours, "expected batch_model_metric{metric='auc'} 0.91"
    finally:
        delete_batch_job(job)
