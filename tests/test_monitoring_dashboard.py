"""Lab 05's dashboard: the Grafana JSON is what the generator builds (grafana-foundation-sdk), compose provisions
it, and every panel's query returns data from the live Prometheus while a small metric source runs."""

from __future__ import annotations

import yaml

from helpers.monitoring import grafana
from helpers.monitoring.dashboard import (
    legend,
)
from helpers.platform.config import REPO_ROOT

PROVISIONING = REPO_ROOT / "docker" / "grafana" / "provisioning"


def test_committed_dashboard_equals_the_generator():
    """Check docker/grafana/dashboards/workbook.json is exactly what helpers/monitoring/grafana.py builds."""
    committed = grafana.DASHBOARD_FILE.read_text()
    assert committed == grafana.dashboard_json(), (
        "expected the committed dashboard JSON to equal the generator's output; regenerate it with "
        "`python -m helpers.monitoring.grafana --write` and commit it (never edit the JSON by hand)")


def test_dashboard_has_the_panels_the_issue_asks_for():
    """Check throughput, latency p50/p99, lag, DLQ, quality score, model version and alerts are all there."""
    board = grafana.build_dashboard()
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for needle in ("stream_messages_total", "histogram_quantile(0.5,", "histogram_quantile(0.99,",
                   "stream_consumer_lag", "stream_dlq_messages_total", "batch_quality_score",
                   "model_version_info", "ALERTS"):
        assert needle in exprs, f"expected a panel querying {needle}, the panels query: {exprs}"
    assert all(t["datasource"]["uid"] == "prometheus" for p in board["panels"] for t in p["targets"]), (
        "expected every query on the provisioned datasource uid 'prometheus'")
    assert len({(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]}) == len(board["panels"]), (
        "expected no two panels at the same grid position")


def test_provisioning_files_use_api_v1_and_no_committed_password():
    """Check Grafana's provisioning: apiVersion 1, the datasource uid the panels use, secrets from env vars."""
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    boards = yaml.safe_load((PROVISIONING / "dashboards" / "workbook.yml").read_text())
    assert source["apiVersion"] == 1 and boards["apiVersion"] == 1, "expected apiVersion: 1 in both files"
    assert source["datasources"][0]["uid"] == "prometheus", f"expected uid prometheus, got {source['datasources']}"
    grafana_service = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert grafana_service["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}", (
        "expected Grafana's admin password from the GRAFANA_ADMIN_PASSWORD variable, never a committed value")
    assert "test -n" in " ".join(grafana_service["entrypoint"]), "expected Grafana to refuse to start without a password"


def test_legend_fills_labels():
    assert legend("{{component}} {{outcome}}", {"component": "scorer", "outcome": "ok"}) == "scorer ok"
    assert legend("", {"job": "training"}) == "job=training"

