"""Quality-gate plumbing on Great Expectations 1.x: run a saved expectation suite on a data file and
decide pass/fail, from Python, a CI job or an Airflow task.

- :func:`gx_context` makes a file-backed GX project (``gx/`` with its data docs) in a folder you choose;
- :func:`save_suite` / :func:`load_suite` write an ``ExpectationSuite`` as JSON and read it back;
- :func:`run_suite` validates a DataFrame against a suite (an ephemeral context: nothing on disk) and
  returns a :class:`GateResult` that names the failing expectations;
- :func:`run_gate` reads a data file first; ``python -m helpers.quality gate DATA --suite SUITE.json
  [--threshold PCT]`` is the same as a command: exit 0 when the batch passes, 1 when it fails (the
  failing expectations are printed), 2 when the data or suite cannot be read.

GX is imported inside the functions (it takes seconds), so importing this module is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx
    from matplotlib.figure import Figure

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class GateInputError(ValueError):
    """The data file or the suite file cannot be used (missing, unreadable, wrong format)."""


@dataclass(frozen=True)
class Failure:
    """One expectation that failed on the batch."""

    expectation: str
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One readable line, e.g. ``expect_column_values_to_not_be_null(column=revenue): 40 rows (0.40%)``."""
        where = f"(column={self.column})" if self.column else ""
        if self.unexpected_count is None:
            return f"{self.expectation}{where}: failed (observed {self.kwargs.get('observed_value', '?')})"
        return f"{self.expectation}{where}: {self.unexpected_count:,} rows ({self.unexpected_percent or 0:.2f}%)"


@dataclass(frozen=True)
class GateResult:
    """What a suite found on one batch, and the gate's verdict for a threshold."""

    data: str
    suite: str
    rows: int
    evaluated: int
    successful: int
    threshold: float
    failures: list[Failure]
    seconds: float

    @property
    def success_percent(self) -> float:
        """Share of the suite's expectations that passed, in percent."""
        return 100.0 * self.successful / self.evaluated if self.evaluated else 100.0

    @property
    def passed(self) -> bool:
        """``True`` when at least ``threshold`` percent of the expectations passed."""
        return self.success_percent >= self.threshold

    @property
    def failing(self) -> list[str]:
        """The failing expectations, one readable line each."""
        return [f.line() for f in self.failures]

    def summary(self) -> str:
        """The gate's report: verdict line, then one line per failing expectation."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"quality gate {verdict}: {self.successful}/{self.evaluated} expectations of suite "
                 f"{self.suite!r} passed ({self.success_percent:.1f}%, threshold {self.threshold:g}%) "
                 f"on {self.data} ({self.rows:,} rows, {self.seconds:.1f} s)"]
        lines += [f"  - {line}" for line in self.failing]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for an XCom, an alert's details or a CI artifact)."""
        out = asdict(self)
        out.update(success_percent=self.success_percent, passed=self.passed, failing=self.failing)
        return out


def quiet_gx() -> None:
    """Silence GX's info logging and known-harmless warnings (call before a validation)."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="great_expectations")


def _no_progress_bars(context: Any) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)


def gx_context(project_dir: str | Path, fresh: bool = False) -> Any:
    """Return a file-backed GX context whose project (``gx/``, data docs included) is in ``project_dir``.

    Args:
        project_dir: the folder that holds (or will hold) the ``gx/`` project.
        fresh: delete an earlier ``gx/`` project there first (a clean start when a notebook is re-run).

    Returns:
        A ``FileDataContext``; its data docs are built in ``<project_dir>/gx/uncommitted/data_docs``.
    """
    import great_expectations as gx

    quiet_gx()
    project_dir = Path(project_dir)
    if fresh:
        shutil.rmtree(project_dir / "gx", ignore_errors=True)
    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    _no_progress_bars(context)
    return context


def latest_data_docs_page(context: Any) -> Path:
    """Return the newest validation page of the context's local data docs site.

    Raises:
        FileNotFoundError: no validation page yet (run a checkpoint with an ``UpdateDataDocsAction``).
    """
    site = Path(context.root_directory) / "uncommitted" / "data_docs" / "local_site"
    pages = sorted((site / "validations").rglob("*.html"), key=lambda p: p.stat().st_mtime)
    if not pages:
        raise FileNotFoundError(f"no validation page under {site}: run a checkpoint that has an "
                                "UpdateDataDocsAction, or call context.build_data_docs()")
    return pages[-1]


def show_html_file(path: str | Path, height: int = 480) -> Any:
    """Return an IPython object showing an HTML file inline (an ``<iframe srcdoc>``; links stay local)."""
    import html

    from IPython.display import HTML

    text = Path(path).read_text(encoding="utf-8")
    return HTML(f'<p>{html.escape(str(path))}</p><iframe srcdoc="{html.escape(text, quote=True)}" '
                f'style="width:100%;height:{height}px;border:1px solid #ccc"></iframe>')


# ------------------------------------------------------------------------------- suites on disk
def save_suite(suite: gx.ExpectationSuite, path: str | Path) -> Path:
    """Write ``suite`` as JSON (what the gate command and CI read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = suite.to_json_dict()
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def load_suite(path: str | Path) -> gx.ExpectationSuite:
    """Read a suite written by :func:`save_suite`.

    Raises:
        GateInputError: the file is missing, not JSON, or not an expectation suite.
    """
    import great_expectations as gx

    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"suite file {path} does not exist (save one with helpers.quality.save_suite)")
    _active_context()
    try:
        data = json.loads(path.read_text())
        expectations = data.pop("expectations")
        suite = gx.ExpectationSuite(name=data.get("name") or path.stem, meta=data.get("meta") or {})
        for exp in expectations:
            suite.add_expectation_configuration(_configuration(exp))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GateInputError(f"{path} is not an expectation suite saved as JSON: {exc}") from exc
    return suite


