"""The capstone's ``incident`` part (``--incident``): the drift alert retrains, and the new champion serves.

The chain, on live services: the pipeline serves the champion (:class:`helpers.capstone.live.LivePipeline`)
-> ``PredictionScoreDrift`` reaches the live Alertmanager -> its webhook route runs the responder
(:class:`helpers.monitoring.response.IncidentResponder`, one retrain per cool-down: a second drifting
series in the same storm is held) -> the training DAG runs through the embedded runner (the reference DAG,
:func:`helpers.capstone.training.run_training`, in a process of its own) and registers a new version, which
moves ``champion`` when it beats the serving one -> the model stage follows the alias without a restart
-> predictions carry the new version -> the alert is resolved.

The champion at the start is a stale one made for the part (the serving bench's small model, trained on
generated events of another period, :func:`benchmarks.serving.register_model`): the training part's own
champion would not do, since a retrain on the same days gives the same model, which the promotion rule
rightly keeps out (a tie keeps the champion).

The alert is posted to Alertmanager's API, as Prometheus would send it; that the rule fires on a drifting
score is proved by its ``promtool`` unit tests (``helpers/monitoring/rules/workbook.test.yml``). A real
input drift was tried and left out: rewriting the live events (event types, users, hours) moved the
served model's mean score by at most 0.085 from 0.12, under the rule's 0.10, so it would not fire.

The section gives the timeline in seconds from the alert's start: retrain started, new version registered
(the alias moves a moment later), its first prediction read, the retraining run done (its last checks,
e.g. ``dvc status``, end after the alias moved), alert resolved.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from helpers.capstone.summary import Part, register_part

ALERT = "PredictionScoreDrift"


def _seconds(stamp: str | None) -> float | None:
    """Unix seconds of an Alertmanager time (RFC 3339, nanoseconds allowed)."""
    if not stamp:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def post_alert(fingerprint_label: str, resolved: bool = False) -> None:
    """Post (or resolve) one ``PredictionScoreDrift`` to the live Alertmanager (``/api/v2/alerts``)."""
    from helpers.platform.monitoring_services import ALERTMANAGER

    now = datetime.now(timezone.utc)
    alert = {"labels": {"alertname": ALERT, "severity": "warning", "source": fingerprint_label},
             "annotations": {"summary": "the mean prediction score moved from its 30-minute mean (posted by the "
                                        "capstone's incident part)"},
             "startsAt": (now - timedelta(seconds=1)).isoformat()}
    if resolved:
        alert["endsAt"] = now.isoformat()
    reply = httpx.post(f"{ALERTMANAGER.url}/api/v2/alerts", json=[alert], timeout=10)
    reply.raise_for_status()


def retrain_action(model: str, options: Mapping[str, Any]):  # noqa: ANN201 - an Action
    """The responder's action: one run of the training DAG registering ``model``; its version and promotion.

    The run is a process of its own (``python -m helpers.capstone.incident --retrain MODEL``): Airflow's
    ``dag.test()`` needs a main thread, and the responder acts from its webhook's thread.
    """
    import json
    import os
    import subprocess
    import sys

    from helpers.platform.config import REPO_ROOT

    def retrain(alert: dict[str, Any]) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "helpers.capstone.incident", "--retrain", model]
        for flag in ("date", "days"):
            if options.get(flag):
                cmd += [f"--{flag}", str(options[flag])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the retraining run failed (exit {done.returncode}): "
                               f"{(lines[-1] if lines else done.stderr[-1500:])}")
        return json.loads(lines[-1])

    return retrain


def retrain(model: str, date: str | None = None, days: int | None = None) -> dict[str, Any]:
    """One run of the training DAG (:func:`helpers.capstone.training.run_training`) registering ``model``.

    Raises:
        RuntimeError: the run failed (its error).
    """
    from helpers.capstone.training import run_training

    section = run_training({"date": date, "days": days, "conf": {"model_name": model}})
    if not section.get("ok"):
        raise RuntimeError(f"the retraining run failed: {section.get('error')}")
    from mlflow import MlflowClient

    registered = section["model"]
    created = MlflowClient().get_model_version(model, registered["version"]).creation_timestamp / 1000
    return {"version": registered["version"], "promoted": registered["promoted"], "registered_at": created,
            "champion": registered["champion"], "run_id": section["run_id"], "reason": registered["reason"]}


def run_incident(options: Mapping[str, Any]) -> dict[str, Any]:
    """Run the chain (see the module docstring); the section.

    Options: ``incident_timeout_s`` (default 600: the bound on each wait), ``monitor_rate`` (events/s,
    default 50), ``date``/``days`` (the retraining window; default the API's whole dataset).
    """
    from benchmarks.serving import register_model
    from helpers.alerts.alertmanager import alert_timeline, wait_until
    from helpers.alerts.sink import last_alert_id, read_alerts
    from helpers.capstone.live import LivePipeline
    from helpers.monitoring.response import IncidentResponder
    from helpers.platform.config import capstone_dir
    from helpers.platform.kafka_broker import start_broker
    from helpers.platform.monitoring_services import start_monitoring
    from helpers.registry.models import champion_version

    timeout = float(options.get("incident_timeout_s") or 600)
    start_monitoring()
    since = last_alert_id()
    model = register_model(5000)  # a stale champion: the retrain on the API's data has something to beat
    champion = str(champion_version(model))
    live = LivePipeline(model, start_broker(), capstone_dir() / "incident" / "live",
                        rate=float(options.get("monitor_rate") or 50), max_seconds=4 * timeout + 600)
    responder = IncidentResponder(retrain_action(model, options), name="retrain", triggers=(ALERT,),
                                  cooldown_s=timeout)
    tag = f"capstone-{live.tag}"

    def ours(resolved: bool = False) -> list[dict[str, Any]]:
        rows = [a for a in alert_timeline(ALERT, since) if a["labels"].get("source", "").startswith(tag)]
        return [a for a in rows if a["resolved_at"] or not resolved]

    error, fired, new_version, first_new, resolved = None, None, None, None, None
    with live, responder:
        post_alert(tag)
        time.sleep(3)
        post_alert(f"{tag}-b")  # a second drifting series in the same storm: the cool-down holds it
        fired = wait_until(ours, timeout)
        if not fired:
            error = f"{ALERT} did not reach the alert sink within {timeout:.0f} s"
        elif not responder.wait_idle(timeout):
            error = f"the retraining did not finish within {timeout:.0f} s"
        elif not responder.runs or responder.runs[0]["error"]:
            error = f"the retraining failed: {responder.runs[0]['error'] if responder.runs else 'never started'}"
        else:
            result = responder.runs[0]["result"]
            new_version = str(result["champion"])
            if new_version == champion:
                error = f"the retrained version {result['version']} did not become champion: {result['reason']}"
            else:
                first_new = wait_until(lambda: live.versions_seen().get(new_version), timeout)
                if first_new is None:
                    error = f"no prediction by the new champion v{new_version} within {timeout:.0f} s"
        post_alert(tag, resolved=True)
        post_alert(f"{tag}-b", resolved=True)
        resolved = wait_until(lambda: ours(resolved=True), timeout) if fired else None
        if fired and not resolved and not error:
            error = f"{ALERT} fired but did not resolve within {timeout:.0f} s"
    decisions = [a.details.get("phase") for a in read_alerts("incident.retrain", since_id=since)]
    start = _seconds(fired[0]["fired_at"]) if fired else None
    run = responder.runs[0] if responder.runs else {}

    def since_fired(at: float | None) -> float | None:
        return round(at - start, 1) if at is not None and start is not None else None

    section: dict[str, Any] = {
        "ok": error is None, "model": model, "champion_before": champion,
        "champion_after": new_version, "retrains": len(responder.runs), "responder_decisions": decisions,
        "versions_seen": sorted(live.versions_seen()), "predictions": len(live.downstream.got),
        "timeline_s": {"fired": 0.0 if start is not None else None,
                       "retrain_started": since_fired(run.get("started_at")),
                       "new_version_registered": since_fired((run.get("result") or {}).get("registered_at")),
                       "first_prediction_by_it": since_fired(first_new),
                       "retrain_finished": since_fired(run.get("finished_at")),
                       "resolved": since_fired(_seconds(resolved[0]["resolved_at"]) if resolved else None)},
        "retrain": run.get("result"), "logs": str(live.logs),
    }
    if error:
        section["error"] = error
    return section


def report_incident(section: Mapping[str, Any]) -> list[str]:
    """A few lines: the chain and its timeline."""
    times = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in section["timeline_s"].items() if v is not None)
    return [f"{ALERT} -> {section['retrains']} retrain(s) (decisions "
            f"{section['responder_decisions']}) -> champion v{section['champion_before']} -> "
            f"v{section['champion_after']}; versions in the predictions {section['versions_seen']}",
            f"timeline from the alert's start: {times}"]


PART = register_part(Part("incident", run_incident, report_incident))


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.capstone.incident --retrain MODEL [--date D] [--days N]``: prints the result as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="The incident response's retraining run.")
    parser.add_argument("--retrain", required=True, metavar="MODEL")
    parser.add_argument("--date")
    parser.add_argument("--days", type=int)
    args = parser.parse_args(argv)
    try:
        result = retrain(args.retrain, args.date, args.days)
    except RuntimeError as err:
        print(json.dumps({"error": str(err)}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
