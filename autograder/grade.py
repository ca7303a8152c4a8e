"""Grade submissions: ``python -m autograder.grade SUBMISSIONS_DIR [--out DIR] [--assignment ID] [--jobs N]``.

``SUBMISSIONS_DIR`` holds one folder per student, as nbgrader lays out a submission::

    SUBMISSIONS_DIR/<student_id>/<assignment_id>/<notebook>.ipynb   (plus any other files)

or, for a single-notebook assignment named with ``--assignment``, one notebook per student::

    SUBMISSIONS_DIR/<student_id>.ipynb

Each submission is copied into ``.state/course/submitted/<student_id>/<assignment_id>/``, autograded
(every cell has ``Execute.timeout`` seconds, then it is interrupted and recorded as a
``CellTimeoutError``) and turned into HTML feedback. ``grades.csv`` in ``--out`` (default
``.state/course``) has one row per student and notebook. A broken submission (syntax error,
exception, infinite loop, deleted cells, invalid file) gets a score and a message in its row; it
never stops the run.

``--jobs N`` (default: the core count) grades N submissions at once, each in a worker process with
its own scratch copy of the course; this process alone writes the results into the course
(:mod:`autograder.parallel`). ``--jobs 1`` grades them one after another, each in a worker process
too, so a submission that kills its grader or its kernel costs its own row only. Where bubblewrap
works, every grading kernel runs in a sandbox (:mod:`autograder.sandbox`).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python autograder/grade.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat
from traitlets.config import Config

from autograder.course import (
    SOURCE_DIR,
    course_dir,
    load_config,
    source_assignments,
    step_dir,
)
from autograder.release import release

COLUMNS = ["student", "assignment", "notebook", "auto_score", "max_auto_score", "needs_manual_grading",
           "status", "message", "feedback_html", "seconds"]
"""Columns of ``grades.csv``. ``status`` is ``graded``, ``missing`` (notebook not submitted: 0) or
``error`` (nbgrader could not grade it: 0, reason in ``message``)."""


@dataclass(frozen=True)
class Submission:
    """One student's files for one assignment."""

    student: str
    assignment: str
    files: tuple[Path, ...]
    """The submitted files (for the flat layout, the one notebook)."""
    flat_notebook: str | None = None
    """For the flat layout, the assignment notebook's file name the single file stands for."""


def find_submissions(root: Path, assignment: str | None = None) -> list[Submission]:
    """List the submissions under ``root`` (nested or flat layout, see the module docstring).

    Args:
        root: the submissions folder.
        assignment: only this assignment (nested layout); required for the flat layout.

    Returns:
        The submissions, sorted by student then assignment.

    Raises:
        ValueError: for a flat layout without ``assignment``, or an assignment with several notebooks.
    """
    found: list[Submission] = []
    flat = sorted(p for p in root.glob("*.ipynb") if p.is_file())
    if flat:
        if not assignment:
            raise ValueError(f"{root} holds notebooks directly: name their assignment with --assignment")
        notebooks = sorted((SOURCE_DIR / assignment).glob("*.ipynb"))
        if len(notebooks) != 1:
            raise ValueError(f"the flat layout needs a one-notebook assignment; {assignment} has {len(notebooks)}")
        found += [Submission(p.stem, assignment, (p,), notebooks[0].name) for p in flat]
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if assignment and assignment_dir.name != assignment:
                continue
            files = tuple(sorted(p for p in assignment_dir.rglob("*") if p.is_file() and not p.is_symlink()
                                 and ".ipynb_checkpoints" not in p.parts))  # a handed-in symlink is not followed
            found.append(Submission(student_dir.name, assignment_dir.name, files))
    return sorted(found, key=lambda s: (s.student, s.assignment))


def stage(submission: Submission, config: Config, root: Path) -> Path:
    """Copy a submission into nbgrader's ``submitted`` folder (replacing an older copy).

    Returns:
        The submitted folder.
    """
    dest = step_dir(config, "submitted", submission.assignment, submission.student)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if submission.flat_notebook:
        shutil.copyfile(submission.files[0], dest / submission.flat_notebook)
    else:
        base = root / submission.student / submission.assignment
        for path in submission.files:
            target = dest / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


