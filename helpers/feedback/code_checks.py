"""Feedback on how a learner's Spark code is written, read from its source (AST), not its output.

:func:`collect_calls` finds driver pulls (``collect``, ``toPandas``), :func:`udf_definitions` Python
UDFs; :func:`code_feedback` turns both, and the plans of the outputs, into one short report.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from helpers.spark.plans import python_udf_nodes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


DRIVER_PULLS = ("collect", "toPandas", "toLocalIterator")


"""DataFrame methods that bring every row to the driver."""


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
