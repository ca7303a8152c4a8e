"""Every lab notebook: well formed for nbgrader, runs top to bottom, and its released stubs fail cleanly.

Parametrized over ``notebooks/*/*.ipynb``, so a new lab is tested as soon as its notebook exists.
The source (instructor) notebooks run with testbook; the released (learner) notebooks run cell by
cell with nbclient, up to the first graded cell after a stub, which must fail with the stub's
``NotImplementedError`` and nothing else (a ``NameError`` there means the release removed code that
a test needs). The full "every test cell fails on a blank notebook" check is the blank submission of
``test_autograder.py``.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from testbook import testbook

from autograder.course import REPO_ROOT, prepare_environment
from helpers.config import state_dir

SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
IDS = [f"{p.parent.name}/{p.name}" for p in SOURCES]
CELL_TIMEOUT = 300  # a cold Spark or Airflow start on a busy 2-core laptop takes a minute
STUB = "raise NotImplementedError()"


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


@pytest.fixture(scope="module")
def released(kafka_broker) -> dict[str, Path]:
    """Release every lab into a scratch course folder inside the workbook (so notebooks find helpers/)."""
    prepare_environment()
    course = state_dir() / "tests" / "notebooks-course"
    shutil.rmtree(course, ignore_errors=True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "autograder.release"], cwd=REPO_ROOT, capture_output=True,
                          text=True, env={**os.environ, "WORKBOOK_COURSE": str(course)}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\nrelease of {len(SOURCES)} notebook(s): {time.monotonic() - started:.1f} s")
    return {f"{p.parent.name}/{p.name}": course / "release" / p.parent.name / p.name for p in SOURCES}


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


@pytest.mark.notebook
@pytest.mark.parametrize("key", IDS)
def test_released_stub_fails_with_not_implemented(key: str, released: dict[str, Path]):
    """Setup runs cleanly, then the first graded cell after a stub fails with NotImplementedError."""
    path = released[key]
    nb = nbformat.read(path, as_version=4)
    assert any(STUB in c.source for c in nb.cells if nbgrader_meta(c).get("solution")), "no stub in the release"
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    seen_stub, checked = False, None
    started = time.monotonic()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            meta, errors = nbgrader_meta(cell), errors_of(cell)
            label = meta.get("grade_id", f"cell {index + 1}")
            if meta.get("solution") and STUB in cell.source:  # a stub may raise at once (top-level answer)
                seen_stub = True
                assert set(errors) <= {"NotImplementedError"}, f"{label}: {errors}"
            elif not seen_stub:
                assert not errors, f"{label} fails before any answer is needed: {errors}"
            elif meta.get("grade"):
                assert errors[:1] == ["NotImplementedError"], f"{label} should fail on the stub, got {errors}"
                checked = label
                break
            else:
                assert set(errors) <= {"NotImplementedError"}, f"{label}: {errors}"
    print(f"\n{key} (released): first graded cell {checked} reached in {time.monotonic() - started:.1f} s")
    assert checked, "no graded cell after the first stub"
