"""Time Spark work honestly: settings that are put back, outputs forced to run, wall time per output.

    >>> with spark_conf(spark, {"spark.sql.shuffle.partitions": "4"}):   # doctest: +SKIP
    ...     run = run_pipeline(my_pipeline, spark, paths)                    # forces every output
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


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

    from helpers.spark.session import get_spark

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
