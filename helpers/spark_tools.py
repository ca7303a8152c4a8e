"""Spark plumbing for the labs: timing, settings that are put back, plan inspection, charts, checks on disk.

Nothing here answers a lab task; these are the tools a notebook (and the Lab 05 capstone) uses
around the learner's functions:

    >>> with spark_conf(spark, {"spark.sql.shuffle.partitions": "4"}):   # doctest: +SKIP
    ...     run = run_pipeline(my_pipeline, spark, paths)                    # forces every output
    >>> plan_operators(df)            # doctest: +SKIP  ['Scan parquet', 'BroadcastHashJoin', ...]
    >>> python_udf_nodes(df)          # doctest: +SKIP  [] when only built-in functions are used
    >>> collect_calls(my_function)    # doctest: +SKIP  ['line 7: .collect()']
    >>> times_chart({"naive": 30.2, "optimized": 4.1})                   # doctest: +SKIP
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PYTHON_UDF_OPERATORS = ("BatchEvalPython", "ArrowEvalPython", "FlatMapGroupsInPandas", "MapInPandas",
                        "MapInArrow", "FlatMapCoGroupsInPandas", "AggregateInPandas", "WindowInPandas")
"""Physical operators that run Python code row by row or batch by batch (a UDF, a pandas UDF...)."""

DRIVER_PULLS = ("collect", "toPandas", "toLocalIterator")
"""DataFrame methods that bring every row to the driver."""

_UNSET = object()


@contextmanager
def timed(label: str, into: dict[str, float] | None = None, quiet: bool = False) -> Iterator[dict[str, float]]:
    """Time a block of code and print ``label: 1.23 s``.

    Args:
        label: what is timed (the key in ``into``).
        into: a dict that receives ``{label: seconds}`` (for a chart of several steps).
        quiet: do not print.

    Yields:
        A dict that holds ``{"seconds": ...}`` once the block is done.
    """
    result: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - started
        if into is not None:
            into[label] = result["seconds"]
        if not quiet:
            print(f"{label}: {result['seconds']:.2f} s")


@contextmanager
def spark_conf(spark: SparkSession, settings: Mapping[str, str] | None) -> Iterator[SparkSession]:
    """Apply runtime SQL settings for the duration of a block, then put the previous values back.

    Args:
        spark: the session.
        settings: ``{"spark.sql.shuffle.partitions": "4", ...}``; ``None`` or ``{}`` changes nothing.

    Raises:
        pyspark.errors.AnalysisException: for a static setting (one that only a new session can take).
    """
    previous: dict[str, Any] = {}
    try:
        for key, value in (settings or {}).items():
            previous[key] = spark.conf.get(key, None) if spark.conf.isModifiable(key) else _UNSET
            if previous[key] is _UNSET:
                raise ValueError(f"{key} cannot change in a running session (set it in get_spark(config=...))")
            spark.conf.set(key, str(value))
        yield spark
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            elif value is not _UNSET:
                spark.conf.set(key, value)


@dataclass
class PipelineRun:
    """What :func:`run_pipeline` measured: wall time, each output's time, and the outputs themselves."""

    label: str
    seconds: float
    outputs: dict[str, DataFrame]
    output_seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {s:.1f} s" for name, s in self.output_seconds.items())
        return f"{self.label}: {self.seconds:.1f} s ({parts})"


def force(df: DataFrame) -> None:
    """Run every stage of ``df``'s plan without collecting anything (Spark's ``noop`` sink)."""
    df.write.format("noop").mode("overwrite").save()


def run_pipeline(pipeline: Callable[..., Mapping[str, DataFrame]], *args: Any, label: str | None = None,
                 conf: Mapping[str, str] | None = None, progress: bool = True, **kwargs: Any) -> PipelineRun:
    """Call ``pipeline(*args, **kwargs)`` and run each DataFrame it returns to the end; time it all.

    The outputs are forced with the ``noop`` sink (every stage runs, no row reaches the driver), in
    the order the pipeline returned them, so caching one intermediate result pays off for the next.

    Args:
        pipeline: returns ``{output name: DataFrame}``.
        label: the name printed and charted (default: the function's name).
        conf: runtime settings applied while the pipeline is built and run (see :func:`spark_conf`).
        progress: a tqdm bar over the outputs.

    Returns:
        A :class:`PipelineRun`; ``.outputs`` are the DataFrames (re-running them plans them again
        under the session's settings at that time).
    """
    from pyspark.sql import DataFrame
    from tqdm.auto import tqdm

    from helpers.spark import get_spark

    label = label or getattr(pipeline, "__name__", "pipeline")
    with spark_conf(get_spark(), conf):
        started = time.perf_counter()
        outputs = dict(pipeline(*args, **kwargs))
        bad = {name: type(df).__name__ for name, df in outputs.items() if not isinstance(df, DataFrame)}
        if bad:
            raise TypeError(f"{label} should return {{name: DataFrame}}; got {bad}")
        output_seconds = {}
        for name, df in tqdm(outputs.items(), desc=label, unit="output", disable=not progress):
            t0 = time.perf_counter()
            force(df)
            output_seconds[name] = time.perf_counter() - t0
        seconds = time.perf_counter() - started
    return PipelineRun(label, seconds, outputs, output_seconds)


