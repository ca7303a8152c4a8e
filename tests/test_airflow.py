"""The embedded Airflow helpers: setup, in-process DAG runs, import checks and the timeline.

Airflow's configuration is process-global, so these tests use the workbook's own
``.state/airflow`` (shared with the notebooks). Each DAG run costs about a second once the
in-process Execution API is warm (the first run of a process pays ~8 s for it), so the runs
are module-scoped fixtures shared by the tests that read them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from helpers.airflow.results import DagRunResult
from helpers.airflow.runner import DagFileError, dag_import_errors, load_dag_file, run_dag
from helpers.airflow.setup import setup_airflow
from helpers.platform.config import REPO_ROOT
from helpers.viz import task_timeline

DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="module", autouse=True)
def airflow_home() -> Path:
    """Configure Airflow and migrate its database once (a no-op when already done)."""
    return setup_airflow()


@pytest.fixture(scope="module")
def hello_result() -> DagRunResult:
    return run_dag(DAGS / "good" / "hello_two_tasks.py", logical_date="2024-01-02")


@pytest.fixture(scope="module")
def flaky_result() -> DagRunResult:
    return run_dag(DAGS / "good" / "flaky_with_retry.py", logical_date="2024-01-03",
                      conf={"region": "eu", "limit": 10})


def test_importing_the_helpers_does_not_import_airflow() -> None:
    """Check that the setup cell may import the Airflow helpers before configuring Airflow"""
    code = ("import sys, helpers.airflow.setup, helpers.airflow.runner, helpers.airflow.results, helpers.viz\n"
            "print(sorted(m for m in sys.modules if m.startswith('airflow')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]", f"importing helpers.airflow imported {out}"


def test_setup_is_idempotent_and_configures_the_state_folder(airflow_home: Path) -> None:
    """Check that setup puts the metadata DB in AIRFLOW_HOME and a second call changes nothing"""
    assert setup_airflow() == airflow_home
    assert (airflow_home / "airflow.db").is_file(), "the sqlite DB should be in AIRFLOW_HOME"
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).is_dir()


def test_setup_after_airflow_was_imported_elsewhere_says_restart(tmp_path: Path) -> None:
    """Check that importing airflow before setup gives an error telling the learner to restart"""
    code = ("import os, airflow\n"  # imported with another home, as a stray cell would
            "del os.environ['AIRFLOW_HOME'], os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']\n"
            "from helpers.airflow.setup import setup_airflow, AirflowSetupError\n"
            "try:\n    setup_airflow()\nexcept AirflowSetupError as err:\n    print(err)")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/other.db"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "Restart the kernel" in out and str(tmp_path) in out, out


def test_dag_file_runs_and_returns_xcoms(hello_result: DagRunResult) -> None:
    """Check that a two-task DAG file succeeds and its return values are readable"""
    assert hello_result.ok, hello_result.summary()
    assert hello_result.dag_id == "hello_two_tasks"
    assert {t: r.state for t, r in hello_result.tasks.items()} == {
        "extract_orders": "success", "total_revenue": "success"}
    assert hello_result.xcom("total_revenue") == 20.0
    orders = hello_result.xcoms["extract_orders"]["return_value"]
    assert orders[0] == {"order_id": 1, "amount": 12.5}
    assert hello_result.logical_date.isoformat().startswith("2024-01-02")
    assert "total_revenue" in repr(hello_result) and "success" in repr(hello_result)


def test_same_logical_date_twice_replaces_the_run(hello_result: DagRunResult) -> None:
    """Check that re-running a logical date (an idempotency check) runs every task again"""
    again = run_dag(DAGS / "good" / "hello_two_tasks.py", logical_date="2024-01-02")
    assert again.ok and again.run_id != hello_result.run_id
    assert all(task.try_number == 1 for task in again.tasks.values()), again.summary()
    assert again.xcom("total_revenue") == hello_result.xcom("total_revenue")

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        runs = session.scalar(select(func.count()).select_from(DagRun).where(
            DagRun.dag_id == "hello_two_tasks", DagRun.logical_date == again.logical_date))
    assert runs == 1, "the earlier run of that logical date should have been replaced"


def test_other_logical_date_is_a_second_run(hello_result: DagRunResult) -> None:
    """Check that a run for another logical date leaves the first one in place"""
    other = run_dag(DAGS / "good" / "hello_two_tasks.py", logical_date=date(2024, 1, 9))
    assert other.ok and other.logical_date.date() == date(2024, 1, 9)

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dates = set(session.scalars(
            select(DagRun.logical_date).where(DagRun.dag_id == "hello_two_tasks")))
    assert {d.date() for d in dates if d} >= {date(2024, 1, 2), date(2024, 1, 9)}


def test_dag_defined_in_a_notebook_cell_runs(airflow_home: Path) -> None:
    """Check that a DAG defined in a notebook cell (no file behind it) runs and keeps its source"""
    import linecache

    import pendulum
    from airflow.sdk import dag, task

    @dag(dag_id="test_inline_dag", schedule=None, catchup=False,
         start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), tags=["test"])
    def inline():
        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task
        def squares(values: list[int]) -> list[int]:
            return [v * v for v in values]

        squares(numbers())

    # IPython compiles a cell under a made-up file name and keeps its source in linecache.
    cell_file = "/tmp/ipykernel_0/2718281828.py"
    linecache.cache[cell_file] = (30, None, ["# the notebook cell\n", "inline()\n"], cell_file)
    dag_object = inline()
    dag_object.fileloc = cell_file

    result = run_dag(dag_object, logical_date="2024-02-01")
    assert result.ok, result.summary()
    assert result.xcom("squares") == [1, 4, 9]
    saved = airflow_home / "notebook_dags" / "test_inline_dag.py"
    assert saved.read_text() == "# the notebook cell\ninline()\n", "Airflow shows the cell's code"


def test_failing_task_gives_failed_run_not_exception() -> None:
    """Check that a task raising an error fails the run and the task, and skips what follows"""
    import pendulum
    from airflow.sdk import dag, task

    @dag(dag_id="test_failing_dag", schedule=None, catchup=False,
         start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), tags=["test"])
    def failing():
        @task
        def divide() -> float:
            return 1 / 0

        @task
        def publish(value: float) -> None:
            print(value)

        publish(divide())

    result = run_dag(failing(), logical_date="2024-02-02")
    assert result.state == "failed" and not result.ok
    assert result.tasks["divide"].state == "failed"
    assert result.tasks["publish"].state == "upstream_failed"
    assert "divide" not in result.xcoms


def test_retry_succeeds_on_second_try(flaky_result: DagRunResult) -> None:
    """Check that a task with retries=1 that fails once ends in success on try 2"""
    api = flaky_result.tasks["call_flaky_api"]
    assert flaky_result.ok, flaky_result.summary()
    assert api.state == "success" and api.try_number == 2
    assert [(t.try_number, t.state) for t in api.earlier_tries] == [(1, "failed")]
    gap = api.start_date - api.earlier_tries[0].end_date
    assert gap >= timedelta(seconds=1), "the retry should wait retry_delay (1 s)"


def test_conf_reaches_the_tasks(flaky_result: DagRunResult) -> None:
    """Check that run_dag(conf=...) is what tasks read as dag_run.conf"""
    assert flaky_result.xcom("read_conf") == {"conf": {"region": "eu", "limit": 10},
                                              "ds": "2024-01-03"}
    assert flaky_result.conf == {"region": "eu", "limit": 10}


def test_dag_import_errors_finds_the_broken_file_only() -> None:
    """Check that the DAG-loading check reports a broken file and passes a good folder"""
    errors = dag_import_errors(DAGS / "broken")
    assert [Path(p).name for p in errors] == ["missing_import.py"]
    assert "no_such_thing" in next(iter(errors.values()))
    assert dag_import_errors(DAGS / "good") == {}
    with pytest.raises(DagFileError, match="no_such_thing"):
        load_dag_file(DAGS / "broken" / "missing_import.py")
    assert set(load_dag_file(DAGS / "good" / "hello_two_tasks.py")) == {"hello_two_tasks"}


def test_timeline_draws_one_row_per_task_and_one_bar_per_try(flaky_result: DagRunResult) -> None:
    """Check that the timeline shows each task, with the failed first try as its own bar"""
    from matplotlib.figure import Figure

    fig = task_timeline(flaky_result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["read_conf", "call_flaky_api"]
    assert len(ax.patches) == 3, "2 tasks, one of them tried twice: 3 bars"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["failed", "success"]
