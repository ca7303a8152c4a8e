"""Read a DataFrame's physical plan: its text, its operators, Python UDF nodes and partition count."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


PYTHON_UDF_OPERATORS = ("BatchEvalPython", "ArrowEvalPython", "FlatMapGroupsInPandas", "MapInPandas",
                        "MapInArrow", "FlatMapCoGroupsInPandas", "AggregateInPandas", "WindowInPandas")


"""Physical operators that run Python code row by row or batch by batch (a UDF, a pandas UDF...)."""


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
