"""The nbgrader loop, end to end: release, grade, feedback; and nothing secret reaches a learner.

One release and one grading run (module fixtures, in a scratch course folder inside the workbook)
serve every test. The submissions, for every lab:

- ``alice``: the released notebook with the source's solution cells put in: full marks;
- ``bob``: the released notebook as it is (stubs): zero, every test cell failing on the stub;

and for Lab 00 only (the robustness cases):

- ``carol``: an infinite loop in the first answer, a syntax error in the second, a correct third
  answer whose test cell she deleted: graded, with the reasons in the message;
- ``erin``: a file that is not a notebook: an ``error`` row, and the run goes on.
"""

from __future__ import annotations

import copy
import csv
import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.course import REPO_ROOT, load_config, step_dir
from autograder.grade import COLUMNS, find_submissions, stage
from helpers.config import state_dir

COURSE = state_dir() / "tests" / "autograder-course"
SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
ROBUSTNESS_LAB = "lab00"
CELL_TIMEOUT = 25  # seconds: what carol's infinite loop costs (the robustness run only; setup cells get longer)
REGIONS = {"### BEGIN SOLUTION": "### END SOLUTION", "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS"}
TRIVIAL = re.compile(r'^(pass|return ?[(\[{]?|try:|finally:|else:|[)\]}]+[,:]?|"""|#.*)?$')


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` from the workbook root against the scratch course."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "WORKBOOK_COURSE": str(COURSE)}, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def with_solutions(released, source):
    """The released notebook with each answer cell replaced by the source's solution cell."""
    solutions = {meta(c)["grade_id"]: c.source for c in source.cells if meta(c).get("solution")}
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if meta(cell).get("solution"):
            cell.source = solutions[meta(cell)["grade_id"]]
    return nb


def broken(released, source):
    """Carol: loop forever in answer 1, a syntax error in answer 2, answer 3 right but its test deleted."""
    nb = with_solutions(released, source)
    answers = [c for c in nb.cells if meta(c).get("solution")]
    answers[0].source = "while True:  # oops\n    pass\n" + answers[0].source
    answers[1].source += "\ndef unfinished(:\n"
    last_test = [c for c in nb.cells if meta(c).get("grade")][-1]
    nb.cells.remove(last_test)
    return nb, last_test.metadata.nbgrader.points


def secret_lines(source_path: Path) -> dict[str, set[str]]:
    """Solution and hidden-test lines of a source notebook that learners see nowhere else.

    Returns:
        ``{"### BEGIN SOLUTION": lines, "### BEGIN HIDDEN TESTS": lines}``. Lines quoted by the
        notebook's public cells (a hint may quote the solution on purpose, in backticks) or by the
        lab's other released files (the DAG file) are left out, and so are trivial ones.
    """
    secret: dict[str, set[str]] = {begin: set() for begin in REGIONS}
    public = set()
    for cell in nbformat.read(source_path, as_version=4).cells:
        begin = None
        for line in cell.source.splitlines():
            text = line.strip()
            if begin is None and text in REGIONS:
                begin = text
            elif begin is not None and text == REGIONS[begin]:
                begin = None
            else:
                (secret[begin] if begin else public).add(text)
    others = [p for p in source_path.parent.rglob("*") if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts]
    shown = "\n".join([*public, *(p.read_text(errors="replace") for p in others)]).replace("`", "")
    return {begin: {line for line in lines if line not in shown and len(line) > 5 and not TRIVIAL.match(line)}
            for begin, lines in secret.items()}


def notebook_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    parts = [cell.source for cell in nb.cells]
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts += [out.get("text", ""), str(out.get("data", {}).get("text/plain", "")), *out.get("traceback", [])]
    return "\n".join(parts)


def html_text(path: Path) -> str:
    """The text a reader sees in an HTML page (tags removed, entities decoded)."""
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.fixture(scope="module")
def course(kafka_broker) -> Path:
    """A fresh scratch course with every lab released."""
    shutil.rmtree(COURSE, ignore_errors=True)
    started = time.monotonic()
    run("autograder.release")
    print(f"\nrelease: {time.monotonic() - started:.1f} s")
    return COURSE


