"""The capstone's ``monitoring`` part: the embedded monitoring services, a live fault, and the alert timeline.

It starts Prometheus, Alertmanager, the Pushgateway and the alert receiver (reused when running), lets a
demo metric source (:mod:`helpers.monitoring.demo`, standing in for part 2's services) feed every panel,
injects a fault through the Pushgateway (a batch run whose data quality score is 80 %: ``QualityScoreLow``),
waits for it to reach the alert sink through Alertmanager, clears it and waits for the resolution. The
section lists every alert that fired and resolved meanwhile, and which dashboard panels had data.

When the training part ran before it, its real figures (duration, rows, quality score as a share, the
model's metrics) are pushed first under ``job="training"`` (:data:`TRAINING_JOB`) and stay there: the
batch panels and ``TrainingStale`` see the actual run, and a quality score under 95 % fires a real
``QualityScoreLow``. The fault is still injected under the probe job, so the real figures are never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from helpers.capstone.summary import Part, register_part

PROBE_JOB = "capstone_quality_probe"
TRAINING_JOB = "training"
ALERT = "QualityScoreLow"


def training_run(sections: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`helpers.monitoring.push.push_batch_run`'s arguments for the training part's run, or None (no such run)."""
    trained = sections.get("training") or {}
    if not trained.get("ok"):
        return None
    metrics = {k: float(v) for k, v in (trained["model"].get("metrics") or {}).items() if v is not None}
    return {"duration_s": float(trained["seconds"]), "rows": int(trained["records"]["raw_events"]),
            "quality_score": round(float(trained["quality"]["score"]) / 100, 6), "model_metrics": metrics}


def _wait(predicate: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1.0)
    return None


def run_monitoring(options: Mapping[str, Any]) -> dict[str, Any]:
    """Start the services, fire and resolve ``QualityScoreLow`` end to end; the section.

    Options: ``alert_timeout_s`` (default 90: the bound on each wait, never a measure of speed).
    """
    from helpers.alerts.alertmanager import alert_timeline
    from helpers.alerts.sink import last_alert_id
    from helpers.monitoring.dashboard import panel_data
    from helpers.monitoring.demo import DemoSource
    from helpers.monitoring.push import delete_batch_job, push_batch_run
    from helpers.platform.monitoring_services import PROMETHEUS, start_monitoring

    timeout = float(options.get("alert_timeout_s") or 90)
    started = start_monitoring()
    since = last_alert_id()
    trained = training_run(options.get("sections") or {})
    if trained is not None:
        push_batch_run(TRAINING_JOB, **trained)

    def ours(resolved: bool) -> list[dict[str, Any]]:
        return [a for a in alert_timeline(ALERT, since) if a["labels"].get("job") == PROBE_JOB
                and (a["resolved_at"] or not resolved)]

    with DemoSource("capstone-demo", rate=40):
        try:
            push_batch_run(PROBE_JOB, duration_s=1.0, rows=1000, quality_score=0.80)
            fired = _wait(lambda: ours(False), timeout)
            push_batch_run(PROBE_JOB, duration_s=1.0, rows=1000, quality_score=0.99)
            resolved = _wait(lambda: ours(True), timeout) if fired else None
            panels = {p.title: p.has_data() for p in panel_data(minutes=5)}
        finally:
            delete_batch_job(PROBE_JOB)
    section: dict[str, Any] = {
        "ok": bool(fired and resolved), "prometheus": PROMETHEUS.url,
        "services_start_s": {name: round(s, 2) for name, s in started.items()},
        "alerts": [{k: a[k] for k in ("alertname", "fired_at", "resolved_at", "summary")} | {"labels": a["labels"]}
                   for a in alert_timeline(since_id=since)],
        "panels_with_data": panels, "training_pushed": trained and {"job": TRAINING_JOB, **trained},
    }
    if not fired:
        section["error"] = f"{ALERT} for {PROBE_JOB} did not reach the alert sink within {timeout:.0f} s"
    elif not resolved:
        section["error"] = f"{ALERT} for {PROBE_JOB} fired but did not resolve within {timeout:.0f} s"
    return section


def report_monitoring(section: Mapping[str, Any]) -> list[str]:
    """A few lines: services, alerts fired and resolved, panels with data."""
    starts = ", ".join(f"{n} {s:.1f} s" for n, s in section["services_start_s"].items())
    lines = [f"services started: {starts}; Prometheus {section['prometheus']}"]
    if section.get("training_pushed"):
        run = section["training_pushed"]
        lines.append(f"pushed the training run (job={run['job']}): {run['rows']:,} rows, {run['duration_s']:.0f} s, "
                     f"quality {run['quality_score']:.2%}, metrics {run['model_metrics']}")
    for alert in section["alerts"]:
        lines.append(f"alert {alert['alertname']}: fired {alert['fired_at']}, "
                     f"resolved {alert['resolved_at'] or 'not yet'} ({alert['summary']})")
    with_data = [t for t, ok in section["panels_with_data"].items() if ok]
    lines.append(f"dashboard: {len(with_data)} of {len(section['panels_with_data'])} panels with data")
    return lines


PART = register_part(Part("monitoring", run_monitoring, report_monitoring))
