"""Every lab notebook: well formed for nbgrader, and runs top to bottom with testbook.

Parametrized over ``notebooks/*/*.ipynb``, so a new lab is tested as soon as its notebook exists.
The source (instructor) notebooks run with testbook against the live services. The released
(learner) notebooks are executed by ``test_autograder.py``, as the blank submission: setup runs
cleanly, every graded cell fails first with the stub's ``NotImplementedError``, and no cell fails
with anything else.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import nbformat
import pytest
from testbook import testbook

from autograder.course import REPO_ROOT, prepare_environment

SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
IDS = [f"{p.parent.name}/{p.name}" for p in SOURCES]
CELL_TIMEOUT = 300  # a cold Spark or Airflow start on a busy 2-core laptop takes a minute


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_names(nb) -> list[str]:
    """Top-level functions, classes and variables the notebook's solution cells define."""
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            tree = ast.parse(cell.source)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.append(node.name)
                elif isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def errors_of(cell) -> list[str]:
    return [out["ename"] for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_source_is_committed_clean_and_well_formed(path: Path):
    """Outputs cleared, unique grade ids, marked solutions, tests that open with a docstring and score."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade ids: {ids}"
    solutions = [c for c in code if nbgrader_meta(c).get("solution")]
    tests = [c for c in code if nbgrader_meta(c).get("grade")]
    assert solutions and tests, "a lab has at least one answer cell and one graded test cell"
    for cell in [c for c in nb.cells if c.cell_type == "markdown" and nbgrader_meta(c).get("solution")]:
        # nbgrader replaces a written answer cell by "YOUR ANSWER HERE" in the release; the source holds a
        # model answer (else a full submission looks unanswered and skips manual grading).
        assert cell.source.strip() != "YOUR ANSWER HERE", f"{nbgrader_meta(cell)['grade_id']}: write a model answer"
    for cell in solutions:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, nbgrader_meta(cell)["grade_id"]
    for cell in tests:
        meta = nbgrader_meta(cell)
        assert meta.get("locked") and meta.get("points", 0) > 0, f"{meta['grade_id']}: locked, with points"
        assert cell.source.lstrip().startswith('"""'), f"{meta['grade_id']}: open with a one-line docstring"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_source_notebook_runs_top_to_bottom(path: Path, kafka_broker):
    """The instructor version (solutions and hidden tests included) runs without a single error."""
    prepare_environment()
    names = solution_names(nbformat.read(path, as_version=4))
    started = time.monotonic()
    with testbook(str(path), execute=True, timeout=CELL_TIMEOUT, kernel_name="python3",
                  resources={"metadata": {"path": str(path.parent)}}) as tb:
        print(f"\n{path.parent.name}/{path.name}: executed in {time.monotonic() - started:.1f} s")
        missing = [name for name in names if not tb.value(f"{name!r} in globals()")]
        assert not missing, f"the solution cells should define {missing}"
        errors = [(i, errors_of(c)) for i, c in enumerate(tb.nb.cells) if errors_of(c)]
        assert not errors, errors