@pytest.fixture(scope="module")
def graded(course: Path, tmp_path_factory) -> dict:
    """Build the submissions and grade them in two runs; return the rows and paths.

    alice and bob (every lab) are graded with the course's cell timeout, as an instructor would;
    carol and erin (the robustness cases) with a short one, so carol's infinite loop costs seconds.
    """
    subs = {"course": tmp_path_factory.mktemp("submissions"), "robustness": tmp_path_factory.mktemp("robust")}
    deleted_points = None
    for source_path in SOURCES:
        lab = source_path.parent.name
        source = nbformat.read(source_path, as_version=4)
        released = nbformat.read(course / "release" / lab / source_path.name, as_version=4)
        students = {"alice": with_solutions(released, source), "bob": released}
        if lab == ROBUSTNESS_LAB:
            students["carol"], deleted_points = broken(released, source)
        for student, nb in students.items():
            folder = subs["robustness" if student == "carol" else "course"] / student / lab
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / source_path.name)
        if lab == ROBUSTNESS_LAB:
            (subs["robustness"] / "erin" / lab).mkdir(parents=True)
            (subs["robustness"] / "erin" / lab / source_path.name).write_text("{this is not a notebook")
    header, rows, stdout = None, [], ""
    for kind, folder in subs.items():
        out = tmp_path_factory.mktemp(f"grades-{kind}")
        timeout = ["--timeout", str(CELL_TIMEOUT)] if kind == "robustness" else []
        started = time.monotonic()
        proc = run("autograder.grade", str(folder), "--out", str(out), *timeout)
        elapsed = time.monotonic() - started
        with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header, these = reader.fieldnames, list(reader)
        rows += these
        stdout += proc.stdout
        print(f"\ngrading {len(these)} notebook(s) ({kind}): {elapsed:.1f} s")
        for row in these:
            print(f"  {row['student']}/{row['assignment']}: {row['auto_score']}/{row['max_auto_score']} "
                  f"{row['status']} in {row['seconds']} s")
    return {"rows": rows, "header": header, "stdout": stdout, "deleted_points": deleted_points}


def rows_of(graded: dict, student: str) -> list[dict]:
    rows = [r for r in graded["rows"] if r["student"] == student]
    assert rows, f"no row for {student}:\n{graded['stdout']}"
    return rows


def test_release_is_idempotent(course: Path):
    """Releasing again gives byte-identical notebooks, the same other files, and keeps nothing aside."""
    before = {p.relative_to(course): p.read_bytes() for p in (course / "release").rglob("*") if p.is_file()}
    proc = run("autograder.release")
    after = {p.relative_to(course): p.read_bytes() for p in (course / "release").rglob("*") if p.is_file()}
    assert after == before
    assert "kept your edited" not in proc.stdout
    assert any(p.suffix == ".py" for p in after), "the DAG files travel with the notebooks"


def test_release_keeps_a_notebook_the_learner_edited(course: Path):
    """A learner's work in the release folder survives `make lab` (which releases again)."""
    path = course / "release" / SOURCES[0].parent.name / SOURCES[0].name
    original = path.read_bytes()
    path.write_bytes(original.replace(b"raise NotImplementedError()", b"return 42  # my answer", 1))
    try:
        proc = run("autograder.release", "--assignment", SOURCES[0].parent.name)
        assert b"return 42  # my answer" in path.read_bytes()
        assert "kept your edited" in proc.stdout
    finally:
        path.write_bytes(original)


@pytest.mark.notebook
def test_grades_csv_has_one_row_per_student_and_notebook(graded: dict):
    assert graded["header"] == COLUMNS
    keys = [(r["student"], r["assignment"], r["notebook"]) for r in graded["rows"]]
    assert len(keys) == len(set(keys))
    assert {r["student"] for r in graded["rows"]} >= {"alice", "bob", "carol", "erin"}


@pytest.mark.notebook
def test_solution_gets_full_marks(graded: dict):
    for row in rows_of(graded, "alice"):
        assert row["status"] == "graded", row
        assert float(row["auto_score"]) == float(row["max_auto_score"]) > 0, row
        assert row["message"] == "all tests passed"
        # Only the manually graded answers (code quality, best practices) are left for a person.
        source = nbformat.read(REPO_ROOT / "notebooks" / row["assignment"] / f"{row['notebook']}.ipynb", 4)
        manual = any(meta(c).get("grade") and meta(c).get("solution") for c in source.cells)
        assert row["needs_manual_grading"] == str(manual), row
        assert Path(row["feedback_html"]).is_file()


