"""Lab 05's Grafana dashboard as code, built with grafana-foundation-sdk from one list of panels.

The generated JSON is committed at ``docker/grafana/dashboards/workbook.json`` (provisioned into compose's
Grafana) and must equal what this module builds (``tests/test_monitoring_dashboard.py`` checks it); after
changing :data:`PANELS`, regenerate it with ``python -m helpers.monitoring.grafana --write``. The embedded
renderer (:mod:`helpers.monitoring.dashboard`) draws the same JSON's panels from the live Prometheus.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    common,
    dashboard,
    prometheus,
    stat,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueTextMode,
    GraphThresholdsStyleMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    GridPos,
    Threshold,
    ThresholdsMode,
)

from helpers.platform.config import REPO_ROOT

DASHBOARD_FILE = REPO_ROOT / "docker" / "grafana" / "dashboards" / "workbook.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")  # provisioned with this uid (compose)
UID = "module05-capstone"


@dataclass(frozen=True)
class PanelSpec:
    """One panel: its PromQL queries with legends, its kind (``timeseries`` or ``stat``), unit and objective."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    objective: float | None = None
    description: str = ""


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("Throughput (messages/s)", (
        ('sum by (component, outcome) (rate(stream_messages_total[1m]))', "{{component}} {{outcome}}"),),
        unit="short", description="Rate of the RED metrics: messages handled per second, by outcome."),
    PanelSpec("Error ratio", (
        ('sum by (component) (rate(stream_messages_total{outcome="error"}[1m]))'
         ' / sum by (component) (rate(stream_messages_total[1m]))', "{{component}}"),),
        unit="percentunit", objective=0.05, description="Errors of the RED metrics; alert over 5 %."),
    PanelSpec("Prediction latency p50 / p99", (
        ("histogram_quantile(0.5, sum by (le) (rate(prediction_latency_seconds_bucket[1m])))", "p50"),
        ("histogram_quantile(0.99, sum by (le) (rate(prediction_latency_seconds_bucket[1m])))", "p99")),
        unit="s", objective=0.1, description="Duration of the RED metrics; the objective is p99 under 100 ms."),
    PanelSpec("Consumer lag (messages)", (
        ("sum by (group, topic) (stream_consumer_lag)", "{{group}} on {{topic}}"),),
        description="Messages not yet consumed; a growing lag fires ConsumerLagGrowing."),
    PanelSpec("Dead-letter rate (messages/s)", (
        ("sum by (component, reason) (rate(stream_dlq_messages_total[1m]))", "{{component}}: {{reason}}"),),
        description="Messages sent to the dead-letter topic, by reason."),
    PanelSpec("Mean prediction score", (
        ("sum(rate(prediction_score_sum[2m])) / sum(rate(prediction_score_count[2m]))", "last 2 min"),
        ("sum(rate(prediction_score_sum[30m])) / sum(rate(prediction_score_count[30m]))", "last 30 min")),
        unit="short", description="A gap over 0.10 between the two lines fires PredictionScoreDrift."),
    PanelSpec("Data quality score", (("batch_quality_score", "{{job}}"),),
              unit="percentunit", objective=0.95, description="Pushed by each batch run; alert under 95 %."),
    PanelSpec("Hours since the last successful run", (
        ("(time() - batch_last_success_timestamp_seconds) / 3600", "{{job}}"),),
        unit="h", objective=26, description="Training older than 26 h fires TrainingStale."),
    PanelSpec("Model version serving", (("model_version_info", "{{model}} v{{version}} ({{alias}})"),),
              kind="stat", description="Which registered model version the model server loaded."),
    PanelSpec("Alerts firing", (('sum by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}"),),
              kind="stat", description="Prometheus's firing alerts (Alertmanager routes them to the alert sink)."),
)


def _panel(spec: PanelSpec, index: int) -> Any:
    builder = (stat.Panel() if spec.kind == "stat" else timeseries.Panel()).title(spec.title)
    builder = builder.description(spec.description).datasource(DATASOURCE).unit(spec.unit)
    builder = builder.grid_pos(GridPos(h=8, w=8, x=8 * (index % 3), y=8 * (index // 3)))
    for ref, (expr, legend) in zip("ABCDEFGH", spec.queries):
        builder = builder.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
                                      .datasource(DATASOURCE).range())
    if spec.kind == "stat":
        builder = builder.text_mode(BigValueTextMode.NAME if "version" in spec.title.lower()
                                    else BigValueTextMode.VALUE_AND_NAME)
        builder = builder.reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if spec.objective is not None:
        builder = builder.thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
            [Threshold(value=None, color="green"), Threshold(value=spec.objective, color="red")]))
        if spec.kind == "timeseries":
            builder = builder.thresholds_style(common.GraphThresholdsStyleConfig().mode(
                GraphThresholdsStyleMode.LINE))
    return builder


def build_dashboard() -> dict[str, Any]:
    """Return the dashboard as Grafana's JSON model (a dict)."""
    board = (dashboard.Dashboard("Module 05 capstone: pipeline and model monitoring").uid(UID)
             .tags(["module05", "lab05"]).refresh("10s").time("now-30m", "now").timezone("browser")
             .description("Throughput, errors, latency, lag, dead letters, drift, data quality, freshness, "
                          "model version and alerts of the Lab 05 capstone. Generated by helpers/monitoring/"
                          "grafana.py: edit that, not this JSON."))
    for index, spec in enumerate(PANELS):
        board = board.with_panel(_panel(spec, index))
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))


def dashboard_json() -> str:
    """Return the dashboard JSON exactly as committed (sorted keys, 2-space indent, final newline)."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.monitoring.grafana --write | --check``."""
    parser = argparse.ArgumentParser(description="Generate Lab 05's Grafana dashboard JSON.")
    parser.add_argument("--write", action="store_true", help=f"write {DASHBOARD_FILE.relative_to(REPO_ROOT)}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs")
    args = parser.parse_args(argv)
    text = dashboard_json()
    if args.write:
        DASHBOARD_FILE.parent.mkdir(parents=True, exist_ok=True)
        DASHBOARD_FILE.write_text(text)
        print(f"wrote {DASHBOARD_FILE}")
    if args.check:
        current = DASHBOARD_FILE.read_text() if DASHBOARD_FILE.exists() else ""
        if current != text:
            print(f"{DASHBOARD_FILE} differs from helpers/monitoring/grafana.py: run "
                  "`python -m helpers.monitoring.grafana --write` and commit it")
            return 1
    if not (args.write or args.check):
        print(text, end="")
    return 0


def load_committed(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    """Return the committed dashboard JSON (what compose's Grafana shows)."""
    return json.loads(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