# ------------------------------------------------------------------------------- plans
def plan_text(df: DataFrame, mode: str = "formatted") -> str:
    """Return what ``df.explain(mode)`` prints (modes: simple, extended, codegen, cost, formatted)."""
    jvm = df.sparkSession._jvm
    return jvm.PythonSQLUtils.explainString(df._jdf.queryExecution(), mode)


def executed_plan(df: DataFrame) -> str:
    """Return the physical plan as Spark runs it (after adaptive execution if ``df`` already ran)."""
    plan = df._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.executedPlan()
    return plan.toString()


def plan_operators(df: DataFrame) -> list[str]:
    """Return the names of the physical operators of ``df``'s plan, top to bottom (e.g. ``BroadcastHashJoin``).

    ``InMemoryTableScan`` means a cached result is read; ``Scan parquet`` / ``Scan csv`` name the source.
    """
    names = []
    for line in executed_plan(df).splitlines():
        match = re.match(r"^[\s:+\-|]*(?:\*\(\d+\)\s*)?([A-Z][A-Za-z]+(?: [a-z]+)?)", line)
        if match:
            names.append(match.group(1))
    return names


def python_udf_nodes(df: DataFrame) -> list[str]:
    """Return the plan operators of ``df`` that run Python code (empty when only built-ins are used)."""
    return [op for op in plan_operators(df) if op.split()[0] in PYTHON_UDF_OPERATORS]


def num_partitions(df: DataFrame) -> int:
    """Return how many partitions ``df`` has (without running it, for most plans)."""
    return df.rdd.getNumPartitions()


# ----------------------------------------------------------------------------- source checks
def _source_tree(fn: Callable[..., Any]) -> tuple[ast.AST, int]:
    source = textwrap.dedent(inspect.getsource(fn))
    return ast.parse(source), inspect.getsourcelines(fn)[1]