@pytest.mark.notebook
def test_blank_release_gets_zero_and_every_test_fails_on_the_stub(graded: dict):
    """The released notebook as a learner gets it: setup runs cleanly, then only the stubs fail.

    Every graded cell fails first with the stub's NotImplementedError (not a NameError from code the
    release removed), and no other cell fails with anything else (a demo cell that uses an answer may
    fail on the stub, never with a confusing error of its own).
    """
    config = load_config(course_dir=COURSE)
    for row in rows_of(graded, "bob"):
        assert row["status"] == "graded" and float(row["auto_score"]) == 0, row
        executed = nbformat.read(step_dir(config, "autograded", row["assignment"], "bob") / f"{row['notebook']}.ipynb", 4)
        seen_answer = False
        for index, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
            label = f"{row['assignment']} {meta(cell).get('grade_id', f'code cell {index + 1}')}"
            errors = [o.ename for o in cell.outputs if o.output_type == "error"]
            seen_answer = seen_answer or bool(meta(cell).get("solution"))
            if meta(cell).get("grade"):
                assert errors[:1] == ["NotImplementedError"], f"{label} failed with {errors}, not the stub"
            elif not seen_answer:
                assert not errors, f"{label} fails before any answer is needed: {errors}"
            else:
                assert set(errors) <= {"NotImplementedError"}, f"{label}: {errors}"


@pytest.mark.notebook
def test_broken_submission_is_graded_with_reasons(graded: dict):
    """Infinite loop and syntax error cost their points; the deleted test cell is put back and scores."""
    (row,) = rows_of(graded, "carol")
    assert row["status"] == "graded", row
    assert float(row["auto_score"]) == graded["deleted_points"], row
    assert "CellTimeoutError" in row["message"] and "SyntaxError" in row["message"], row["message"]
    assert Path(row["feedback_html"]).is_file()


@pytest.mark.notebook
def test_unreadable_submission_is_an_error_row_not_a_crash(graded: dict):
    (row,) = rows_of(graded, "erin")
    assert row["status"] == "error" and float(row["auto_score"]) == 0
    assert "JSON" in row["message"] or "json" in row["message"], row["message"]


@pytest.mark.notebook
def test_no_solution_or_hidden_test_reaches_a_learner(course: Path, graded: dict):
    """Released notebooks and blank work's feedback show no solution line; no feedback shows a hidden test."""
    leaks, scanned = [], 0
    for source in SOURCES:
        lab, secrets = source.parent.name, secret_lines(source)
        solutions, hidden = secrets["### BEGIN SOLUTION"], secrets["### BEGIN HIDDEN TESTS"]
        assert solutions and hidden, f"{lab}: the scan needs lines to look for"
        released = {f"release/{p.name}": notebook_text(p) for p in (course / "release" / lab).glob("*.ipynb")}
        feedback = {f"feedback/{r['student']}": html_text(Path(r["feedback_html"]))
                    for r in graded["rows"] if r["assignment"] == lab and r["feedback_html"]}
        assert "bob" in " ".join(feedback) and "BEGIN HIDDEN TESTS" not in "".join([*released.values(), *feedback.values()])
        blank = {k: v for k, v in {**released, **feedback}.items() if not k.startswith(("feedback/alice", "feedback/carol"))}
        leaks += [f"{lab} {where}: {line}" for where, text in blank.items() for line in solutions if line in text]
        leaks += [f"{lab} {where}: {line}" for where, text in {**released, **feedback}.items()
                  for line in hidden if line in text]
        scanned += len(released) + len(feedback)
        # the scan finds code when it is there: alice's feedback shows her solution
        assert any(line in feedback["feedback/alice"] for line in solutions)
    assert not leaks, "\n".join(leaks)
    print(f"\nleak scan: {scanned} released notebooks and feedback pages, no leak")


def test_flat_folder_of_student_notebooks_is_staged_for_grading(course: Path, tmp_path: Path):
    """`grade DIR --assignment lab00` accepts DIR/<student>.ipynb and files it as nbgrader expects."""
    source = next(p for p in SOURCES if p.parent.name == ROBUSTNESS_LAB)
    shutil.copyfile(course / "release" / ROBUSTNESS_LAB / source.name, tmp_path / "dana.ipynb")
    with pytest.raises(ValueError, match="--assignment"):
        find_submissions(tmp_path)
    (submission,) = find_submissions(tmp_path, ROBUSTNESS_LAB)
    assert (submission.student, submission.assignment) == ("dana", ROBUSTNESS_LAB)
    config = load_config(course_dir=COURSE)
    folder = stage(submission, config, tmp_path)
    assert (folder / source.name).read_bytes() == (tmp_path / "dana.ipynb").read_bytes()
    assert folder == step_dir(config, "submitted", ROBUSTNESS_LAB, "dana")
