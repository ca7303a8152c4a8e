"""Run one DAG in this process with ``dag.test()`` (no scheduler, no web server) and report what happened.

:func:`run_dag` takes a DAG object or a DAG file, syncs it to the metadata DB (``dag.test()`` needs
that for DAGs defined in a notebook) and returns a :class:`helpers.airflow.results.DagRunResult`;
:func:`load_dag_file` and :func:`dag_import_errors` load DAG files the way the DAG processor does.
"""

from __future__ import annotations

import copy
import linecache
import logging
import warnings
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.airflow.results import DagRunResult, as_utc, collect_result, state_text
from helpers.airflow.setup import DAG_BUNDLE, setup_airflow
from helpers.platform import config

if TYPE_CHECKING:
    from airflow.sdk import DAG


class DagFileError(RuntimeError):
    """A DAG file failed to import, or does not define the DAG asked for."""


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
            run = dag.test(logical_date=as_utc(logical_date), run_conf=conf)
        finally:
            for t in dag.tasks:
                t.params = saved_params[t.task_id]
    return collect_result(dag.dag_id, run.run_id, state_text(run.state), run.logical_date, conf)


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
    """Return the DAG object itself, or the DAG ``dag_id`` (or the only one) of a file.

    Raises:
        TypeError: ``dag_or_path`` is neither a DAG nor a path (a DAG factory gets a hint to call it).
    """
    if not isinstance(dag_or_path, (str, Path)):
        if hasattr(dag_or_path, "dag_id") and hasattr(dag_or_path, "test"):
            return dag_or_path
        name = getattr(dag_or_path, "__name__", type(dag_or_path).__name__)
        if callable(dag_or_path):
            raise TypeError(f"run_dag needs a DAG (or a DAG file's path), got the function {name}: "
                            f"call it first, e.g. run_dag({name}(...))")
        raise TypeError(f"run_dag needs a DAG (or a DAG file's path), got {type(dag_or_path).__name__} "
                        f"{dag_or_path!r:.60}")
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
