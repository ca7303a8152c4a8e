"""The quality gate: validate a batch against a saved GX suite and pass or fail it, with reasons.

``python -m helpers.quality gate DATA --suite SUITE.json [--threshold PCT] [--json OUT]`` exits 0 when
the batch passes, 1 when it fails (the failing expectations are printed, by column) and 2 when the
input cannot be used (missing file, unreadable suite, a column the suite checks is absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from helpers.quality.suites import Failure, GateInputError, failures_of, load_suite, validate_dataframe

if TYPE_CHECKING:
    import great_expectations as gx


EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


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


def percent(threshold: float | int | str) -> float:
    """Return ``threshold`` as a float between 0 and 100 (``80``, ``80.0``, ``"80"`` and ``"80%"`` all work).

    Raises:
        GateInputError: not a number, or outside 0..100.
    """
    text = str(threshold).strip().removesuffix("%") if isinstance(threshold, str) else threshold
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise GateInputError(f"threshold should be a percentage such as 95 or '95', got {threshold!r}") from None
    if not 0 <= value <= 100:
        raise GateInputError(f"threshold is a percentage between 0 and 100, got {threshold!r}")
    return value


def suite_columns(suite: gx.ExpectationSuite) -> list[str]:
    """Every column the suite's expectations name (``column``, ``column_A``/``column_B``, ``column_list``)."""
    columns: list[str] = []
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            if isinstance(kwargs.get(key), str):
                columns.append(kwargs[key])
        columns += [c for c in kwargs.get("column_list") or [] if isinstance(c, str)]
    return list(dict.fromkeys(columns))


def run_suite(df: pd.DataFrame, suite: gx.ExpectationSuite, threshold: float | int | str = 100.0,
              data: str = "<DataFrame>") -> GateResult:
    """Validate ``df`` against ``suite`` and return the gate's verdict.

    Args:
        df: the batch.
        suite: a GX ``ExpectationSuite``.
        threshold: percent of the suite's expectations that must pass (100: every one); ``"80"`` works too.
        data: a label for reports (the file name).

    Raises:
        GateInputError: a bad threshold, or the batch lacks a column the suite checks (named).
    """
    threshold = percent(threshold)
    missing = [c for c in suite_columns(suite) if c not in df.columns]
    if missing:
        raise GateInputError(f"{data} has no column {', '.join(map(repr, missing))}, which the suite "
                             f"{suite.name!r} checks; its columns are {list(df.columns)}")
    started = time.perf_counter()
    result = validate_dataframe(df, suite)
    stats = result.statistics
    return GateResult(data=data, suite=suite.name, rows=len(df), evaluated=int(stats["evaluated_expectations"]),
                      successful=int(stats["successful_expectations"]), threshold=threshold,
                      failures=failures_of(result), seconds=time.perf_counter() - started)


def run_gate(data_path: str | Path, suite_path: str | Path, threshold: float | int | str = 100.0) -> GateResult:
    """Read a data file and a suite file, validate, and return the verdict (timed end to end).

    Raises:
        GateInputError: the data or the suite cannot be read, the threshold is not a percentage, or the
            data lacks a column the suite checks.
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