def collect_calls(fn: Callable[..., Any], methods: tuple[str, ...] = DRIVER_PULLS) -> list[str]:
    """Return the calls ``.collect()``, ``.toPandas()``... in ``fn``'s source, as ``"line N: .collect()"``.

    A function that returns a DataFrame should not pull every row to the driver; this finds where it
    does. (``.first()``, ``.take(n)`` and ``.count()`` are bounded and not reported.)

    Returns:
        One entry per call; empty when the source has none or cannot be read.
    """
    try:
        tree, first_line = _source_tree(fn)
    except (OSError, TypeError, SyntaxError):
        return []
    return [f"line {first_line + node.lineno - 1}: .{node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods]


def udf_definitions(fn: Callable[..., Any]) -> list[str]:
    """Return the places where ``fn``'s source makes a Python UDF (``F.udf``, ``@udf``, ``pandas_udf``)."""
    try:
        tree, first_line = _source_tree(fn)
    except (OSError, TypeError, SyntaxError):
        return []
    found = []
    for node in ast.walk(tree):
        target = node.func if isinstance(node, ast.Call) else node
        name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
        if name in ("udf", "pandas_udf") and hasattr(node, "lineno"):
            found.append(f"line {first_line + node.lineno - 1}: {name}")
    return sorted(set(found))


def code_feedback(functions: Mapping[str, Callable[..., Any]],
                  frames: Mapping[str, DataFrame] | None = None) -> list[str]:
    """Print and return one line per finding: full-dataset pulls to the driver and Python UDFs.

    Args:
        functions: ``{name: function}`` whose source is read.
        frames: ``{name: DataFrame}`` whose plan is inspected for Python UDF operators.
    """
    lines = []
    for name, fn in functions.items():
        for call in collect_calls(fn):
            lines.append(f"{name}, {call}: brings every row to the driver; return a DataFrame "
                         "and let the caller decide (or aggregate first)")
        for udf in udf_definitions(fn):
            lines.append(f"{name}, {udf}: a Python UDF; look for a built-in in pyspark.sql.functions first")
    for name, df in (frames or {}).items():
        nodes = python_udf_nodes(df)
        if nodes:
            lines.append(f"{name}: its plan runs Python ({', '.join(sorted(set(nodes)))}): every row "
                         "crosses to a Python worker and back")
    print("\n".join(lines) if lines else "no full collect() and no Python UDF found: good")
    return lines


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


# ----------------------------------------------------------------------------------- on disk
@dataclass
class PartitionedOutput:
    """What a partitioned Parquet folder holds on disk, and what Spark reads back from it."""

    path: Path
    column: str
    values: list[str]
    files_per_value: dict[str, int]
    rows: int
    schema: Any

    def __str__(self) -> str:
        files = sum(self.files_per_value.values())
        shown = ", ".join(self.values[:3]) + (", ..." if len(self.values) > 3 else "")
        return (f"{self.path.name}: {len(self.values)} folders {self.column}=[{shown}], {files} Parquet "
                f"files, {self.rows:,} rows read back")


def inspect_partitioned_parquet(spark: SparkSession, path: str | Path, column: str) -> PartitionedOutput:
    """List the ``column=value`` folders of a partitioned Parquet output and read it back.

    Raises:
        FileNotFoundError: no such folder, or no ``_SUCCESS`` marker (the write did not finish).
        ValueError: no ``column=...`` folder, or a folder without Parquet files.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist: nothing was written there")
    if not (path / "_SUCCESS").exists():
        raise FileNotFoundError(f"{path} has no _SUCCESS file: the write did not complete")
    folders = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith(f"{column}="))
    if not folders:
        seen = sorted(p.name for p in path.iterdir())[:5]
        raise ValueError(f"no '{column}=...' folder in {path} (found {seen}): use .partitionBy('{column}')")
    files = {p.name.split("=", 1)[1]: len(list(p.glob("*.parquet"))) for p in folders}
    if empty := [v for v, n in files.items() if n == 0]:
        raise ValueError(f"folders without Parquet files: {empty}")
    back = spark.read.parquet(str(path))
    return PartitionedOutput(path, column, list(files), files, back.count(), back.schema)


# ------------------------------------------------------------------------------ input files
def ensure_malformed_csv(clean_parquet: str | Path, out: str | Path, n_bad: int, seed: int = 0) -> Path:
    """Write (once) a CSV copy of an events Parquet file with ``n_bad`` lines that cannot be parsed.

    The broken lines are those of :func:`helpers.data.write_malformed_csv` (too few or too many
    fields, text in a numeric column, an unparseable timestamp). A second call with the same
    arguments returns at once.

    Returns:
        The CSV's path.
    """
    import json

    import pandas as pd

    from helpers.data import write_malformed_csv

    out = Path(out)
    marker = out.with_name(out.name + ".json")
    params = {"source": str(Path(clean_parquet).resolve()), "n_bad": n_bad, "seed": seed}
    if out.exists() and marker.exists() and json.loads(marker.read_text()) == params:
        return out
    events = pd.read_parquet(clean_parquet)
    events["event_time"] = events["event_time"].astype("datetime64[ns, UTC]")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    write_malformed_csv(events, tmp, n_bad=n_bad, seed=seed)
    tmp.replace(out)
    marker.write_text(json.dumps(params))
    return out


# ------------------------------------------------------------------------------ small frames
EVENT_DEFAULTS: dict[str, Any] = {"session_id": 1, "product_id": 100_000, "category": "books", "price": 10.0,
                                  "quantity": 1, "device": "mobile", "country": "US"}


def events_frame(spark: SparkSession, rows: list[tuple], columns: tuple[str, ...] = (
        "user_id", "event_time", "event_type", "amount")) -> DataFrame:
    """Build a small events DataFrame with the dataset's schema from a few hand-written rows.

    Columns not given take :data:`EVENT_DEFAULTS`; ``event_id`` numbers the rows from 1 in the
    order given, and ``event_time`` strings (``"2026-01-05 10:00:00"``) are read as UTC timestamps.

    Example::

        df = events_frame(spark, [(1, "2026-01-05 10:00:00", "purchase", 20.0),
                                  (1, "2026-01-12 10:00:00", "view", 5.0)])

    Returns:
        A DataFrame with the columns of ``events.parquet``, in the same order and types.
    """
    from pyspark.sql import functions as F

    records = []
    for i, row in enumerate(rows, start=1):
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} values for the columns {columns}")
        record = {"event_id": i, **EVENT_DEFAULTS, **dict(zip(columns, row))}
        records.append(record)
    order = ["event_id", "event_time", "user_id", "session_id", "event_type", "product_id", "category",
             "price", "quantity", "amount", "device", "country"]
    ddl = ("event_id bigint, event_time string, user_id bigint, session_id bigint, event_type string, "
           "product_id bigint, category string, price double, quantity bigint, amount double, "
           "device string, country string")
    df = spark.createDataFrame([tuple(r[c] for c in order) for r in records], ddl)
    return df.withColumn("event_time", F.to_timestamp("event_time"))
