"""Parallel grading (``python -m autograder.grade SUBMISSIONS --jobs N``): N workers, one writer.

nbgrader grades one submission at a time against one SQLite gradebook. Here each of the N worker
slots has a scratch course of its own, ``<course>/.parallel/worker-<i>/course/`` (a copy of the
gradebook, its own ``submitted/``, ``autograded/`` and ``feedback/`` folders), plus its own Airflow
home and alert database, so the kernels of two submissions share no SQLite file and no folder. A
submission is graded by a fresh worker process (``python -m autograder.parallel SPEC``) in a free
slot, with the serial grader's code (:func:`autograder.grade.grade_one`). The slots themselves (scratch course,
environment, ports, sandbox) are :mod:`autograder.slots`.

When a worker has finished, this process (the only writer of the instructor's course) merges it:
the submission's ``submitted/``, ``autograded/`` and ``feedback/`` folders are copied into the
course, and the scores nbgrader's ``SaveAutoGrades`` wrote into the worker's gradebook (auto score,
auto comment, late penalty) are written into the course's gradebook with nbgrader's ``Gradebook``
API, keeping manual scores already there, as ``nbgrader autograde`` does. The rows keep the serial
order (student, assignment, notebook).

Every wait is bounded: a worker gets the sum of its notebooks' cell time limits (nbgrader's own
bounds) plus start-up and feedback time; past that, or if it dies, it and every process it started
(the kernel, Spark's JVM) are killed and the submission gets an ``error`` row. The others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python autograder/parallel.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from traitlets.config import Config

from autograder.course import (
    REPO_ROOT,
    SOURCE_DIR,
    load_config,
    open_api,
    source_assignments,
    step_dir,
)
from autograder.grade import Submission, echo_rows, error_row, grade_one
from autograder.slots import Slot, make_slots, mirror_data, prepare_sandbox, reset_state, worker_env

STEPS = ("submitted", "autograded", "feedback")
POLL_S = 0.5
SLACK_S = 300
"""Seconds a worker gets beyond its cells' limits: importing nbgrader, sanitising, feedback HTML."""


@dataclass
class Running:
    """A worker process grading ``submission`` (``index`` in the run) in ``slot``."""

    index: int
    submission: Submission
    slot: Slot
    process: subprocess.Popen
    result: Path
    deadline: float
    started: float = field(default_factory=time.monotonic)
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    peak_rss: int = 0


def shared_kafka(assignments: set[str]) -> str:
    """The broker the workers share: started here once if a lab starts it (workers then find it running)."""
    from helpers.platform.config import kafka_bootstrap_servers

    sources = [p.read_text() for a in assignments for p in (SOURCE_DIR / a).glob("*.ipynb")]
    if any("start_broker" in text for text in sources):
        from helpers.platform.kafka_broker import start_broker

        return start_broker()
    return kafka_bootstrap_servers()


