"""Lab 05 metrics: the streaming metric names and types the rules and dashboard rely on, and batch pushes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

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

