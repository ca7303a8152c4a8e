"""The nbgrader loop, end to end: release, grade, feedback; and nothing secret reaches a learner.

Every lab is released once per run (a file lock shares the release between pytest-xdist workers),
then each lab is graded in its own copy of the course (its own gradebook) by a class-scoped fixture:
``--dist loadscope`` keeps a class on one worker, so two workers grade two labs at once and each lab
notebook executes exactly twice in the suite. The submissions, for every lab:

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
import uuid
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock
from leakscan import secret_lines

from autograder.course import REPO_ROOT, load_config, step_dir
from autograder.grade import COLUMNS, find_submissions, stage
from helpers.platform.config import state_dir

COURSE = state_dir() / "autograder" / "course"
SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
LABS = sorted({p.parent.name for p in SOURCES})
_LOCAL_RUN = uuid.uuid4().hex  # without xdist, this process is the whole run
ROBUSTNESS_LAB = "lab00"
CELL_TIMEOUT = 25  # seconds: what carol's infinite loop costs (the robustness run only; setup cells get longer)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def run(*args: str, course: Path = COURSE, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` from the workbook root against a scratch course."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "WORKBOOK_COURSE": str(course)}, timeout=timeout)
    assert proc.returncode == 0, f"expected {args} to exit 0, got {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
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


@pytest.fixture(scope="session")
def course() -> Path:
    """Every lab released once per run into the suite's scratch course (shared by the xdist workers)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or _LOCAL_RUN
    COURSE.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(COURSE.parent / "release.lock")):
        marker = COURSE / ".released-by-run"
        if not (marker.is_file() and marker.read_text() == run_id):
            shutil.rmtree(COURSE, ignore_errors=True)
            started = time.monotonic()
            run("autograder.release")
            print(f"\nrelease of {len(LABS)} labs: {time.monotonic() - started:.1f} s")
            marker.write_text(run_id)
    return COURSE


def course_copy(course: Path, name: str) -> Path:
    """A private copy of the released course (its own gradebook and submitted/ folders)."""
    target = COURSE.parent / f"course-{name}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(course, target)
    return target


def grade_folder(folder: Path, course: Path, out: Path, *extra: str) -> tuple[list[dict], list[str], str, float]:
    """Grade every submission under ``folder``; return (rows, csv header, stdout, seconds).

    One submission at a time unless ``extra`` says ``--jobs``: the suite already grades two labs at
    once on its two xdist workers.
    """
    started = time.monotonic()
    jobs = () if "--jobs" in extra else ("--jobs", "1")
    proc = run("autograder.grade", str(folder), "--out", str(out), *jobs, *extra, course=course)
    elapsed = time.monotonic() - started
    said = proc.stdout + "\n".join(line for line in proc.stderr.splitlines() if line.startswith("WARNING"))
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    for row in rows:
        print(f"  {row['student']}/{row['assignment']}: {row['auto_score']}/{row['max_auto_score']} "
              f"{row['status']} in {row['seconds']} s")
    return rows, header, said, elapsed


@pytest.fixture(scope="class")
def graded(request, course: Path, kafka_broker, tmp_path_factory) -> dict:
    """alice (solutions) and bob (the blank release) of the class's lab, graded in the lab's own course copy.

    Class-scoped, and ``make test`` distributes by scope (``--dist loadscope``): each lab's tests
    share one worker and one grading run, and two workers grade two labs at once.
    """
    lab = request.cls.lab
    folder = tmp_path_factory.mktemp(f"submissions-{lab}")
    for source_path in (p for p in SOURCES if p.parent.name == lab):  # every notebook of the lab (Lab 05 has three)
        source = nbformat.read(source_path, as_version=4)
        released = nbformat.read(course / "release" / lab / source_path.name, as_version=4)
        for student, nb in {"alice": with_solutions(released, source), "bob": released}.items():
            (folder / student / lab).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / student / lab / source_path.name)
    lab_course = course_copy(course, lab)
    rows, header, stdout, elapsed = grade_folder(folder, lab_course, tmp_path_factory.mktemp(f"grades-{lab}"))
    print(f"\ngrading {lab} (alice + bob): {elapsed:.1f} s")
    return {"rows": rows, "header": header, "stdout": stdout, "course": lab_course, "lab": lab}


