"""The learners' copy (`make student-copy DEST=...`): no solution or hidden test, edits kept, and it runs.

The copy is built once for the module. Its leak scan is stricter than nbgrader's own markers: a line of a
solution or of a hidden test must not stand anywhere in the copy, not even in a visible test cell (only the
notebook's markdown, set-up and demo cells may quote a line on purpose). Then the copy's own `make lab`
set-up runs (its own venv, its own broker on a free port, its own state) and Lab 00, with the source's
solutions put into a copy of the learner's notebook, runs top to bottom without an error.
"""

from __future__ import annotations

import copy as copylib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from leakscan import secret_lines

from helpers.platform.config import REPO_ROOT

pytestmark = pytest.mark.slow
SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
INSTRUCTOR_ONLY = ("autograder", "benchmarks", "tests", ".ci", "docker", "docker-compose.yml", "pytest.ini",
                   "requirements.in")


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a learner's shell: none of the suite's WORKBOOK_/AIRFLOW_ settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKBOOK_", "AIRFLOW", "KAFKA_BOOTSTRAP", "PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return {**env, **extra}


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("learners") / "module05-student"
    done = subprocess.run([sys.executable, "-m", "autograder.student_copy", str(dest)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"expected the copy to build, got exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return dest


def test_the_copy_has_the_learners_files_and_no_instructor_material(student_copy: Path):
    for lab in {p.parent.name for p in SOURCES}:
        assert list((student_copy / "notebooks" / lab).glob("*.ipynb")), f"expected notebooks/{lab}/ in the copy"
    for needed in ("helpers/platform/config.py", "data/fixtures/events_small.csv", "README.md", "Makefile", "setup.mk",
                   "pyproject.toml", "requirements.txt", "binder/postBuild", "notebooks/lab01/dags"):
        assert (student_copy / needed).exists(), f"expected {needed} in the learners' copy"
    present = [name for name in INSTRUCTOR_ONLY if (student_copy / name).exists()]
    assert not present, f"expected no instructor material in the learners' copy, found {present}"
    assert "make lab" in (student_copy / "README.md").read_text() and "rubric" not in (student_copy / "README.md").read_text()
    makefile = (student_copy / "Makefile").read_text()
    assert "--root notebooks" in makefile and "autograder" not in makefile, "the learners' Makefile serves notebooks/"


@pytest.mark.parametrize("source", SOURCES, ids=[p.parent.name for p in SOURCES])
def test_no_solution_or_hidden_test_line_stands_in_the_labs_copy(student_copy: Path, source: Path):
    secrets = secret_lines(source)
    assert secrets["### BEGIN SOLUTION"] and secrets["### BEGIN HIDDEN TESTS"], "the scan needs lines to look for"
    texts = {}  # what the learner gets of this lab: its notebook (every cell, outputs none) and its lab files
    for path in (student_copy / "notebooks" / source.parent.name).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            texts[path.relative_to(student_copy).as_posix()] = path.read_text(errors="replace")
    leaks = sorted(f"{where}: {line}" for kind, lines in secrets.items() for line in lines
                   for where, text in texts.items() if line in text)
    assert not leaks, (f"{source.parent.name}: expected no solution or hidden-test line in the learners' copy; "
                       "these stand in it (a visible test cell that repeats the answer leaks it too; compute "
                       "expected values from fixed data or a hidden reference):\n" + "\n".join(leaks))


def test_a_rebuild_keeps_the_learners_edits_and_force_backs_them_up(student_copy: Path):
    notebook = student_copy / "notebooks" / "lab00" / "00_environment_check.ipynb"
    original = notebook.read_bytes()
    edited = original.replace(b"raise NotImplementedError()", b"return 'my answer'", 1)
    assert edited != original, "the released notebook should have a stub to edit"
    notebook.write_bytes(edited)
    try:
        done = subprocess.run([sys.executable, "-m", "autograder.student_copy", str(student_copy)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        assert notebook.read_bytes() == edited, "a rebuild replaced the learner's edited notebook"
        assert "kept your edited notebooks/lab00/00_environment_check.ipynb" in done.stdout, done.stdout
        done = subprocess.run([sys.executable, "-m", "autograder.student_copy", str(student_copy), "--force"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        backups = list((student_copy / ".backups").rglob("00_environment_check.ipynb"))
        assert backups and backups[-1].read_bytes() == edited, f"expected the edit backed up, found {backups}"
        assert str(backups[-1]) in done.stdout, f"expected the backup's path in the output:\n{done.stdout}"
    finally:
        notebook.write_bytes(original)


def _solved_copy(student_copy: Path) -> Path:
    """Lab 00 of the copy with the source's solution cells put in (the test's, never the learners')."""
    source = nbformat.read(next(p for p in SOURCES if p.parent.name == "lab00"), as_version=4)
    released_path = student_copy / "notebooks" / "lab00" / "00_environment_check.ipynb"
    solved = copylib.deepcopy(nbformat.read(released_path, as_version=4))
    answers = {meta(c)["grade_id"]: c.source for c in source.cells if meta(c).get("solution")}
    for cell in solved.cells:
        if meta(cell).get("solution"):
            cell.source = answers[meta(cell)["grade_id"]]
    target = released_path.with_name("solved_by_the_test.ipynb")
    nbformat.write(solved, target)
    return target


@pytest.mark.notebook
def test_the_copys_make_lab_serves_its_notebooks_and_lab00_runs_end_to_end(student_copy: Path, tmp_path: Path):
    from helpers.platform.ports import free_port, port_in_use

    venv = student_copy / ".venv"  # the copy's own environment: the lock's packages, its own `helpers`
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "workbook_lock.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "-e",
                    str(student_copy)], check=True, timeout=600, capture_output=True)
    (venv / ".installed").touch()  # `make install` is then up to date: its pip steps are the lock's, done above
    port = next(p for p in (free_port() for _ in range(50)) if not port_in_use(p + 1))
    lab_port = free_port()
    env = clean_env(WORKBOOK_KAFKA_PORT=str(port), WORKBOOK_LAB_ROWS="20000")
    server = subprocess.Popen(["make", "lab", f"LAB_PORT={lab_port}"], cwd=student_copy, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 300
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            line = server.stdout.readline()
            seen.append(line)
            match = re.search(r"JupyterLab: (http://127\.0\.0\.1:\d+)/lab/tree/lab00\?token=(\w+)", line)
            url = match and match.groups()
        assert url, "expected `make lab` to print its JupyterLab URL:\n" + "".join(seen[-40:])
        base, token = url
        listing = None
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"{base}/api/contents/lab00?token={token}", timeout=5) as response:
                    listing = json.load(response)
                break
            except OSError:
                time.sleep(1)
        names = [item["name"] for item in (listing or {}).get("content", [])]
        assert "00_environment_check.ipynb" in names, f"expected JupyterLab to serve notebooks/lab00, got {names}"

        solved = _solved_copy(student_copy)
        run = subprocess.run([str(venv / "bin" / "python"), "-m", "nbconvert", "--to", "notebook",
                              "--execute", "--ExecutePreprocessor.timeout=300", "--output",
                              str(tmp_path / "executed.ipynb"), str(solved)],
                             cwd=solved.parent, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f"expected Lab 00 of the copy to run end to end:\n{run.stderr[-3000:]}"
        executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
        errors = [o.ename for c in executed.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, f"expected no cell to fail in the copy's Lab 00, got {errors}"
        state = student_copy / ".state"
        assert (state / "kafka").is_dir() and (state / "airflow" / "airflow.db").is_file(), (
            "the copy's services keep their state in its own .state/")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        subprocess.run(["make", "stop"], cwd=student_copy, env=env, capture_output=True, timeout=120)
        (student_copy / "notebooks" / "lab00" / "solved_by_the_test.ipynb").unlink(missing_ok=True)
