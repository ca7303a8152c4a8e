"""The automated incident response (helpers/monitoring/response.py): one action per alert storm, every decision in
the alert sink, and Alertmanager's route to the responder accepted by amtool. The chain on live services (drift
alert -> retrain -> new champion served) is tests/test_capstone.py's incident test."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from helpers.alerts.sink import last_alert_id, read_alerts
from helpers.monitoring.response import IncidentResponder
from helpers.platform import monitoring_config as mc


def _payload(*alerts: tuple[str, str, str]) -> dict:
    return {"receiver": "respond-retrain", "status": "firing",
            "alerts": [{"status": status, "labels": {"alertname": name, "severity": "warning"}, "fingerprint": fp}
                       for name, status, fp in alerts]}


def test_a_storm_of_drift_alerts_runs_the_action_once_and_records_each_decision():
    """Check one start per cool-down whatever the repeats, other alerts and resolutions ignored, decisions in the sink."""
    release, calls = threading.Event(), []

    def action(alert: dict) -> dict:
        calls.append(alert["labels"]["alertname"])
        release.wait(10)
        return {"version": "2"}

    since = last_alert_id()
    responder = IncidentResponder(action, name="retrain-unit", cooldown_s=3600)
    first = responder.handle(_payload(("PredictionScoreDrift", "firing", "a"), ("QualityScoreLow", "firing", "q")))
    again = responder.handle(_payload(("PredictionScoreDrift", "firing", "a"), ("PredictionScoreDrift", "firing", "b")))
    assert first == ["started", "ignored"], f"expected the drift alert to start the action, the other ignored: {first}"
    assert again == ["cooldown", "cooldown"], f"expected repeats held while the action runs, got {again}"
    release.set()
    assert responder.wait_idle(10), "expected the action to finish once released"
    later = responder.handle(_payload(("PredictionScoreDrift", "firing", "c"), ("PredictionScoreDrift", "resolved", "a")))
    assert later == ["cooldown", "ignored"], f"expected the cool-down to hold after the run, resolutions ignored: {later}"
    assert calls == ["PredictionScoreDrift"], f"expected exactly one run of the action, got {calls}"
    phases = [a.details["phase"] for a in read_alerts("incident.retrain-unit", since_id=since)]
    assert phases.count("started") == 1 and phases.count("finished") == 1 and phases.count("cooldown") == 3, (
        f"expected each decision recorded in the alert sink (1 started, 3 cool-downs, 1 finished), got {phases}")
    assert responder.runs[0]["result"] == {"version": "2"}, f"expected the action's result kept, got {responder.runs}"


def test_a_failing_action_is_recorded_as_an_error_and_bad_payloads_are_refused():
    """Check an action that raises is an error row in the sink (not lost), and a non-Alertmanager payload a ValueError."""
    def action(alert: dict) -> dict:
        raise RuntimeError("the DAG run failed")

    since = last_alert_id()
    responder = IncidentResponder(action, name="retrain-fails", cooldown_s=0)
    assert responder.handle(_payload(("PredictionScoreDrift", "firing", "a"))) == ["started"]
    assert responder.wait_idle(10)
    failed = [a for a in read_alerts("incident.retrain-fails", since_id=since) if a.details["phase"] == "failed"]
    assert failed and failed[0].severity == "error" and "the DAG run failed" in failed[0].message, (
        f"expected an error row naming the failure, got {[a.message for a in failed]}")
    with pytest.raises(ValueError, match="alerts"):
        responder.handle({"hello": "world"})


def test_alertmanager_routes_the_triggers_to_the_responder_and_still_everything_to_the_sink(tmp_path):
    """Check the generated route: the responder first (continue), then the sink for every alert; amtool accepts it."""
    config = mc.alertmanager_config("http://127.0.0.1:1/alertmanager", {
        "retrain": {"url": "http://127.0.0.1:2/alertmanager", "alertnames": ["PredictionScoreDrift"]}})
    routes = config["route"]["routes"]
    assert routes[0]["receiver"] == "respond-retrain" and routes[0]["continue"] is True, routes
    assert routes[0]["matchers"] == ['alertname=~"PredictionScoreDrift"'], routes
    assert routes[-1] == {"receiver": "alert-sink"}, f"expected every alert to reach the sink last, got {routes}"
    amtool = shutil.which("amtool") or shutil.which("prometheus-alertmanager-amtool")
    if amtool:
        path = mc.write_yaml(tmp_path / "am.yml", config)
        checked = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, f"expected amtool to accept the config, got:\n{checked.stdout}{checked.stderr}"