@pytest.fixture(scope="class")
def robustness(course: Path, kafka_broker, tmp_path_factory) -> dict:
    """carol (loop, syntax error, deleted test) and erin (not a notebook) on Lab 00, with a short timeout."""
    source_path = next(p for p in SOURCES if p.parent.name == ROBUSTNESS_LAB)
    source = nbformat.read(source_path, as_version=4)
    released = nbformat.read(course / "release" / ROBUSTNESS_LAB / source_path.name, as_version=4)
    folder = tmp_path_factory.mktemp("robust")
    carol, deleted_points = broken(released, source)
    (folder / "carol" / ROBUSTNESS_LAB).mkdir(parents=True)
    nbformat.write(carol, folder / "carol" / ROBUSTNESS_LAB / source_path.name)
    (folder / "erin" / ROBUSTNESS_LAB).mkdir(parents=True)
    (folder / "erin" / ROBUSTNESS_LAB / source_path.name).write_text("{this is not a notebook")
    rows, header, stdout, elapsed = grade_folder(folder, course_copy(course, "robustness"),
                                                 tmp_path_factory.mktemp("grades-robust"), "--timeout", str(CELL_TIMEOUT))
    print(f"\ngrading the robustness cases: {elapsed:.1f} s")
    return {"rows": rows, "header": header, "stdout": stdout, "deleted_points": deleted_points}


def rows_of(graded: dict, student: str) -> list[dict]:
    rows = [r for r in graded["rows"] if r["student"] == student]
    assert rows, f"expected a grades.csv row for {student}, found none; the grader said:\n{graded['stdout']}"
    return rows


