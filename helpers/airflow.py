"""Embedded Airflow 3.3: a one-time setup and an in-process DAG runner for the notebooks.

Call :func:`setup_airflow` before anything imports ``airflow`` (the locked setup cell does):
Airflow reads ``AIRFLOW_HOME`` and its database address once, when it is first imported.
:func:`run_dag` then runs one DAG run in this process with ``dag.test()`` (no scheduler, no
webserver) and returns a :class:`DagRunResult` holding task states, tries and XComs.
This module does not import ``airflow`` itself until one of its functions needs it.
"""

from __future__ import annotations

import copy
import fcntl
import linecache
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers import config

if TYPE_CHECKING:
    from airflow.sdk import DAG
    from matplotlib.figure import Figure

DAG_BUNDLE = "dags-folder"
"""The bundle that DAGs run from a notebook or a stray file are registered in."""

STATE_COLORS = {"success": "#2e9e44", "failed": "#d62728", "up_for_retry": "#f2b01e",
                "upstream_failed": "#ff7f0e", "skipped": "#e377c2", "running": "#1f77b4"}


class AirflowSetupError(RuntimeError):
    """Airflow cannot be used as configured (imported too early, or the migration failed)."""


class DagFileError(RuntimeError):
    """A DAG file failed to import, or does not define the DAG asked for."""


def configure_airflow_env(dags_folder: str | Path | None = None) -> dict[str, str]:
    """Put the workbook's Airflow settings in ``os.environ``; values the user set are kept.

    Touches neither the disk nor the network, so a test ``conftest.py`` may call it early.

    Args:
        dags_folder: folder the ``dags-folder`` bundle scans; overrides
            ``AIRFLOW__CORE__DAGS_FOLDER``. Default: the variable, else ``<AIRFLOW_HOME>/dags``.

    Returns:
        The Airflow variables now in effect, by name.
    """
    home = config.airflow_home()
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: 32 workers would only thrash
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # task print()s and errors still show
        # Re-serialize an edited DAG at once (default: not within 30 s of the last write).
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
    }
    if dags_folder is not None:
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(dags_folder).resolve())
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in defaults}


