"""Grading throughput: the same 4 Lab 00 submissions graded with ``--jobs 1`` and ``--jobs 2``.

Two full solutions and two blank releases, graded by ``python -m autograder.grade`` (the real command,
against the live broker) in two fresh copies of a scratch course under ``<state>/bench-grading``.
Airflow's metadata databases (the default one and the parallel workers' own) are migrated before
the clock starts: that happens once per machine, not per grading run. Prints submissions per minute
for each and the speed-up (the goal is 1.6x on 2 cores; measured, never asserted).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LAB = "lab00"
JOBS = (1, 2)
REPO_ROOT = Path(__file__).resolve().parent.parent


def _python(args: list[str], course: Path, env: dict[str, str] | None = None, timeout: float = 3600) -> str:
    """Run ``python <args>`` from the workbook root with ``WORKBOOK_COURSE=course``; return stdout."""
    env = {**(env or os.environ), "WORKBOOK_COURSE": str(course)}
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"`python {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                           f"\n{proc.stderr[-3000:]}")
    return proc.stdout


def _submissions(course: Path, folder: Path) -> int:
    """Write alice and carol (the source's solutions) and bob and dave (the blank release)."""
    import nbformat

    source_path = next((REPO_ROOT / "notebooks" / LAB).glob("*.ipynb"))
    source = nbformat.read(source_path, as_version=4)
    released = nbformat.read(course / "release" / LAB / source_path.name, as_version=4)
    solutions = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    solved = copy.deepcopy(released)
    for cell in solved.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = solutions[cell.metadata.nbgrader["grade_id"]]
    students = {"alice": solved, "bob": released, "carol": solved, "dave": released}
    for student, nb in students.items():
        (folder / student / LAB).mkdir(parents=True)
        nbformat.write(nb, folder / student / LAB / source_path.name)
    return len(students)


def _warm_airflow(course: Path, jobs: int, kafka: str) -> None:
    """Migrate the Airflow databases the graders' kernels will use (the default one, each worker's)."""
    from autograder.course import load_config
    from autograder.slots import make_slots, worker_env

    setup = ["-c", "from helpers.airflow.setup import setup_airflow; setup_airflow()"]
    _python(setup, course)
    for slot in make_slots(load_config(course_dir=course), jobs):  # --jobs 1 grades in a worker slot too
        _python(setup, course, worker_env(slot, kafka))


def run(record: Callable[[str, float, str], None], rows: int) -> None:
    """Record submissions/minute for ``--jobs 1`` and ``--jobs 2``, the speed-up and the workers' memory."""
    from helpers.platform.config import state_dir
    from helpers.platform.kafka_broker import start_broker

    kafka = start_broker()
    base = state_dir() / "bench-grading"
    shutil.rmtree(base, ignore_errors=True)
    released = base / "released"
    _python(["-m", "autograder.release", "--assignment", LAB], released)
    folder = base / "submissions"
    count = _submissions(released, folder)
    per_minute = {}
    for jobs in JOBS:
        course = base / f"course-jobs{jobs}"
        shutil.copytree(released, course)
        _warm_airflow(course, jobs, kafka)
        started = time.perf_counter()
        out = _python(["-m", "autograder.grade", str(folder), "--out", str(base / f"grades-jobs{jobs}"), "--jobs", str(jobs)],
                      course)
        elapsed = time.perf_counter() - started
        statuses = re.findall(r"^\w+/lab00/\S+: [\d.]+/[\d.]+ (\w+)", out, flags=re.M)
        if statuses != ["graded"] * count:
            raise RuntimeError(f"expected {count} graded submissions with --jobs {jobs}, the grader said:\n{out}")
        per_minute[jobs] = count * 60 / elapsed
        record(f"grading: {count} {LAB} submissions, --jobs {jobs} ({elapsed:.0f} s)", per_minute[jobs], "subm/min")
        peaks = [int(m.replace(",", "")) for m in re.findall(r"worker peak memory ([\d,]+) MiB", out)]
        if peaks:
            record(f"grading: peak memory of one {LAB} worker and its kernel", max(peaks), "MiB")
    record(f"grading: speed-up of --jobs 2 over --jobs 1 on {os.cpu_count()} cores (goal 1.6)",
           per_minute[2] / per_minute[1], "x")
