"""``make capstone``'s training part: ``python -m helpers.capstone`` runs the training DAG headless against
the live services, prints a short report and writes ``<capstone>/summary.json`` (its own capstone folder here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from helpers.platform.config import REPO_ROOT

pytestmark = pytest.mark.slow  # a fresh interpreter: Airflow, Spark, MLflow and DVC start up (about a minute)


def _capstone(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBOOK_CAPSTONE": str(tmp_path), "WORKBOOK_DVC_REMOTE": str(tmp_path / "dvc-remote"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "helpers.capstone", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def test_capstone_training_part_writes_its_summary_and_the_dag_pushes_its_run(tmp_path, events_api, monkeypatch):
    """Check that the capstone trains on the API's days and records records, quality, model, hashes and times,
    and that the DAG's success callback pushed the run's metrics to a live Pushgateway (job "training")."""
    from prometheus_client.parser import text_string_to_metric_families

    from helpers.platform import monitoring_services as ms
    from helpers.platform.ports import free_port

    monkeypatch.setenv("WORKBOOK_MONITORING_STATE", str(tmp_path / "monitoring"))  # its own Pushgateway
    monkeypatch.setenv("WORKBOOK_PUSHGATEWAY_PORT", str(free_port()))
    ms.start_service("pushgateway")
    try:
        done = _capstone(tmp_path, "--date", "2026-01-02", "--days", "2", "--parts", "training")
        pushed = {(s.name, s.labels.get("metric")): s.value
                  for f in text_string_to_metric_families(httpx.get(f"{ms.PUSHGATEWAY.url}/metrics", timeout=10).text)
                  for s in f.samples if s.labels.get("job") == "training"}
    finally:
        ms.stop_monitoring()
    assert done.returncode == 0, f"expected exit 0, got {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads((tmp_path / "summary.json").read_text())
    training = summary["parts"]["training"]
    assert summary["ok"] and training["ok"], training.get("error")
    assert training["records"]["raw_events"] > 10_000, f"expected 10K+ records, got {training['records']}"
    assert training["quality"]["score"] > 95.0, f"expected a quality score above 95 %, got {training['quality']}"
    model = training["model"]
    assert model["version"] == "1" and model["champion"] == "1", f"expected version 1 as champion, got {model}"
    assert model["metrics"]["pr_auc"] > model["baseline"]["pr_auc"], f"expected the model to beat the prior: {model}"
    assert [r["day"] for r in training["data"]["raw"]] == ["2026-01-01", "2026-01-02"]
    assert len(training["data"]["features"]["md5"]) == 32 and training["data"]["dvc_status_clean"] is True
    assert set(training["tasks"]) >= {"extract_data", "register_model"}
    assert all(t["seconds"] is not None for t in training["tasks"].values()), "expected every task's time"
    assert "data quality score" in done.stdout and "summary:" in done.stdout, done.stdout[-2000:]
    expected = {("batch_rows", None): training["records"]["raw_events"], ("batch_last_run_success", None): 1.0,
                ("batch_quality_score", None): training["quality"]["score"] / 100,
                ("batch_model_metric", "roc_auc"): training["model"]["metrics"]["roc_auc"]}
    for key, value in expected.items():
        assert key in pushed and abs(pushed[key] - value) < 1e-6, (
            f"expected the DAG's success callback to push {key} = {value} under job 'training', got "
            f"{pushed.get(key)} (pushed: {sorted(pushed)}); see register_model's log (push_run_metrics)")
    assert pushed.get(("batch_duration_seconds", None), 0) > 0, f"expected a run duration pushed, got {pushed}"


def test_capstone_empty_day_is_reported_as_a_failure(tmp_path, events_api):
    """Check that a day without events exits 1 and the summary says that no model was trained."""
    done = _capstone(tmp_path, "--date", "2026-02-01", "--days", "1")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert done.returncode == 1 and not summary["ok"], f"expected a failed capstone, got {done.stdout[-1500:]}"
    assert "no model was trained" in summary["parts"]["training"]["error"]


def test_capstone_unknown_part_is_refused(tmp_path):
    """Check that an unknown part name stops before anything runs, listing the known parts."""
    done = _capstone(tmp_path, "--parts", "nonsense")
    assert done.returncode == 2 and "training" in done.stderr, done.stderr[-1000:]


def test_capstone_monitoring_part_watches_the_live_pipeline_and_lists_the_alerts(tmp_path, kafka_broker, monkeypatch):
    """Check the monitoring part: every dashboard panel has data from the live stage processes, QualityScoreLow fires and resolves."""
    from helpers.monitoring.grafana import PANELS
    from helpers.platform.ports import free_port

    state = tmp_path / "state"  # its own services (state folder and free ports): none of test_monitoring.py's
    env = {"WORKBOOK_STATE": str(state), "WORKBOOK_ALERTS_DB": str(state / "alerts" / "alerts.db"),
           "WORKBOOK_MONITORING_STATE": str(state / "monitoring"),  # else the worker's home (conftest), shared
           "KAFKA_BOOTSTRAP_SERVERS": kafka_broker,  # the suite's broker, not one in this test's state folder
           **{f"WORKBOOK_{name}_PORT": str(free_port()) for name in ("PROMETHEUS", "PUSHGATEWAY", "ALERTMANAGER",
                                                                   "ALERT_RECEIVER")}}
    for key, value in env.items():  # undone after the test; the subprocess and the clean-up see the same services
        monkeypatch.setenv(key, value)
    try:
        done = _capstone(tmp_path, "--parts", "monitoring")  # no champion in its registry: it makes a small one
    finally:
        from helpers.platform.monitoring_services import stop_monitoring

        stopped = stop_monitoring()
    summary = json.loads((tmp_path / "summary.json").read_text())
    section = summary["parts"]["monitoring"]
    assert done.returncode == 0, (f"expected exit 0, got {done.returncode}: {section.get('error')}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert all(stopped.values()), f"expected the part's four services running until stopped here, got {stopped}"
    logs = f"see the stages' logs in {section['live']['logs']}"
    for panel in PANELS:
        assert section["panels_with_data"].get(panel.title), (
            f"expected the panel {panel.title!r} to return data from the live Prometheus (queries "
            f"{[q for q, _ in panel.queries]}), but it was empty; {logs}")
    series = section["live"]["series_per_stage"]
    assert set(series) == {"features", "model"} and min(series.values()) > 20, (
        f"expected both stage processes to serve their metrics (20+ series each), got {series}; {logs}")
    assert section["live"]["predictions"] > 0, f"expected predictions from the live pipeline, got {section['live']}"
    probe = [a for a in section["alerts"] if a["alertname"] == "QualityScoreLow"
             and a["labels"].get("job") == "capstone_quality_probe"]
    assert probe and probe[0]["fired_at"] and probe[0]["resolved_at"], f"expected the probe fired and resolved, got {section['alerts']}"
    assert "80%" in probe[0]["summary"], f"expected the summary to give the score, got {probe[0]['summary']}"
    assert "alert QualityScoreLow: fired" in done.stdout and "series per stage process" in done.stdout, done.stdout[-2000:]


def test_capstone_streaming_part_serves_the_champion_and_records_the_latency(tmp_path, kafka_broker, monkeypatch):
    """Check the streaming part: every valid event scored by the champion, the DLQ count, latency p50 <= p99 <= max."""
    from helpers.registry.models import champion_version

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # mlflow.set_tracking_uri (called by champion_version below) also writes MLFLOW_TRACKING_URI into this
    # process's environment: restore the suite's registry afterwards (test_isolation checks it on this worker)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ["MLFLOW_TRACKING_URI"])
    env = {**os.environ, "WORKBOOK_CAPSTONE": str(tmp_path), "MLFLOW_TRACKING_URI": uri,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    register = "from benchmarks.serving import register_model; print(register_model(5000))"
    made = subprocess.run([sys.executable, "-c", register], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, f"expected a registered champion, got:\n{made.stderr[-2000:]}; try `make bench` alone"
    name = made.stdout.strip().splitlines()[-1]
    done = _capstone(tmp_path, "--parts", "streaming", "--model", name, "--stream-rate", "500", "--stream-seconds", "4")
    assert done.returncode == 0, f"expected exit 0, got {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    section = json.loads((tmp_path / "summary.json").read_text())["parts"]["streaming"]
    logs = f"see the stages' logs in {section['logs']}"
    assert section["events_sent"] == 2000, f"expected 500/s x 4 s = 2,000 events sent, got {section['events_sent']}"
    assert section["predictions"] == section["valid_events_sent"] > 0, \
        f"expected one prediction per valid event, got {section['predictions']} for {section['valid_events_sent']}; " \
        f"{logs}"
    assert section["dlq"] == section["dlq_expected"] > 0, \
        f"expected each malformed event dead-lettered ({section['dlq_expected']}), got {section['dlq']}; {logs}"
    champion = champion_version(name, tracking_uri=uri)
    assert section["model"]["name"] == name and section["model"]["served_versions"] == [champion], \
        f"expected only the champion v{champion} of {name} served, got {section['model']}; {logs}"
    lat = section["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], f"expected 0 < p50 <= p99 <= max (ms), got {lat}; {logs}"
    assert section["throughput_per_s"] > 0, f"expected a throughput, got {section.get('throughput_per_s')}; {logs}"
    assert "latency from the intended send time" in done.stdout, \
        f"expected the latency in the report:\n{done.stdout[-2000:]}"


def test_capstone_incident_part_retrains_once_on_the_drift_alert_and_serves_the_new_champion(
        tmp_path, kafka_broker, events_api, monkeypatch):
    """Check the incident chain on live services: the drift alert through Alertmanager starts one retrain (cool-down),
    the DAG registers a new champion, the running model server's predictions carry it, the alert resolves."""
    from helpers.platform.ports import free_port

    state = tmp_path / "state"  # its own services, as in the monitoring part's test
    env = {"WORKBOOK_STATE": str(state), "WORKBOOK_ALERTS_DB": str(state / "alerts" / "alerts.db"),
           "WORKBOOK_MONITORING_STATE": str(state / "monitoring"), "KAFKA_BOOTSTRAP_SERVERS": kafka_broker,
           "WORKBOOK_API_URL": events_api,  # the suite's API, not one in this test's state folder
           **{f"WORKBOOK_{name}_PORT": str(free_port()) for name in ("PROMETHEUS", "PUSHGATEWAY", "ALERTMANAGER",
                                                                   "ALERT_RECEIVER")}}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        done = _capstone(tmp_path, "--parts", "incident")
    finally:
        from helpers.platform.monitoring_services import stop_monitoring

        stop_monitoring()
    section = json.loads((tmp_path / "summary.json").read_text())["parts"]["incident"]
    logs = f"see the stages' logs in {section.get('logs')}"
    assert done.returncode == 0, (f"expected exit 0, got {done.returncode}: {section.get('error')}; {logs}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert section["retrains"] == 1 and section["responder_decisions"].count("started") == 1, (
        f"expected one retrain for the alert storm, got {section['retrains']} ({section['responder_decisions']})")
    assert "cooldown" in section["responder_decisions"], (
        f"expected the second drifting series held by the cool-down, got {section['responder_decisions']}")
    before, after = section["champion_before"], section["champion_after"]
    assert after != before and after in section["versions_seen"] and before in section["versions_seen"], (
        f"expected predictions by v{before} then by the new champion v{after}, got {section['versions_seen']}; {logs}")
    times = section["timeline_s"]
    assert None not in times.values(), f"expected every step of the timeline, got {times}"
    order = ("fired", "retrain_started", "new_version_registered", "first_prediction_by_it")
    assert [times[k] for k in order] == sorted(times[k] for k in order), (
        f"expected fired -> retrain started -> new version registered -> its first prediction, in that order, got {times}")
    assert "timeline from the alert's start" in done.stdout, done.stdout[-2000:]
