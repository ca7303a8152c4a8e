"""Great Expectations 1.x plumbing: a file-backed project with data docs, suites saved as JSON, and
validation of a DataFrame that names each failing expectation.

GX is imported inside the functions (it takes seconds), so importing this module is instant.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import great_expectations as gx


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
        raise GateInputError(f"suite file {path} does not exist (save one with helpers.quality.suites.save_suite)")
    active_context()
    try:
        data = json.loads(path.read_text())
        expectations = data.pop("expectations")
        suite = gx.ExpectationSuite(name=data.get("name") or path.stem, meta=data.get("meta") or {})
        for exp in expectations:
            suite.add_expectation_configuration(_configuration(exp))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GateInputError(f"{path} is not an expectation suite saved as JSON: {exc}") from exc
    return suite


def active_context() -> Any:
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
