"""The workbook's charts: a DAG run's task timeline, wall-time bars, drift histograms, consumer-group lag.

Each function returns a matplotlib ``Figure`` (or draws on the ``ax`` given) and imports matplotlib
only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from helpers.airflow.results import DagRunResult, TaskTry
from helpers.streaming.scenario import ScenarioRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure
if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_scenario(run: ScenarioRun, title: str = "Consumer group: lag and partition owners") -> Any:
    """Draw lag over time (top) and which member owned each partition (bottom), with the actions marked."""
    import matplotlib.pyplot as plt

    fig, (ax_lag, ax_own) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [1.2, 1]})
    times = [s["t"] for s in run.samples]
    parts = sorted({p for s in run.samples for p in s["lag"]})
    ax_lag.stackplot(times, [[s["lag"].get(p, 0) for s in run.samples] for p in parts],
                     labels=[f"partition {p}" for p in parts], alpha=0.8)
    ax_lag.set_ylabel("lag (messages)")
    ax_lag.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    names = sorted({o for s in run.samples for o in s["owners"].values()})
    colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(names)}
    for p in parts:
        for a, b in zip(run.samples, run.samples[1:]):
            owner = a["owners"].get(p)
            if owner:
                ax_own.plot([a["t"], b["t"]], [p, p], color=colours[owner], linewidth=8, solid_capstyle="butt")
    for name in names:
        ax_own.plot([], [], color=colours[name], linewidth=8, label=name)
    ax_own.set_yticks(parts)
    ax_own.set_ylabel("partition")
    ax_own.set_xlabel("seconds since start")
    ax_own.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, title="member")
    for at, action, name in run.actions:
        for ax in (ax_lag, ax_own):
            ax.axvline(at, color="red" if action == "kill" else "grey", linestyle="--", linewidth=1)
        ax_lag.annotate(f"{action} {name}", (at, ax_lag.get_ylim()[1] * 0.9), rotation=90, fontsize=8,
                        va="top", ha="right")
    ax_lag.set_title(title)
    fig.tight_layout()
    return fig


STATE_COLORS = {"success": "#2e9e44", "failed": "#d62728", "up_for_retry": "#f2b01e",
                "upstream_failed": "#ff7f0e", "skipped": "#e377c2", "running": "#1f77b4"}


def task_timeline(result: DagRunResult) -> Figure:
    """Draw the run as a Gantt chart: one row per task, one bar per try, coloured by state.

    Args:
        result: what :func:`run_dag` returned.

    Returns:
        A matplotlib Figure (closed in pyplot, so a notebook shows it once).
    """
    import matplotlib.pyplot as plt  # sets up inline display in Jupyter
    from matplotlib.patches import Patch

    tries = {task_id: [*task.earlier_tries, TaskTry(task.try_number, task.state,
                                                     task.start_date, task.end_date)]
             for task_id, task in result.tasks.items()}
    dated = [t for ts in tries.values() for t in ts if t.start_date]
    t0 = min((t.start_date for t in dated), default=None)
    span = max(((t.end_date or t.start_date) - t0).total_seconds() for t in dated) if dated else 1.0
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(tries) + 1.5), layout="constrained")
    plt.close(fig)  # returned, not drawn by pyplot: a notebook shows it once
    names = list(tries)[::-1]  # first task on top
    for row, task_id in enumerate(names):
        for attempt in tries[task_id]:
            if attempt.start_date and t0 is not None:  # tasks that never ran get a stub at the end
                left = (attempt.start_date - t0).total_seconds()
                end = attempt.end_date or attempt.start_date
                width = (end - attempt.start_date).total_seconds()
            else:
                left, width = span, 0.0
            ax.barh(row, max(width, span * 0.01), left=left, height=0.6,
                    color=STATE_COLORS.get(attempt.state, "#7f7f7f"), edgecolor="black", lw=0.5)
            if len(tries[task_id]) > 1:
                ax.annotate(f"try {attempt.try_number}", (left, row + 0.32), fontsize="small")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.25)  # room for the "try n" labels above the top row
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(f"{result.dag_id}: {result.state}  (logical date "
                 f"{result.logical_date:%Y-%m-%d %H:%M})" if result.logical_date
                 else f"{result.dag_id}: {result.state}")
    states = sorted({t.state for ts in tries.values() for t in ts})
    ax.legend(handles=[Patch(color=STATE_COLORS.get(s, "#7f7f7f"), label=s) for s in states],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_drift(reference: pd.DataFrame, current: pd.DataFrame, drift: pd.DataFrame, bins: int = 40) -> Figure:
    """One panel per feature: reference vs current (histograms for numbers, shares for categories), the
    title showing the test, its statistic and the verdict (red when drifted).

    Args:
        reference, current: the two batches.
        drift: one row per column with ``column``, ``test``, ``statistic``, ``drifted``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(drift)
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3.6 * cols, 2.8 * ((n + cols - 1) // cols)),
                             squeeze=False)
    for ax, row in zip(axes.flat, drift.itertuples()):
        ref, cur = reference[row.column].dropna(), current[row.column].dropna()
        if pd.api.types.is_numeric_dtype(ref) and row.test != "psi":
            upper = np.nanpercentile(np.concatenate([ref, cur]), 99)
            edges = np.linspace(min(ref.min(), cur.min()), upper, bins)
            ax.hist(ref.clip(upper=upper), edges, alpha=0.5, density=True, label="reference")
            ax.hist(cur.clip(upper=upper), edges, alpha=0.5, density=True, label="current")
        else:
            shares = pd.DataFrame({"reference": ref.value_counts(normalize=True),
                                   "current": cur.value_counts(normalize=True)}).fillna(0)
            shares = shares.sort_values("reference", ascending=False).head(12)
            shares.plot.bar(ax=ax, alpha=0.8, legend=False)
            ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        color = "#d62728" if row.drifted else "#2e9e44"
        ax.set_title(f"{row.column}: {row.test} {row.statistic:.3f} {'DRIFT' if row.drifted else 'ok'}",
                     color=color, fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------------- charts
def times_chart(seconds: Mapping[str, float], title: str = "Wall time", ax: Any = None,
                baseline: str | None = None) -> Any:
    """Draw a horizontal bar per label with its time, and ``N× faster`` against ``baseline``.

    Args:
        seconds: ``{label: seconds}`` in the order to draw, top to bottom.
        baseline: the label the others are compared with (default: the first).

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    labels = list(seconds)
    values = [seconds[k] for k in labels]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    base = seconds[baseline or labels[0]]
    colors = ["#c44e52" if k == (baseline or labels[0]) else "#4c72b0" for k in labels]
    bars = ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    for bar, label in zip(bars, labels[::-1]):
        note = f"{seconds[label]:.1f} s"
        if label != (baseline or labels[0]) and seconds[label] > 0:
            note += f"  ({base / seconds[label]:.1f}× faster)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + note, va="center")
    ax.set_xlabel("seconds (lower is better)")
    ax.set_title(title)
    ax.set_xlim(0, max(values) * 1.45 if values else 1)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
