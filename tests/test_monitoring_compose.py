"""Lab 05's docker-compose side: Prometheus, Alertmanager, Pushgateway, Grafana and ELK, behind the
`monitoring` profile, pinned to the embedded versions, on 127.0.0.1, with configurations that match the
embedded ones (promtool checks the compose Prometheus configuration)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from helpers.platform import monitoring_config as mc
from helpers.platform.config import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
MONITORING = ("prometheus", "alertmanager", "pushgateway", "alert-receiver", "grafana", "elasticsearch",
              "es-setup", "kibana", "filebeat")


def test_monitoring_services_are_behind_their_profile_and_published_on_loopback():
    """Check Labs 00-04 never start them (profile) and every published port is on 127.0.0.1."""
    for name in MONITORING:
        assert name in SERVICES, f"expected a {name} service in docker-compose.yml"
        assert SERVICES[name].get("profiles") == ["monitoring"], f"expected {name} in the `monitoring` profile only"
        for port in SERVICES[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"expected {name} to publish {port} on 127.0.0.1 only"


@pytest.mark.parametrize("service, program", [("prometheus", "prometheus"),
                                              ("alertmanager", "prometheus-alertmanager"),
                                              ("pushgateway", "prometheus-pushgateway")])
def test_images_match_the_embedded_versions(service, program):
    """Check compose runs the same Prometheus/Alertmanager/Pushgateway version as the OS package."""
    exe = shutil.which(program)
    if exe is None:
        pytest.skip(f"{program} is not installed")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    version = re.search(r"version (\d+\.\d+\.\d+)", out.stdout + out.stderr).group(1)
    tag = SERVICES[service]["image"].rsplit(":", 1)[1]
    assert tag == f"v{version}", f"expected {service}'s image tagged v{version} (the embedded one), got {tag}"


def test_elk_images_share_one_version_and_the_log_mapping():
    """Check Elasticsearch, Kibana and Filebeat agree, and es-setup installs the embedded log mapping."""
    tags = {SERVICES[name]["image"].rsplit(":", 1)[1] for name in ("elasticsearch", "kibana", "filebeat")}
    assert len(tags) == 1, f"expected one Elastic stack version, got {tags}"
    mounts = " ".join(SERVICES["es-setup"]["volumes"])
    assert "helpers/monitoring/logs_index_template.json" in mounts, f"expected the shared template mounted, got {mounts}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_compose_prometheus_config_passes_promtool_and_uses_our_rules():
    """Check docker/prometheus/prometheus.yml with `promtool check config` and its rule and target paths."""
    path = REPO_ROOT / "docker" / "prometheus" / "prometheus.yml"
    done = subprocess.run([shutil.which("promtool"), "check", "config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"expected promtool to accept {path}, got:\n{done.stdout}{done.stderr}"
    config = yaml.safe_load(path.read_text())
    mounts = SERVICES["prometheus"]["volumes"]
    assert "./helpers/monitoring/rules:/etc/prometheus/rules:ro" in mounts, f"expected the rules mounted, got {mounts}"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"], f"got {config['rule_files']}"
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    embedded = {job["job_name"] for job in mc.prometheus_config(REPO_ROOT / "x")["scrape_configs"]}
    assert jobs == embedded, f"expected the embedded scrape jobs {embedded}, got {jobs}"


def test_compose_alertmanager_config_is_the_embedded_one():
    """Check docker/alertmanager/alertmanager.yml is the generated configuration with the receiver container."""
    committed = yaml.safe_load((REPO_ROOT / "docker" / "alertmanager" / "alertmanager.yml").read_text())
    assert committed == mc.alertmanager_config("http://alert-receiver:9094/alertmanager"), (
        "expected docker/alertmanager/alertmanager.yml to equal monitoring_config.alertmanager_config(...) "
        "for http://alert-receiver:9094/alertmanager; regenerate it")


def test_notebook_container_points_the_helpers_at_the_containers():
    """Check the workbook service's *_URL variables name compose's services (nothing embedded starts there)."""
    env = SERVICES["workbook"]["environment"]
    expected = {"PROMETHEUS_URL": "http://prometheus:9090", "ALERTMANAGER_URL": "http://alertmanager:9093",
                "PUSHGATEWAY_URL": "http://pushgateway:9091", "OPENSEARCH_URL": "http://elasticsearch:9200",
                "ALERT_RECEIVER_URL": "http://alert-receiver:9094"}
    got = {key: env.get(key) for key in expected}
    assert got == expected, f"expected {expected}, got {got}"