def setup_airflow(migrate: bool = True, dags_folder: str | Path | None = None) -> Path:
    """Configure Airflow for this process and create its metadata database once.

    The first call runs ``airflow db migrate`` (about 10 s); later calls, from any process,
    find a marker file and return at once. A file lock makes concurrent first calls safe.

    Args:
        migrate: create or upgrade the metadata database if needed.
        dags_folder: see :func:`configure_airflow_env`.

    Returns:
        ``AIRFLOW_HOME``.

    Raises:
        AirflowSetupError: ``airflow`` was already imported with another home or database
            (restart the kernel), or the migration failed.
    """
    env = configure_airflow_env(dags_folder)
    home = Path(env["AIRFLOW_HOME"])
    _check_not_imported_elsewhere(home, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    home.mkdir(parents=True, exist_ok=True)
    Path(env["AIRFLOW__CORE__DAGS_FOLDER"]).mkdir(parents=True, exist_ok=True)
    if migrate:
        _migrate_once(home, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    return home


def _check_not_imported_elsewhere(home: Path, sql_conn: str) -> None:
    """Raise if ``airflow`` was imported before setup with a different home or database."""
    cfg = sys.modules.get("airflow.configuration")
    if cfg is None:
        return
    imported_home = Path(cfg.AIRFLOW_HOME).expanduser().resolve()
    imported_conn = getattr(sys.modules.get("airflow.settings"), "SQL_ALCHEMY_CONN", None)
    if imported_home != home or (imported_conn and imported_conn != sql_conn):
        raise AirflowSetupError(
            f"Airflow was imported before setup_airflow() and uses AIRFLOW_HOME={imported_home} "
            f"(database {imported_conn}), not {home}. Restart the kernel (Kernel > Restart) and "
            "run the setup cell before any cell that imports airflow."
        )


def _migrate_once(home: Path, sql_conn: str) -> None:
    """Run ``airflow db migrate`` unless a marker says this version already migrated this DB."""
    marker = home / ".db-migrated"
    stamp = f"apache-airflow-core {_dist_version('apache-airflow-core')} {sql_conn}"

    def done() -> bool:
        db_file = sql_conn.removeprefix("sqlite:///") if sql_conn.startswith("sqlite:///") else None
        return (marker.exists() and marker.read_text() == stamp
                and (db_file is None or Path(db_file).exists()))

    if done():
        return
    with _file_lock(home / ".db-migrate.lock"):
        if done():  # another process migrated while we waited for the lock
            return
        proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                              env=dict(os.environ), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise AirflowSetupError(f"`airflow db migrate` failed ({proc.returncode}):\n{tail}")
        marker.write_text(stamp)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class TaskTry:
    """One earlier, finished try of a task (kept by Airflow when the task was retried)."""

    try_number: int
    state: str
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True)
class TaskResult:
    """The final state of one task instance (mapped instances are keyed ``task[i]``)."""

    state: str
    try_number: int
    start_date: datetime | None
    end_date: datetime | None
    duration_s: float | None
    earlier_tries: tuple[TaskTry, ...] = ()


@dataclass(frozen=True)
class DagRunResult:
    """What one DAG run did: run state, task instances and the XComs they pushed."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskResult]
    xcoms: dict[str, dict[str, Any]]
    logical_date: datetime | None
    conf: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.state == "success"

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """Return one XCom value (by default the task's return value); KeyError if absent."""
        return self.xcoms[task_id][key]

    def summary(self) -> str:
        """Return a small table: one line per task with state, try and duration."""
        date_text = self.logical_date.isoformat() if self.logical_date else "none"
        lines = [f"DAG run {self.dag_id} [{self.state}]  logical date {date_text}  ({self.run_id})"]
        width = max((len(task_id) for task_id in self.tasks), default=4)
        for task_id, task in self.tasks.items():
            took = f"{task.duration_s:6.2f} s" if task.duration_s is not None else "      -"
            keys = ", ".join(self.xcoms.get(task_id, {}))
            lines.append(f"  {task_id:<{width}}  {task.state:<15} try {task.try_number}  {took}"
                         + (f"  xcom: {keys}" if keys else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def load_dag_file(path: str | Path) -> dict[str, DAG]:
    """Import one DAG file the way Airflow does and return its DAGs.

    Args:
        path: a ``.py`` file defining one or more DAGs.

    Returns:
        The file's DAGs by ``dag_id``.

    Raises:
        DagFileError: the file does not exist or failed to import (the traceback is included).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DagFileError(f"No DAG file at {path}")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path), safe_mode=False)
    if bag.import_errors:
        raise DagFileError(f"{path} failed to import:\n" + "\n".join(bag.import_errors.values()))
    return dict(bag.dags)


def dag_import_errors(folder: str | Path) -> dict[str, str]:
    """Import every DAG file in ``folder`` as the DAG processor would and collect the failures.

    Args:
        folder: a DAG folder (files are considered if they mention both "airflow" and "dag").

    Returns:
        Error text by file path; empty when every file imports.
    """
    from airflow.dag_processing.dagbag import DagBag

    return dict(DagBag(dag_folder=str(Path(folder).resolve())).import_errors)


def run_dag(dag_or_path: DAG | str | Path, *, dag_id: str | None = None,
            logical_date: datetime | date | str | None = None,
            conf: dict[str, Any] | None = None) -> DagRunResult:
    """Run one DAG run in this process with ``dag.test()`` and collect what it did.

    A failing task does not raise: the result's ``state`` is ``"failed"``. Running the same
    logical date again replaces the earlier run of that date. Retries wait ``retry_delay``.

    Args:
        dag_or_path: a DAG object (from a notebook cell or a module) or a DAG file path.
        dag_id: which DAG of the file to run; needed only when the file defines several.
        logical_date: the run's logical date (``"2024-01-02"``, a date or datetime; naive
            values are UTC). Default: now.
        conf: the run's configuration, read by tasks as ``dag_run.conf``.

    Returns:
        A :class:`DagRunResult`.
    """
    setup_airflow()
    dag = _pick_dag(dag_or_path, dag_id)
    _register(dag)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        # Replacing a run whose DAG has several versions: harmless noise from Airflow's models.
        warnings.filterwarnings("ignore", message="Multiple rows returned with uselist=False")
        _warm_up_execution_api()
        _quiet_retry_waits()
        # Tasks run in this process on the DAG's own operator objects, and applying the run conf
        # updates each task's params in place: keep them, so the next run starts from the defaults.
        saved_params = {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
        try:
            run = dag.test(logical_date=_as_utc(logical_date), run_conf=conf)
        finally:
            for t in dag.tasks:
                t.params = saved_params[t.task_id]
    return _collect(dag.dag_id, run.run_id, _text(run.state), run.logical_date, conf)


class _WaitingForRetryFilter(logging.Filter):
    """Drop ``dag.test()``'s once-a-second "No tasks to run" warning while a retry waits its delay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No tasks to run")


def _quiet_retry_waits() -> None:
    """Install :class:`_WaitingForRetryFilter` on the DAG runner's logger (once)."""
    logger = logging.getLogger("airflow.sdk.definitions.dag")
    if not any(isinstance(f, _WaitingForRetryFilter) for f in logger.filters):
        logger.addFilter(_WaitingForRetryFilter())


def _warm_up_execution_api() -> None:
    """Build the in-process Execution API before the first task, so its duration is its own.

    ``dag.test()`` talks to tasks through an in-process FastAPI app that builds its versioned
    routes on the first request (5-15 s here); one health request pays that up front.
    """
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    with httpx.Client(transport=in_process_api_server().transport,
                      base_url="http://in-process") as client:
        client.get("/health").raise_for_status()  # cached app: later calls take ~1 ms


def _pick_dag(dag_or_path: DAG | str | Path, dag_id: str | None) -> DAG:
    """Return the DAG object itself, or the DAG ``dag_id`` (or the only one) of a file."""
    if not isinstance(dag_or_path, (str, Path)):
        return dag_or_path
    dags = load_dag_file(dag_or_path)
    if dag_id is not None:
        if dag_id not in dags:
            raise DagFileError(f"{dag_or_path} defines {sorted(dags)}, not {dag_id!r}")
        return dags[dag_id]
    if len(dags) != 1:
        raise DagFileError(f"{dag_or_path} defines {sorted(dags) or 'no DAG'}: pass dag_id=...")
    return next(iter(dags.values()))


def _register(dag: DAG) -> None:
    """Write ``dag`` to the metadata DB, as ``dag.test()`` needs for DAGs outside the bundle.

    ``dag.test()`` only re-parses the configured bundle (the DAGs folder); a DAG from a notebook
    cell or another folder would fail with "the dag is not serialized", or run a stale version.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    if not Path(dag.fileloc).is_file():  # a notebook cell: Airflow stores the DAG's source code
        dag.fileloc = str(_save_cell_source(dag))
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    names = [bundle.name for bundle in manager.get_all_dag_bundles()]
    bag = DagBag(dag_folder=dag.fileloc, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, DAG_BUNDLE if DAG_BUNDLE in names else names[0], None)


def _save_cell_source(dag: DAG) -> Path:
    """Copy the source of the notebook cell that defined ``dag`` (kept by IPython) to a file.

    The copy lives outside the DAGs folder: a cell alone is rarely an importable DAG file.
    """
    target = config.airflow_home() / "notebook_dags" / f"{dag.dag_id}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    source = "".join(linecache.getlines(dag.fileloc))
    target.write_text(source or f"# {dag.dag_id} was defined in {dag.fileloc} (source not kept)\n")
    return target


def _as_utc(value: datetime | date | str | None) -> datetime:
    """Turn a logical date given as text, date or datetime into an aware UTC datetime."""
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _text(state: Any) -> str:
    """Return an Airflow state enum (or None) as plain text: ``"success"``, ``"none"``."""
    return str(getattr(state, "value", state) or "none")


def _collect(dag_id: str, run_id: str, state: str, logical_date: datetime | None,
             conf: dict[str, Any] | None) -> DagRunResult:
    """Read the run's task instances, earlier tries and XComs back from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def key(task_id: str, map_index: int) -> str:
        return task_id if map_index < 0 else f"{task_id}[{map_index}]"

    def rows(model: Any) -> list[Any]:
        return list(session.scalars(select(model).where(model.dag_id == dag_id,
                                                        model.run_id == run_id)))

    with create_session() as session:
        tries: dict[str, list[TaskTry]] = {}
        for old in sorted(rows(TaskInstanceHistory), key=lambda h: h.try_number):
            tries.setdefault(key(old.task_id, old.map_index), []).append(
                TaskTry(old.try_number, _text(old.state), old.start_date, old.end_date))
        tis = sorted(rows(TaskInstance), key=lambda ti: (ti.start_date is None, ti.start_date,
                                                         ti.task_id, ti.map_index))
        tasks = {key(ti.task_id, ti.map_index): TaskResult(
            state=_text(ti.state), try_number=ti.try_number,
            start_date=ti.start_date, end_date=ti.end_date, duration_s=ti.duration,
            earlier_tries=tuple(tries.get(key(ti.task_id, ti.map_index), ())))
            for ti in tis}
        xcoms: dict[str, dict[str, Any]] = {}
        for row in rows(XComModel):
            xcoms.setdefault(key(row.task_id, row.map_index), {})[row.key] = \
                XComModel.deserialize_value(row)
    return DagRunResult(dag_id, run_id, state, tasks, xcoms, logical_date, dict(conf or {}))


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
