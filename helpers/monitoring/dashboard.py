"""The Grafana dashboard, rendered without Grafana: each panel's PromQL run against the live Prometheus and drawn.

It reads the same dashboard JSON compose's Grafana shows (:func:`helpers.monitoring.grafana.build_dashboard`),
runs every target's ``expr`` with Prometheus's ``query_range`` API and draws the panels with matplotlib:
time series as lines (with the panel's objective as a dashed line), stat panels as their last values.
:func:`graph_links` gives each panel's link to Prometheus's own graph page::

    fig = render_dashboard(minutes=15)        # a matplotlib Figure; a notebook displays it
    fig.savefig("dashboard.png", dpi=120)
"""

from __future__ import annotations

import math
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from helpers.platform.config import monitoring_url

Series = tuple[str, list[datetime], list[float]]


@dataclass
class PanelData:
    """One panel's results: its title, kind, unit, objective, and one ``(legend, times, values)`` per series."""

    title: str
    kind: str
    unit: str
    objective: float | None
    queries: list[str]
    series: list[Series] = field(default_factory=list)

    def has_data(self) -> bool:
        """True if some series holds a number (not only NaN, as a rate over an idle histogram gives)."""
        return any(not math.isnan(v) for _, _, values in self.series for v in values)


def query_range(expr: str, minutes: float = 15, step_s: float | None = None,
                url: str | None = None) -> list[dict[str, Any]]:
    """Run ``expr`` over the last ``minutes`` (Prometheus ``/api/v1/query_range``); return its ``result`` list.

    Raises:
        ValueError: Prometheus rejected the query (the message names the query and Prometheus's reason).
    """
    end = time.time()
    step = step_s or max(2.0, minutes * 60 / 300)  # at most ~300 points per series
    reply = httpx.get(f"{url or monitoring_url('prometheus')}/api/v1/query_range", timeout=30,
                      params={"query": expr, "start": end - minutes * 60, "end": end, "step": step})
    body = reply.json()
    if body.get("status") != "success":
        raise ValueError(f"Prometheus rejected {expr!r}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


def legend(fmt: str, labels: dict[str, str]) -> str:
    """Fill a Grafana legend format (``{{component}} {{outcome}}``) from a series' labels."""
    text = fmt
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return text or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def panel_data(board: dict[str, Any] | None = None, minutes: float = 15, url: str | None = None) -> list[PanelData]:
    """Run every panel's queries of ``board`` (default: the generated dashboard) against Prometheus."""
    if board is None:
        from helpers.monitoring.grafana import build_dashboard

        board = build_dashboard()
    panels = []
    for panel in board["panels"]:
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        steps = defaults.get("thresholds", {}).get("steps", [])
        objective = next((s["value"] for s in steps if s.get("value") is not None), None)
        data = PanelData(panel["title"], panel["type"], defaults.get("unit", "short"), objective,
                         [t["expr"] for t in panel.get("targets", [])])
        for target in panel.get("targets", []):
            for result in query_range(target["expr"], minutes, url=url):
                times = [datetime.fromtimestamp(float(t)) for t, _ in result["values"]]
                values = [float(v) for _, v in result["values"]]
                data.series.append((legend(target.get("legendFormat", ""), result["metric"]), times, values))
        panels.append(data)
    return panels


def _scale(unit: str) -> tuple[float, str]:
    return {"percentunit": (100.0, "%"), "s": (1000.0, "ms"), "h": (1.0, "hours")}.get(unit, (1.0, ""))


def _draw(ax: Any, panel: PanelData, minutes: float = 15) -> None:
    factor, label = _scale(panel.unit)
    ax.set_title(panel.title, fontsize=10, loc="left")
    if not panel.has_data():
        ax.text(0.5, 0.5, "no data", ha="center", va="center", color="grey", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if panel.kind == "stat":
        ax.axis("off")
        for row, (name, _, values) in enumerate(panel.series[:6]):
            last = next((v for v in reversed(values) if not math.isnan(v)), math.nan)
            text = name if "version" in panel.title.lower() else f"{name}: {last * factor:g}{label}"
            ax.text(0.02, 0.8 - 0.15 * row, text, fontsize=13, weight="bold", transform=ax.transAxes)
        return
    for name, times, values in panel.series:
        ax.plot(times, [v * factor for v in values], label=name, linewidth=1.4)
    if panel.objective is not None:
        ax.axhline(panel.objective * factor, color="red", linestyle="--", linewidth=1, label="objective")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(axis="x", labelsize=7)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if minutes <= 10 else "%H:%M"))


def render_dashboard(board: dict[str, Any] | None = None, minutes: float = 15, url: str | None = None,
                     panels: list[PanelData] | None = None) -> Figure:
    """Draw the dashboard's panels (queried now, unless ``panels`` is given) on one matplotlib Figure."""
    panels = panels if panels is not None else panel_data(board, minutes, url)
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    fig = Figure(figsize=(16, 3.4 * rows), layout="constrained")
    fig.suptitle(f"Module 05 capstone monitoring: last {minutes:g} minutes ({datetime.now():%H:%M:%S})")
    for index, panel in enumerate(panels):
        _draw(fig.add_subplot(rows, columns, index + 1), panel, minutes)
    return fig


def prometheus_graph_url(expr: str, minutes: float = 15, url: str | None = None) -> str:
    """Return the link to ``expr`` on Prometheus's own graph page."""
    query = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{int(minutes)}m"})
    return f"{url or monitoring_url('prometheus')}/graph?{query}"


def graph_links(board: dict[str, Any] | None = None, minutes: float = 15) -> dict[str, list[str]]:
    """Return ``{panel title: [Prometheus graph page URL per query]}``."""
    if board is None:
        from helpers.monitoring.grafana import build_dashboard

        board = build_dashboard()
    return {p["title"]: [prometheus_graph_url(t["expr"], minutes) for t in p.get("targets", [])]
            for p in board["panels"]}