def test_release_is_idempotent_and_keeps_a_notebook_the_learner_edited(course: Path, tmp_path: Path):
    """Releasing again gives byte-identical notebooks; a learner's edit survives a release (`make lab`)."""
    scratch = tmp_path / "course"
    shutil.copytree(course, scratch)
    before = {p.relative_to(scratch): p.read_bytes() for p in (scratch / "release").rglob("*") if p.is_file()}
    proc = run("autograder.release", course=scratch)
    after = {p.relative_to(scratch): p.read_bytes() for p in (scratch / "release").rglob("*") if p.is_file()}
    changed = sorted(str(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"expected a second release to change nothing, these changed: {changed}"
    assert "kept your edited" not in proc.stdout
    assert any(p.suffix == ".py" for p in after), "the DAG files travel with the notebooks"

    path = scratch / "release" / SOURCES[0].parent.name / SOURCES[0].name
    path.write_bytes(path.read_bytes().replace(b"raise NotImplementedError()", b"return 42  # my answer", 1))
    proc = run("autograder.release", "--assignment", SOURCES[0].parent.name, course=scratch)
    assert b"return 42  # my answer" in path.read_bytes(), "the learner's edit was replaced by the release"
    assert "kept your edited" in proc.stdout, f"expected the release to say it kept the edit:\n{proc.stdout}"


@pytest.mark.notebook
class LabGrading:
    """The autograde round trip of one lab; a subclass per lab (below) sets ``lab``."""

    lab = ""

    def test_grades_csv_has_one_row_per_student_and_notebook(self, graded: dict):
        assert graded["header"] == COLUMNS
        keys = [(r["student"], r["assignment"], r["notebook"]) for r in graded["rows"]]
        assert len(keys) == len(set(keys)), f"expected one row per student and notebook, got {keys}"
        assert {r["student"] for r in graded["rows"]} == {"alice", "bob"}

    def test_solution_gets_full_marks(self, graded: dict):
        for row in rows_of(graded, "alice"):
            assert row["status"] == "graded", row
            assert float(row["auto_score"]) == float(row["max_auto_score"]) > 0, row
            assert row["message"] == "all tests passed"
            # Only the manually graded answers (code quality, best practices) are left for a person.
            source = nbformat.read(REPO_ROOT / "notebooks" / row["assignment"] / f"{row['notebook']}.ipynb", 4)
            manual = any(meta(c).get("grade") and meta(c).get("solution") for c in source.cells)
            assert row["needs_manual_grading"] == str(manual), row
            assert Path(row["feedback_html"]).is_file()

    def test_solution_runs_top_to_bottom_without_an_error(self, graded: dict):
        """The source's solutions, executed by the grader against the live services: not one cell fails.

        This is the notebook's run against the live services (the graded full submission doubles as it).
        """
        config = load_config(course_dir=graded["course"])
        for row in rows_of(graded, "alice"):
            executed = nbformat.read(step_dir(config, "autograded", self.lab, "alice") / f"{row['notebook']}.ipynb", 4)
            code = [c for c in executed.cells if c.cell_type == "code"]
            errors = [(meta(c).get("grade_id", f"code cell {i + 1}"), o.ename, o.evalue[:200])
                      for i, c in enumerate(code) for o in c.outputs if o.output_type == "error"]
            assert not errors, f"{self.lab}: expected every cell of the solution to run cleanly, these failed: {errors}"
            skipped = [meta(c).get("grade_id", f"code cell {i + 1}") for i, c in enumerate(code)
                       if c.source.strip() and not c.execution_count]
            assert not skipped, f"{self.lab}: expected every non-empty code cell executed; not run: {skipped}"

    def test_blank_release_gets_zero_and_every_test_fails_on_the_stub(self, graded: dict):
        """The released notebook as a learner gets it: setup runs cleanly, then only the stubs fail.

        Every graded cell fails first with the stub's NotImplementedError (not a NameError from code the
        release removed), and no other cell fails with anything else (a demo cell that uses an answer may
        fail on the stub, never with a confusing error of its own).
        """
        config = load_config(course_dir=graded["course"])
        for row in rows_of(graded, "bob"):
            assert row["status"] == "graded" and float(row["auto_score"]) == 0, row
            executed = nbformat.read(step_dir(config, "autograded", row["assignment"], "bob") / f"{row['notebook']}.ipynb", 4)
            seen_answer = False
            for index, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
                label = f"{row['assignment']}/{row['notebook']} {meta(cell).get('grade_id', f'code cell {index + 1}')}"
                errors = [o.ename for o in cell.outputs if o.output_type == "error"]
                details = [f"{o.ename}: {str(o.evalue)[:600]}" for o in cell.outputs if o.output_type == "error"]
                seen_answer = seen_answer or bool(meta(cell).get("solution"))
                if meta(cell).get("grade"):
                    assert errors[:1] == ["NotImplementedError"], f"{label} failed with {errors}, not the stub"
                elif not seen_answer:
                    assert not errors, f"{label} fails before any answer is needed: {details}"
                else:
                    assert set(errors) <= {"NotImplementedError"}, f"{label}: {errors}"

    def test_no_solution_or_hidden_test_reaches_a_learner(self, course: Path, graded: dict):
        """Released notebooks and blank work's feedback show no solution line; no feedback shows a hidden test."""
        leaks, pages = [], 0
        for source in (p for p in SOURCES if p.parent.name == self.lab):  # each notebook against its own pages
            secrets = secret_lines(source)
            solutions, hidden = secrets["### BEGIN SOLUTION"], secrets["### BEGIN HIDDEN TESTS"]
            assert solutions and hidden, f"{self.lab}/{source.name}: the scan needs lines to look for"
            released = {f"release/{source.name}": notebook_text(course / "release" / self.lab / source.name)}
            feedback = {f"feedback/{r['student']}/{source.stem}": html_text(Path(r["feedback_html"]))
                        for r in graded["rows"] if r["feedback_html"] and r["notebook"] == source.stem}
            assert f"feedback/bob/{source.stem}" in feedback, f"expected bob's feedback for {source.name}"
            assert "BEGIN HIDDEN TESTS" not in "".join([*released.values(), *feedback.values()])
            blank = {k: v for k, v in {**released, **feedback}.items() if not k.startswith("feedback/alice/")}
            leaks += [f"{self.lab} {where}: {line}" for where, text in blank.items() for line in solutions if line in text]
            leaks += [f"{self.lab} {where}: {line}" for where, text in {**released, **feedback}.items()
                      for line in hidden if line in text]
            # the scan finds code when it is there: alice's feedback shows her solution
            assert any(line in feedback[f"feedback/alice/{source.stem}"] for line in solutions), (
                f"the scan should see alice's own solution in {source.name}")
            pages += len(released) + len(feedback)
        assert not leaks, "\n".join(leaks)
        print(f"\nleak scan {self.lab}: {pages} released notebooks and feedback pages, no leak")


for _lab in LABS:  # TestGrading_lab00, ...: one class per lab, so loadscope keeps a lab on one worker
    globals()[f"TestGrading_{_lab}"] = type(f"TestGrading_{_lab}", (LabGrading,), {"lab": _lab})


@pytest.mark.notebook
class TestRobustness:
    """Broken and unreadable submissions: graded with reasons, never a crash or a hang."""

    @pytest.mark.notebook
    def test_broken_submission_is_graded_with_reasons(self, robustness: dict):
        """Infinite loop and syntax error cost their points; the deleted test cell is put back and scores."""
        (row,) = rows_of(robustness, "carol")
        assert row["status"] == "graded", row
        assert float(row["auto_score"]) == robustness["deleted_points"], row
        assert "CellTimeoutError" in row["message"] and "SyntaxError" in row["message"], row["message"]
        assert Path(row["feedback_html"]).is_file()


    @pytest.mark.notebook
    def test_unreadable_submission_is_an_error_row_not_a_crash(self, robustness: dict):
        (row,) = rows_of(robustness, "erin")
        assert row["status"] == "error" and float(row["auto_score"]) == 0
        assert "JSON" in row["message"] or "json" in row["message"], row["message"]


def kills_its_grader(released):
    """Mallory: the first answer kills the process that runs the kernel (the grading worker)."""
    nb = copy.deepcopy(released)
    answer = next(c for c in nb.cells if meta(c).get("solution"))
    answer.source = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + answer.source
    return nb


def gradebook_scores(course: Path, students: set[str]) -> dict[tuple[str, str, str], tuple]:
    """``{(student, notebook, cell): (auto_score, needs_manual_grade)}`` from a course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(sub.student.id, nb.name, grade.name): (grade.auto_score, grade.needs_manual_grade)
                for sub in gb.assignment_submissions(ROBUSTNESS_LAB) if sub.student.id in students
                for nb in sub.notebooks for grade in nb.grades}


@pytest.fixture(scope="class")
def serial_and_parallel(course: Path, kafka_broker, tmp_path_factory) -> dict:
    """alice (solutions), bob (blank) and mallory, whose answer kills her kernel's parent, on Lab 00: graded
    with --jobs 1 *without* the sandbox (WORKBOOK_SANDBOX=off) and, in another course copy, with --jobs 2
    in the sandbox (where bubblewrap works): the rows must agree, whatever the mode."""
    source_path = next(p for p in SOURCES if p.parent.name == ROBUSTNESS_LAB)
    source = nbformat.read(source_path, as_version=4)
    released = nbformat.read(course / "release" / ROBUSTNESS_LAB / source_path.name, as_version=4)
    runs = {}
    for jobs, sandbox in (("1", "off"), ("2", None)):
        students = {"alice": with_solutions(released, source), "bob": released, "mallory": kills_its_grader(released)}
        folder = tmp_path_factory.mktemp(f"submissions-jobs{jobs}")
        for student, nb in students.items():
            (folder / student / ROBUSTNESS_LAB).mkdir(parents=True)
            nbformat.write(nb, folder / student / ROBUSTNESS_LAB / source_path.name)
        lab_course = course_copy(course, f"jobs{jobs}")
        out = tmp_path_factory.mktemp(f"grades-jobs{jobs}")
        saved = os.environ.get("WORKBOOK_SANDBOX")
        if sandbox:
            os.environ["WORKBOOK_SANDBOX"] = sandbox
        try:
            rows, header, stdout, elapsed = grade_folder(folder, lab_course, out, "--jobs", jobs)
        finally:
            os.environ.pop("WORKBOOK_SANDBOX", None) if saved is None else os.environ.update(WORKBOOK_SANDBOX=saved)
        print(f"\ngrading {ROBUSTNESS_LAB} ({', '.join(students)}) with --jobs {jobs}, sandbox "
              f"{sandbox or 'on if available'}: {elapsed:.1f} s")
        runs[jobs] = {"rows": rows, "header": header, "stdout": stdout, "course": lab_course, "out": out}
    return runs


@pytest.mark.notebook
class TestParallelGrading:
    """`grade --jobs 2` gives the rows, the gradebook and the feedback of `grade --jobs 1`."""

    def test_parallel_rows_equal_serial_rows_except_the_time(self, serial_and_parallel: dict):
        def comparable(run: dict) -> list[dict]:
            rows = [dict(r) for r in run["rows"] if r["student"] != "mallory"]
            for row in rows:
                del row["seconds"]
                assert Path(row["feedback_html"]).is_file(), f"expected the feedback page of {row['student']}: {row}"
                row["feedback_html"] = Path(row["feedback_html"]).relative_to(run["out"]).as_posix()
            return rows

        serial, parallel = serial_and_parallel["1"], serial_and_parallel["2"]
        assert parallel["header"] == serial["header"] == COLUMNS
        assert [r["student"] for r in serial["rows"]] == ["alice", "bob", "mallory"], serial["stdout"]
        assert "WARNING: grading WITHOUT the sandbox: WORKBOOK_SANDBOX=off" in serial["stdout"], (
            f"expected the unsandboxed run to warn loudly, it said:\n{serial['stdout'][-2000:]}")
        assert comparable(parallel) == comparable(serial), (
            f"expected --jobs 2 to give the rows of --jobs 1 (time aside); serial said:\n{serial['stdout']}\n"
            f"parallel said:\n{parallel['stdout']}\ncompare the worker logs in {parallel['course']}/.parallel/")
        assert float(serial["rows"][0]["auto_score"]) == float(serial["rows"][0]["max_auto_score"]) > 0, serial["rows"]

    def test_parallel_run_writes_the_course_gradebook_and_folders(self, serial_and_parallel: dict):
        """The parent merged every worker: per-cell scores in the course's gradebook, and its step folders."""
        serial, parallel = serial_and_parallel["1"], serial_and_parallel["2"]
        expected = gradebook_scores(serial["course"], {"alice", "bob"})
        got = gradebook_scores(parallel["course"], {"alice", "bob"})
        assert expected and got == expected, f"expected the serial run's cell scores {expected}, the parallel course has {got}"
        config = load_config(course_dir=parallel["course"])
        for row in parallel["rows"]:
            if row["status"] == "graded":
                for step, suffix in (("submitted", ".ipynb"), ("autograded", ".ipynb"), ("feedback", ".html")):
                    path = step_dir(config, step, ROBUSTNESS_LAB, row["student"]) / f"{row['notebook']}{suffix}"
                    assert path.is_file(), f"expected the merged {step} file {path}; the course has " \
                        f"{sorted(p.name for p in path.parent.parent.glob('*'))}"

    def test_a_worker_that_dies_is_an_error_row_and_the_others_are_graded(self, serial_and_parallel: dict):
        """Mallory kills her kernel's parent. Without the sandbox (the serial run) that is her grading worker: her
        row is an error with 0 and the run goes on. In the sandbox her kernel's parent is the sandbox's init,
        which a process of its PID namespace cannot kill: nothing happens, and she is graded as the stub she is."""
        from autograder.sandbox import probe

        for jobs in ("1", "2"):
            run = serial_and_parallel[jobs]
            rows = {r["student"]: r for r in run["rows"]}
            assert set(rows) == {"alice", "bob", "mallory"}, run["stdout"]
            mallory = rows["mallory"]
            assert float(mallory["auto_score"]) == 0, f"--jobs {jobs}: expected mallory to score 0, got {mallory}"
            if jobs == "2" and not probe():
                assert mallory["status"] == "graded" and "NotImplementedError" in mallory["message"], (
                    f"--jobs 2 in the sandbox: expected mallory's kill to reach nothing and her stubs graded, got {mallory}")
            else:
                assert mallory["status"] == "error" and "worker died (killed by signal 9)" in mallory["message"], (
                    f"--jobs {jobs} without the sandbox: expected mallory's row to say her grading worker was killed "
                    f"(signal 9), got: {mallory}")


def test_flat_folder_of_student_notebooks_is_staged_for_grading(course: Path, tmp_path: Path):
    """`grade DIR --assignment lab00` accepts DIR/<student>.ipynb and files it as nbgrader expects."""
    source = next(p for p in SOURCES if p.parent.name == ROBUSTNESS_LAB)
    shutil.copyfile(course / "release" / ROBUSTNESS_LAB / source.name, tmp_path / "dana.ipynb")
    with pytest.raises(ValueError, match="--assignment"):
        find_submissions(tmp_path)
    (submission,) = find_submissions(tmp_path, ROBUSTNESS_LAB)
    assert (submission.student, submission.assignment) == ("dana", ROBUSTNESS_LAB)
    config = load_config(course_dir=course_copy(course, "flat-folder"))
    folder = stage(submission, config, tmp_path)
    assert (folder / source.name).read_bytes() == (tmp_path / "dana.ipynb").read_bytes()
    assert folder == step_dir(config, "submitted", ROBUSTNESS_LAB, "dana")
