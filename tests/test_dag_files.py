"""Every lab's DAG files load the way docker-compose's Airflow loads them.

docker-compose points Airflow's DAG processor at the whole ``notebooks/`` folder (with the
repository on ``PYTHONPATH``), so a broken DAG file anywhere shows up as an import error in its
UI. This test runs the same ``DagBag`` scan over the same folder, and checks each DAG file for the
practices the labs teach.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.airflow.runner import dag_import_errors, load_dag_file
from helpers.airflow.setup import setup_airflow
from helpers.feedback.dag_checks import dynamic_start_dates, heavy_parse_time_calls
from helpers.platform.config import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
DAG_FILES = sorted(NOTEBOOKS.glob("*/dags/*.py"))


@pytest.fixture(scope="module", autouse=True)
def airflow_home() -> Path:
    return setup_airflow()


def test_the_notebooks_folder_has_no_dag_import_error():
    """The compose DAG folder (`notebooks/`) imports cleanly: what its Airflow UI would show."""
    assert DAG_FILES, "no DAG file under notebooks/*/dags"
    errors = dag_import_errors(NOTEBOOKS)
    assert errors == {}, "\n\n".join(f"{path}:\n{text}" for path, text in errors.items())


@pytest.mark.parametrize("path", DAG_FILES, ids=[f"{p.parent.parent.name}/{p.name}" for p in DAG_FILES])
def test_dag_file_defines_dags_without_catchup(path: Path):
    """Each DAG file defines at least one DAG with catchup off (no surprise backfill of past intervals)."""
    dags = load_dag_file(path)
    assert dags, f"{path.name} defines no DAG"
    for dag_id, dag in dags.items():
        assert dag.catchup is False, f"{path.name}:{dag_id} should set catchup=False"


@pytest.mark.parametrize("path", DAG_FILES, ids=[f"{p.parent.parent.name}/{p.name}" for p in DAG_FILES])
def test_dag_file_does_no_heavy_work_at_top_level(path: Path):
    """Top-level code runs at every parse (every 30 s in compose): no data reads, no connections there.

    The same check the labs' graded cells use (``helpers.feedback.dag_checks``), so the list of heavy
    calls lives in one place.
    """
    heavy = heavy_parse_time_calls(path.read_text())
    assert not heavy, f"{path.name} runs {heavy} when the DAG is parsed; expected none: move them into a task"
    moving = dynamic_start_dates(path.read_text())
    assert not moving, f"{path.name} computes its start date at parse time ({moving}); use a fixed date"
