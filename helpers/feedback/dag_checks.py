"""Automatic best-practice feedback for DAGs: informational checks a grader or a learner can print.

Each check returns a :class:`PracticeCheck` (ok or not, and one line saying why). They cover what a
machine can see of Airflow's best practices: ``catchup=False`` and a fixed ``start_date``, no heavy
work at the top level of a DAG file (it runs at every parse, every 30 s, in the scheduler), tags,
retries, and an idempotent load (running the same logical date twice leaves the same rows).
They print feedback; they never decide a grade on their own.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG

# Calls that read data, open connections or wait: fine inside a task, harmful at parse time.
HEAVY_ATTRIBUTES = frozenset({"read_csv", "read_parquet", "read_json", "read_sql", "read_sql_query",
                              "read_excel", "read_table", "connect", "urlopen", "sleep", "read_text",
                              "read_bytes", "execute", "ensure_dataset", "generate_ecommerce",
                              "get_spark", "start_broker", "toPandas", "collect"})
HEAVY_NAMES = frozenset({"open", "connect", "sleep", "urlopen", "ensure_dataset", "generate_ecommerce",
                         "get_spark", "start_broker"})
HEAVY_MODULES = frozenset({"requests", "httpx", "Variable"})  # requests.get(...), Variable.get(...)
DYNAMIC_DATES = frozenset({"now", "today", "utcnow", "days_ago"})


@dataclass(frozen=True)
class PracticeCheck:
    """One best-practice verdict."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


def report(checks: Iterable[PracticeCheck]) -> str:
    """Return the checks as lines, then a count: ``3 of 4 practices followed``."""
    checks = list(checks)
    lines = [c.line() for c in checks]
    lines.append(f"{sum(c.ok for c in checks)} of {len(checks)} practices followed")
    return "\n".join(lines)


def _call_name(call: ast.Call) -> tuple[str | None, str | None]:
    """Return ``(module or object name, called name)`` of a call: ``pd.read_csv`` -> ``("pd", "read_csv")``."""
    func = call.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        return owner, func.attr
    return None, None


def _is_dag_decorated(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        if name == "dag":
            return True
    return False


def _parse_time_nodes(source: str) -> list[ast.AST]:
    """The statements that run when the DAG is parsed or built, without the bodies of tasks.

    A module: its top level and the bodies of ``@dag`` functions. A single function (a DAG builder
    from a notebook): its body. Nested functions (tasks, callbacks) and lambdas run later: skipped.
    """
    tree = ast.parse(textwrap.dedent(source))
    body = tree.body
    if len(body) == 1 and isinstance(body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        body = body[0].body  # a builder function: its body runs when the DAG is built
    nodes: list[ast.AST] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # Decorators and default values run when the function is defined; the body runs later,
            # except a @dag function's, which runs when the DAG is built.
            stack.extend([*node.decorator_list, *node.args.defaults, *filter(None, node.args.kw_defaults)])
            if _is_dag_decorated(node):
                stack.extend(node.body)
            continue
        if isinstance(node, (ast.Lambda, ast.ClassDef)):
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def heavy_parse_time_calls(source: str) -> list[str]:
    """Return ``"line N: pd.read_csv(...)"`` for each heavy call that runs when the DAG is parsed.

    Args:
        source: a DAG file's text, or the source of one DAG-building function.
    """
    found = []
    for node in _parse_time_nodes(source):
        if isinstance(node, ast.Call):
            owner, name = _call_name(node)
            if name in HEAVY_ATTRIBUTES and owner is not None or name in HEAVY_NAMES and owner is None \
                    or owner in HEAVY_MODULES:
                found.append(f"line {node.lineno}: {owner + '.' if owner else ''}{name}(...)")
    return sorted(set(found), key=lambda s: int(s.split(":")[0].split()[1]))


def dynamic_start_dates(source: str) -> list[str]:
    """Return the ``now()``/``today()``/``days_ago()`` calls made at parse time (a start date that moves)."""
    return [f"line {n.lineno}: {_call_name(n)[1]}()" for n in _parse_time_nodes(source)
            if isinstance(n, ast.Call) and _call_name(n)[1] in DYNAMIC_DATES]


def source_of(builder_or_path: Callable[..., Any] | str | Path) -> str:
    """Return the source of a DAG-building function, or the text of a DAG file."""
    if isinstance(builder_or_path, (str, Path)):
        return Path(builder_or_path).read_text()
    return inspect.getsource(builder_or_path)


def dag_practices(dag: DAG, source: str | None = None, expect_retries: bool = False) -> list[PracticeCheck]:
    """Check one DAG (and, if given, the code that builds it) against Airflow's best practices.

    Args:
        dag: the DAG object.
        source: its file's text or its builder's source (:func:`source_of`), for the parse-time checks.
        expect_retries: also check that every task retries (for DAGs that call flaky services).

    Returns:
        One :class:`PracticeCheck` per practice.
    """
    checks = [PracticeCheck("catchup=False", dag.catchup is False,
                            "no surprise backfill of every interval since start_date" if dag.catchup is False
                            else "catchup is on: unpausing creates a run for every missed interval; "
                                 "set catchup=False and backfill on purpose")]
    start = dag.start_date
    fixed = start is not None and start.tzinfo is not None and start < datetime.now(timezone.utc)
    if source is not None:
        moving = dynamic_start_dates(source)
        fixed = fixed and not moving
    checks.append(PracticeCheck("fixed UTC start_date", fixed,
                                f"start_date {start:%Y-%m-%d %H:%M %Z}" if fixed else
                                "use a fixed, timezone-aware date such as pendulum.datetime(2026, 1, 1, tz='UTC'),"
                                " not now()/today()"))
    if source is not None:
        heavy = heavy_parse_time_calls(source)
        checks.append(PracticeCheck("no heavy work at parse time", not heavy,
                                    "reads, connections and waits happen inside tasks" if not heavy else
                                    "move into a task (they run at every parse): " + "; ".join(heavy)))
    checks.append(PracticeCheck("tags", bool(dag.tags), f"tags {sorted(dag.tags)}" if dag.tags
                                else "add tags=[...] so the DAG can be found in the UI"))
    no_retry = sorted(t.task_id for t in dag.tasks if not t.retries)
    if expect_retries:
            checks.append(PracticeCheck("retries", not no_retry, "every task retries" if not no_retry else
                                    f"no retries on {no_retry}: a flaky service would fail the run at once"))
    return checks


def idempotency_check(run: Callable[[], Any], snapshot: Callable[[], Any], times: int = 2) -> PracticeCheck:
    """Run ``run()`` ``times`` times and compare ``snapshot()`` after each: an idempotent step changes nothing.

    Args:
        run: one execution of the step for a fixed input and logical date (e.g. a load).
        snapshot: reads the resulting state, comparable with ``==`` (e.g. sorted table rows).
        times: how many runs (at least 2).
    """
    states = []
    for _ in range(max(times, 2)):
        run()
        states.append(snapshot())
    same = all(state == states[0] for state in states)
    size = len(states[0]) if hasattr(states[0], "__len__") else "?"
    return PracticeCheck("idempotent load", same,
                         f"{times} runs of the same logical date leave the same {size} rows" if same else
                         f"the state changed between runs ({[len(s) if hasattr(s, '__len__') else s for s in states]}"
                         " rows): replace the date's partition (delete + insert in one transaction) or upsert")