def time_bound(config: Config, assignment: str) -> float:
    """Seconds a submission of ``assignment`` may take at most: every code cell at its time limit."""
    import nbformat

    from autograder.preprocessors import CourseExecute

    execute = CourseExecute(config=config)
    notebooks = sorted((SOURCE_DIR / assignment).glob("*.ipynb"))
    cells = [c for nb in notebooks for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
    return sum(execute.cell_timeout(c) or 0 for c in cells) + execute.startup_timeout * len(notebooks) + SLACK_S


def start(index: int, submission: Submission, root: Path, slot: Slot, bound: float, kafka: str,
          sandbox: Path | None = None) -> Running:
    """Start a worker process grading ``submission`` in ``slot``; its output goes to ``slot/log-<index>.txt``."""
    if sandbox is not None:
        from helpers.platform.config import data_dir

        reset_state(slot)
        mirror_data(data_dir(), slot.folder / "state" / "data")
    spec = {"sandbox": sandbox is not None, "course": str(slot.course), "root": str(root), "student": submission.student,
            "assignment": submission.assignment, "files": [str(p) for p in submission.files],
            "flat_notebook": submission.flat_notebook, "timeout": slot.config.Execute.timeout,
            "setup_timeout": slot.config.CourseExecute.setup_timeout,
            "result": str(slot.folder / f"result-{index}.json")}
    spec_path = slot.folder / f"spec-{index}.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    Path(spec["result"]).unlink(missing_ok=True)
    with open(slot.folder / f"log-{index}.txt", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "autograder.parallel", str(spec_path)], cwd=REPO_ROOT,
                                   env=worker_env(slot, kafka, sandbox), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Running(index, submission, slot, process, Path(spec["result"]), time.monotonic() + bound)


def sample(job: Running) -> None:
    """Remember the worker's process tree (kernels run in their own session) and its peak memory."""
    try:
        parent = psutil.Process(job.process.pid)
        tree = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return
    rss = 0
    for proc in tree:
        job.seen.setdefault(proc.pid, proc)
        try:
            rss += proc.memory_info().rss
        except psutil.Error:
            pass
    job.peak_rss = max(job.peak_rss, rss)


def stop_tree(job: Running) -> None:
    """Kill the worker and every process it was seen to start (a kernel outlives its parent)."""
    sample(job)
    for proc in job.seen.values():
        try:
            proc.kill()  # psutil checks the pid still names the same process
        except psutil.Error:
            pass
    try:
        job.process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # SIGKILL did not take (a process stuck in the kernel): leave it
        print(f"warning: grading worker {job.process.pid} survived SIGKILL", file=sys.stderr)


def log_tail(job: Running, lines: int = 1) -> str:
    """The last line(s) a worker printed (nbgrader's log and any traceback)."""
    path = job.slot.folder / f"log-{job.index}.txt"
    text = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    return " | ".join(line.strip() for line in text[-lines:]) or "no output"


def import_grades(slot: Slot, config: Config, assignment: str, student: str) -> None:
    """Write the worker's autograde results for one submission into the course's gradebook.

    nbgrader's ``SaveAutoGrades`` wrote them into the worker's gradebook; this copies the same fields
    (``auto_score``, ``auto_comment``, the late penalty and the submission time) and sets
    ``needs_manual_grade`` by ``SaveAutoGrades``' own rule against the course's gradebook, so a
    manual score already given there is kept and flagged for review, as a serial autograde does.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(slot.config.CourseDirectory.db_url) as gb:
        try:
            done = gb.find_submission(assignment, student)
        except MissingEntry:
            return
        timestamp = done.timestamp
        notebooks = {nb.name: (nb.late_submission_penalty, {g.name: g.auto_score for g in nb.grades},
                               {c.name: c.auto_comment for c in nb.comments}) for nb in done.notebooks}
    with Gradebook(config.CourseDirectory.db_url) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        for name, (penalty, scores, comments) in notebooks.items():
            gb.find_submission_notebook(name, assignment, student).late_submission_penalty = penalty
            for cell, score in scores.items():
                grade = gb.find_grade(cell, name, assignment, student)
                grade.auto_score = score
                grade.needs_manual_grade = grade.manual_score is not None or score is None
            for cell, text in comments.items():
                gb.find_comment(cell, name, assignment, student).auto_comment = text
        gb.db.commit()


def merge(job: Running, config: Config, rows: list[dict]) -> list[dict]:
    """Copy a finished worker's folders and scores into the course; return its rows with the course's paths."""
    student, assignment = job.submission.student, job.submission.assignment
    for step in STEPS:
        source, target = step_dir(job.slot.config, step, assignment, student), step_dir(config, step, assignment, student)
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
    import_grades(job.slot, config, assignment, student)
    feedback = step_dir(job.slot.config, "feedback", assignment, student)
    for row in rows:
        if row["feedback_html"]:
            row["feedback_html"] = str(step_dir(config, "feedback", assignment, student)
                                       / Path(row["feedback_html"]).relative_to(feedback))
    return rows


def finish(job: Running, config: Config, timed_out: bool) -> list[dict]:
    """The rows of a worker that exited (or was stopped): merged results, or one ``error`` row."""
    student, assignment = job.submission.student, job.submission.assignment
    seconds = round(time.monotonic() - job.started, 1)
    if timed_out:
        rows = [error_row(student, assignment, f"grading did not finish within {seconds:.0f} s (the notebook's "
                                               "cell time limits added up): stopped")]
    elif job.result.is_file():
        return merge(job, config, json.loads(job.result.read_text()))
    else:
        code = job.process.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        rows = [error_row(student, assignment, f"the grading worker died ({how}); its last words: {log_tail(job)}")]
    rows[0]["seconds"] = seconds
    return rows


def grade_parallel(config: Config, submissions: list[Submission], root: Path, jobs: int, echo: bool = True) -> list[dict]:
    """Grade ``submissions`` with up to ``jobs`` workers; return the rows in the serial order.

    Args:
        config: the instructor's course (its gradebook knows the assignments already).
        submissions: from :func:`autograder.grade.find_submissions`.
        root: the submissions folder.
        jobs: the number of workers (scratch courses).
        echo: print each submission's rows, and the peak memory of its worker, as it finishes.
    """
    known = set(source_assignments())
    results: dict[int, list[dict]] = {}
    queue = []
    for index, submission in enumerate(submissions):
        if submission.assignment in known:
            queue.append((index, submission))
        else:
            results[index] = grade_one(None, config, submission, root, known)  # an error row, no worker
    bounds = {a: time_bound(config, a) for a in {s.assignment for _, s in queue}}
    kafka = shared_kafka(set(bounds)) if queue else ""
    sandbox = prepare_sandbox(config, set(bounds), echo) if queue else None
    free = make_slots(config, min(jobs, len(queue))) if queue else []
    running: list[Running] = []
    with _stopping(running):
        while queue or running:
            while queue and free:
                index, submission = queue.pop(0)
                running.append(start(index, submission, root, free.pop(0), bounds[submission.assignment], kafka, sandbox))
            time.sleep(POLL_S)
            for job in list(running):
                sample(job)
                timed_out = job.process.poll() is None and time.monotonic() > job.deadline
                if job.process.poll() is None and not timed_out:
                    continue
                stop_tree(job)  # past its time, or a kernel left behind by a worker that died
                running.remove(job)
                results[job.index] = finish(job, config, timed_out)
                free.append(job.slot)
                if echo:
                    echo_rows(results[job.index], f", worker peak memory {job.peak_rss / 2**20:,.0f} MiB")
    return [row for index in sorted(results) for row in results[index]]


@contextmanager
def _stopping(running: list[Running]) -> Iterator[None]:
    """On the way out (Ctrl-C, an error here), stop every worker still running."""
    try:
        yield
    finally:
        for job in running:
            stop_tree(job)


def work(spec_path: Path) -> None:
    """A worker: grade the one submission ``spec_path`` describes in its scratch course, write its rows."""
    spec = json.loads(spec_path.read_text())
    config = load_config(course_dir=spec["course"], timeout=spec["timeout"])
    config.CourseExecute.setup_timeout = spec["setup_timeout"]
    if spec.get("sandbox"):
        from autograder.sandbox import KERNEL_NAME

        config.Execute.kernel_name = KERNEL_NAME
    submission = Submission(spec["student"], spec["assignment"], tuple(Path(p) for p in spec["files"]),
                            spec["flat_notebook"])
    rows = grade_one(open_api(config), config, submission, Path(spec["root"]), set(source_assignments()))
    result = Path(spec["result"])
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, result)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m autograder.parallel SPEC.json (started by python -m autograder.grade --jobs N)")
    work(Path(sys.argv[1]))
