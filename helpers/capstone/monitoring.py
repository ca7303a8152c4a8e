"""The capstone's ``monitoring`` part: the embedded monitoring services watching the live pipeline, a fault, the alerts.

It starts Prometheus, Alertmanager, the Pushgateway and the alert receiver (reused when running), then runs
the streaming part's pipeline (:class:`helpers.capstone.live.LivePipeline`: the real feature and model
stage processes, each serving ``/metrics`` and registered as a Prometheus target) with a steady event
stream while it injects a fault through the Pushgateway (a batch run whose data quality score is 80 %:
``QualityScoreLow``), waits for it to reach the alert sink through Alertmanager, clears it and waits for
the resolution, then until every dashboard panel has data. The section lists every alert that fired and
resolved meanwhile, which panels had data, and how many series each stage process exposed.

The pipeline serves the champion of the training part's model (else ``--model``, else the training
settings' ``model_name``); with no champion anywhere it registers a small one first (the serving bench's,
:func:`benchmarks.serving.register_model`, about 15 s).

When the training part ran before it, its real figures (duration, rows, quality score as a share, the
model's metrics) are pushed first under ``job="training"`` (:data:`TRAINING_JOB`) and stay there: the
batch panels and ``TrainingStale`` see the actual run, and a quality score under 95 % fires a real
``QualityScoreLow``. The fault is still injected under the probe job, so the real figures are never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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


def serving_model(options: Mapping[str, Any]) -> tuple[str, str, bool]:
    """``(model, champion version, registered here)``: the streaming part's model, or a small one made now."""
    from helpers.capstone.streaming import model_name
    from helpers.registry.models import champion_version

    name = model_name(options)
    champion = champion_version(name)
    if champion is not None:
        return name, champion, False
    from benchmarks.serving import register_model

    name = register_model(5000)
    return name, str(champion_version(name)), True


def wait_for_panels(timeout_s: float, minutes: float = 5) -> tuple[list[Any], float]:
    """Query every panel until all have data or ``timeout_s`` passes; ``(panels, seconds waited)``."""
    from helpers.monitoring.dashboard import panel_data

    t0 = time.monotonic()
    panels = panel_data(minutes=minutes)
    while not all(p.has_data() for p in panels) and time.monotonic() - t0 < timeout_s:
        time.sleep(2.0)
        panels = panel_data(minutes=minutes)
    return panels, time.monotonic() - t0


def run_monitoring(options: Mapping[str, Any]) -> dict[str, Any]:
    """Start the services and the live pipeline, fire and resolve ``QualityScoreLow`` end to end; the section.

    Options: ``alert_timeout_s`` (default 90: the bound on each wait, never a measure of speed),
    ``monitor_rate`` (events/s through the live pipeline, default 50), ``model``.
    """
    from helpers.alerts.alertmanager import alert_timeline, wait_until
    from helpers.alerts.sink import last_alert_id
    from helpers.capstone.live import LivePipeline, series_count
    from helpers.monitoring.push import delete_batch_job, push_batch_run
    from helpers.platform.config import capstone_dir
    from helpers.platform.kafka_broker import start_broker
    from helpers.platform.monitoring_services import PROMETHEUS, start_monitoring

    timeout = float(options.get("alert_timeout_s") or 90)
    started = start_monitoring()
    since = last_alert_id()
    trained = training_run(options.get("sections") or {})
    if trained is not None:
        push_batch_run(TRAINING_JOB, **trained)
    model, champion, made = serving_model(options)
    bootstrap = start_broker()

    def ours(resolved: bool) -> list[dict[str, Any]]:
        return [a for a in alert_timeline(ALERT, since) if a["labels"].get("job") == PROBE_JOB
                and (a["resolved_at"] or not resolved)]

    live = LivePipeline(model, bootstrap, capstone_dir() / "monitoring" / "live",
                        rate=float(options.get("monitor_rate") or 50), max_seconds=3 * timeout + 120)
    with live:
        try:
            push_batch_run(PROBE_JOB, duration_s=1.0, rows=1000, quality_score=0.80)
            fired = wait_until(lambda: ours(False), timeout)
            panels, waited = wait_for_panels(timeout)  # the alert is firing: the alerts panel too
            push_batch_run(PROBE_JOB, duration_s=1.0, rows=1000, quality_score=0.99)
            resolved = wait_until(lambda: ours(True), timeout) if fired else None
            series = {stage: series_count(port) for stage, port in live.metrics_ports().items()}
        finally:
            delete_batch_job(PROBE_JOB)
    section: dict[str, Any] = {
        "ok": bool(fired and resolved), "prometheus": PROMETHEUS.url,
        "services_start_s": {name: round(s, 2) for name, s in started.items()},
        "alerts": [{k: a[k] for k in ("alertname", "fired_at", "resolved_at", "summary")} | {"labels": a["labels"]}
                   for a in alert_timeline(since_id=since)],
        "panels_with_data": {p.title: p.has_data() for p in panels}, "panels_waited_s": round(waited, 1),
        "training_pushed": trained and {"job": TRAINING_JOB, **trained},
        "live": {"model": model, "champion": champion, "model_registered_here": made, "events_sent": live.sent,
                 "predictions": len(live.downstream.got), "series_per_stage": series, "topics": live.topics,
                 "logs": str(live.logs)},
    }
    empty = [title for title, ok in section["panels_with_data"].items() if not ok]
    if not fired:
        section["error"] = f"{ALERT} for {PROBE_JOB} did not reach the alert sink within {timeout:.0f} s"
    elif not resolved:
        section["error"] = f"{ALERT} for {PROBE_JOB} fired but did not resolve within {timeout:.0f} s"
    elif empty:
        section.update(ok=False, error=f"dashboard panels without data after {timeout:.0f} s: {empty}; see "
                                       f"{PROMETHEUS.url}/targets and the stages' logs in {live.logs}")
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
    live = section["live"]
    lines.append(f"live pipeline: model {live['model']} v{live['champion']}, {live['events_sent']:,} events sent, "
                 f"{live['predictions']:,} predictions; series per stage process {live['series_per_stage']}")
    with_data = [t for t, ok in section["panels_with_data"].items() if ok]
    empty = [t for t, ok in section["panels_with_data"].items() if not ok]
    lines.append(f"dashboard: {len(with_data)} of {len(section['panels_with_data'])} panels with data"
                 + (f" (empty: {empty})" if empty else ""))
    return lines


PART = register_part(Part("monitoring", run_monitoring, report_monitoring))