def _first_line(text: str, limit: int = 160) -> str:
    line = next((part for part in str(text).strip().splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _cell_errors(notebook: Path) -> list[str]:
    """Return ``"<grade id>: <Error>: <message>"`` for each failing nbgrader cell of an executed notebook.

    Cells without nbgrader metadata (the learner's own, "check your work") are listed only when no
    nbgrader cell failed: they usually repeat the error of the answer they call.
    """
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as error:  # noqa: BLE001 - a corrupt file is reported, not raised
        return [f"unreadable notebook: {_first_line(error)}"]
    graded, other = [], []
    for number, cell in enumerate(nb.cells, start=1):
        errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        if not errors:
            continue
        if any(out.get("ename") == "CellTimeoutError" for out in errors):
            text = "CellTimeoutError: still running at the time limit (an infinite loop?)"
        else:
            text = f"{errors[-1].get('ename')}: {_first_line(errors[-1].get('evalue', ''))}".rstrip(": ")
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        (graded if grade_id else other).append(f"{grade_id or f'cell {number}'}: {text}")
    return graded or other


def _error_reason(result: dict) -> str:
    """Pick the most telling line out of a failed nbgrader call's log and traceback."""
    text = f"{result.get('log', '')}\n{result.get('error', '')}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for marker in ("Error:", "error", "Exception"):
        for line in lines:
            if marker in line and not line.startswith(("Traceback", "File ")):
                return _first_line(line.removeprefix("[ERROR] "))
    return _first_line(lines[-1]) if lines else "nbgrader failed without a message"


def remove_links(folder: Path) -> list[Path]:
    """Delete what is neither a regular file nor a folder under ``folder`` (symlinks, fifos, sockets).

    The grading kernel writes in its folder; nbgrader then copies that folder's files into the
    learner's feedback, following symlinks. A kernel that cannot read the solutions (sandbox) could
    still leave ``loot -> <repo>/notebooks/lab01`` there for the grader to copy: removed here,
    between autograde and feedback. Returns what was removed.
    """
    removed = []
    for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            path.unlink()
            removed.append(path)
    return removed


def grade_submission(api, config: Config, submission: Submission) -> list[dict]:
    """Autograde one submission, write its feedback and return one ``grades.csv`` row per notebook."""
    from nbgrader.api import Gradebook, MissingEntry

    started = time.monotonic()
    student, assignment = submission.student, submission.assignment
    autograded = api.autograde(assignment, student, force=True, create=True)
    remove_links(step_dir(config, "autograded", assignment, student))
    feedback = api.generate_feedback(assignment, student, force=True) if autograded["success"] else None
    submitted_dir = step_dir(config, "submitted", assignment, student)
    rows = []
    with Gradebook(config.CourseDirectory.db_url) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            row = {"student": student, "assignment": assignment, "notebook": notebook.name,
                   "auto_score": 0.0, "max_auto_score": 0.0, "needs_manual_grading": False,
                   "status": "graded", "message": "", "feedback_html": ""}
            row["max_auto_score"] = float(sum(cell.max_score for cell in notebook.grade_cells if cell.cell_type == "code"))
            try:
                graded = gb.find_submission_notebook(notebook.name, assignment, student)
            except MissingEntry:
                graded = None
            if not (submitted_dir / f"{notebook.name}.ipynb").exists():
                row.update(status="missing", message=f"no {notebook.name}.ipynb in the submission")
            elif not autograded["success"]:
                row.update(status="error", message=_error_reason(autograded))
            elif graded is not None:
                row["auto_score"] = float(sum(grade.auto_score or 0.0 for grade in graded.grades))
                row["needs_manual_grading"] = bool(graded.needs_manual_grade)
                executed = step_dir(config, "autograded", assignment, student) / f"{notebook.name}.ipynb"
                errors = _cell_errors(executed)
                row["message"] = "; ".join(errors) if errors else "all tests passed"
                html = step_dir(config, "feedback", assignment, student) / f"{notebook.name}.html"
                if html.exists():
                    row["feedback_html"] = str(html)
                elif feedback is not None and not feedback["success"]:
                    row["message"] += f" (feedback failed: {_error_reason(feedback)})"
            rows.append(row)
    seconds = round(time.monotonic() - started, 1)
    for row in rows:
        row["seconds"] = seconds
    return rows


def error_row(student: str, assignment: str, message: str) -> dict:
    """A ``grades.csv`` row for a submission that could not be graded at all (0 points, ``status=error``)."""
    return {"student": student, "assignment": assignment, "notebook": "", "auto_score": 0.0,
            "max_auto_score": 0.0, "needs_manual_grading": False, "status": "error", "message": message,
            "feedback_html": "", "seconds": 0.0}


def grade_one(api, config: Config, submission: Submission, root: Path, known: set[str]) -> list[dict]:
    """Stage and grade one submission into ``config``'s course; never raises (an error is a row).

    Args:
        api: :func:`autograder.course.open_api` of ``config``.
        config: the course to grade in (the instructor's, or a parallel worker's scratch copy).
        submission: from :func:`find_submissions`.
        root: the submissions folder ``submission`` was found in.
        known: the assignment ids of ``notebooks/``.

    Returns:
        Its ``grades.csv`` rows, one per notebook (one ``error`` row when it could not be graded).
    """
    if submission.assignment not in known:
        return [error_row(submission.student, submission.assignment, f"unknown assignment (known: {sorted(known)})")]
    try:
        stage(submission, config, root)
        return grade_submission(api, config, submission)
    except Exception as error:  # noqa: BLE001 - one bad submission must not stop the others
        return [error_row(submission.student, submission.assignment, f"{type(error).__name__}: {_first_line(error)}")]


def echo_rows(rows: list[dict], note: str = "") -> None:
    """Print one line per row: ``student/assignment/notebook: score/max status (seconds) message``."""
    for row in rows:
        print(f"{row['student']}/{row['assignment']}/{row['notebook']}: {row['auto_score']:g}/"
              f"{row['max_auto_score']:g} {row['status']} ({row['seconds']} s{note}) {row['message']}", flush=True)


def _known_to_gradebook(config: Config, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(config.CourseDirectory.db_url) as gb:
        try:
            return bool(gb.find_assignment(assignment).notebooks)
        except MissingEntry:
            return False


def grade(submissions_dir: Path | str, out_dir: Path | str | None = None, assignment: str | None = None,
          config: Config | None = None, echo: bool = True, jobs: int = 1) -> Path:
    """Grade every submission under ``submissions_dir`` and write ``grades.csv``.

    Args:
        submissions_dir: nested or flat layout (module docstring).
        out_dir: where ``grades.csv`` goes (default: the course folder, ``.state/course``); when it is
            elsewhere, the feedback HTML files are copied to ``<out_dir>/feedback/`` too.
        assignment: grade only this assignment (required for the flat layout).
        config: course configuration (default :func:`autograder.course.load_config`).
        echo: print one line per graded notebook.
        jobs: submissions graded at once, each in a worker process with its own scratch course,
            merged into this course by this process (:mod:`autograder.parallel`).

    Returns:
        The path of ``grades.csv``.
    """
    root = Path(submissions_dir).resolve()
    config = config if config is not None else load_config()
    submissions = find_submissions(root, assignment)
    known = set(source_assignments())
    needed = sorted({s.assignment for s in submissions if s.assignment in known and not _known_to_gradebook(config, s.assignment)})
    if needed:  # autograde needs the assignment in the gradebook: that is what release records
        release(needed, config)
    out = Path(out_dir).resolve() if out_dir is not None else course_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    # a worker per submission, --jobs 1 included (imported here: parallel imports this module)
    from autograder.parallel import grade_parallel

    rows = grade_parallel(config, submissions, root, jobs, echo)
    feedback_root = course_dir(config)
    if out != feedback_root:
        for row in rows:
            if row["feedback_html"]:
                copy = out / "feedback" / row["student"] / row["assignment"] / Path(row["feedback_html"]).name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(row["feedback_html"], copy)
                row["feedback_html"] = str(copy)
    path = out / "grades.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m autograder.grade", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("submissions", type=Path, help="folder of submissions")
    parser.add_argument("--out", type=Path, help="folder for grades.csv (default: .state/course)")
    parser.add_argument("--assignment", help="grade only this assignment (required for a flat folder)")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default: WORKBOOK_CELL_TIMEOUT or 120)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="submissions graded at once, each in its own worker and scratch course "
                             "(default: the core count, %(default)s; 1 grades one after another in this process)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more, got {args.jobs}")
    try:
        path = grade(args.submissions, args.out, args.assignment, load_config(timeout=args.timeout), jobs=args.jobs)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