def _active_context() -> Any:
    """Return the current GX context, creating an ephemeral one when there is none (suites need one)."""
    import great_expectations as gx
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.exceptions import DataContextRequiredError

    try:
        return project_manager.get_current_project()
    except DataContextRequiredError:
        context = gx.get_context(mode="ephemeral")
        _no_progress_bars(context)
        return context


def _configuration(exp: dict[str, Any]) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=exp["type"], kwargs=exp.get("kwargs", {}), meta=exp.get("meta"),
                                    severity=exp.get("severity", "critical"))


def read_data(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet batch (``*_time`` columns parsed as UTC timestamps).

    Raises:
        GateInputError: the file is missing, empty or not CSV/Parquet.
    """
    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"data file {path} does not exist")
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        elif path.suffix == ".csv":
            df = pd.read_csv(path)
        else:
            raise GateInputError(f"{path}: the gate reads .csv or .parquet files")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, GateInputError):
            raise
        raise GateInputError(f"cannot read {path}: {exc}") from exc
    for column in [c for c in df.columns if c.endswith("_time") and df[c].dtype == object]:
        df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601", errors="coerce")
    return df


# ------------------------------------------------------------------------------- validation
def validate_dataframe(df: pd.DataFrame, suite: gx.ExpectationSuite) -> Any:
    """Validate ``df`` with ``suite`` in an ephemeral context; return GX's validation result."""
    import great_expectations as gx

    quiet_gx()
    context = gx.get_context(mode="ephemeral")
    _no_progress_bars(context)
    batch = (context.data_sources.add_pandas("gate").add_dataframe_asset("batch")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df}))
    return batch.validate(suite, result_format="SUMMARY")


def failures_of(validation_result: Any) -> list[Failure]:
    """The failing expectations of a GX validation result, sorted by column then expectation."""
    failures = []
    for res in validation_result.results:
        if res.success:
            continue
        config = res.expectation_config
        result = res.result or {}
        count = result.get("unexpected_count")
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
        if count is None and "observed_value" in result:
            kwargs["observed_value"] = result["observed_value"]
        failures.append(Failure(config.type, config.kwargs.get("column"), None if count is None else int(count),
                                result.get("unexpected_percent"), kwargs))
    return sorted(failures, key=lambda f: (f.column or "", f.expectation))


def run_suite(df: pd.DataFrame, suite: gx.ExpectationSuite, threshold: float = 100.0,
              data: str = "<DataFrame>") -> GateResult:
    """Validate ``df`` against ``suite`` and return the gate's verdict.

    Args:
        df: the batch.
        suite: a GX ``ExpectationSuite``.
        threshold: percent of the suite's expectations that must pass (100: every one).
        data: a label for reports (the file name).
    """
    if not 0 <= threshold <= 100:
        raise ValueError("threshold is a percentage between 0 and 100")
    started = time.perf_counter()
    result = validate_dataframe(df, suite)
    stats = result.statistics
    return GateResult(data=data, suite=suite.name, rows=len(df), evaluated=int(stats["evaluated_expectations"]),
                      successful=int(stats["successful_expectations"]), threshold=threshold,
                      failures=failures_of(result), seconds=time.perf_counter() - started)


def run_gate(data_path: str | Path, suite_path: str | Path, threshold: float = 100.0) -> GateResult:
    """Read a data file and a suite file, validate, and return the verdict (timed end to end).

    Raises:
        GateInputError: the data or the suite cannot be read.
    """
    started = time.perf_counter()
    suite = load_suite(suite_path)
    df = read_data(data_path)
    result = run_suite(df, suite, threshold, data=str(data_path))
    return GateResult(**{**result.__dict__, "seconds": time.perf_counter() - started})


def gate_main(data: str, suite: str, threshold: float = 100.0, json_out: str | None = None) -> int:
    """The ``gate`` command: print the report and return the exit code (0 pass, 1 fail, 2 bad input)."""
    try:
        result = run_gate(data, suite, threshold)
    except GateInputError as exc:
        print(f"quality gate ERROR: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(result.summary())
    if json_out:
        Path(json_out).write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return EXIT_PASS if result.passed else EXIT_FAIL


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


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m helpers.quality gate DATA --suite SUITE.json [--threshold PCT]``."""
    parser = argparse.ArgumentParser(prog="python -m helpers.quality", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gate = sub.add_parser("gate", help="validate DATA with SUITE; exit 0 pass, 1 fail, 2 bad input")
    gate.add_argument("data", help="a .csv or .parquet batch")
    gate.add_argument("--suite", required=True, help="an expectation suite saved as JSON (save_suite)")
    gate.add_argument("--threshold", type=float, default=100.0,
                      help="percent of expectations that must pass (default 100: all)")
    gate.add_argument("--json", dest="json_out", help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    if not 0 <= args.threshold <= 100:
        parser.error("--threshold is a percentage between 0 and 100")
    return gate_main(args.data, args.suite, args.threshold, args.json_out)


if __name__ == "__main__":
    raise SystemExit(main())
