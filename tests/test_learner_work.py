"""No make target deletes or overwrites a learner's work.

In a scratch copy of the workbook (its own state folder, its own broker port), a learner edits a released
notebook; then every make target that could touch it runs: `clean`, `release`, `services`, `stop`,
`status`, `doctor`, `data`, `fixtures`, `grade`, `student-copy`, `install`, `help`. The edit is still
there, and so is the gradebook. (`test` and `check` are this suite, `bench` takes 15 minutes and writes
only benchmark files, `lab` and `airflow-ui` are servers: `lab` is exercised by test_student_copy.py.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.platform.config import REPO_ROOT

TARGETS = ["clean", "release", "services", "status", "doctor", "stop", "data", "fixtures", "grade", "student-copy",
           "install", "help", "clean", "release"]
MUST_SUCCEED = {"clean", "release", "services", "stop", "status", "data", "fixtures", "student-copy", "install", "help"}


def scratch_workbook(tmp: Path) -> Path:
    """A copy of the workbook's files (as git sees them) sharing this environment's .venv."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    repo = tmp / "workbook"
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file() and not source.is_symlink():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes(source.read_bytes())
    (repo / ".venv").symlink_to(REPO_ROOT / ".venv")
    return repo


@pytest.mark.slow
def test_every_make_target_keeps_an_edited_released_notebook(tmp_path: Path):
    from helpers.platform.ports import free_port, port_in_use

    repo = scratch_workbook(tmp_path)
    port = next(p for p in (free_port() for _ in range(50)) if not port_in_use(p + 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBOOK_", "AIRFLOW", "KAFKA_BOOTSTRAP"))}
    env.update(WORKBOOK_KAFKA_PORT=str(port), PYTHONPATH=str(repo))

    def make(target: str) -> subprocess.CompletedProcess:
        extra = {"grade": [f"SUBMISSIONS={tmp_path / 'no-submissions'}"],
                 "student-copy": [f"DEST={tmp_path / 'learners-copy'}"]}.get(target, [])
        # -o: the shared environment counts as installed (no pip run that would repoint its editable install)
        return subprocess.run(["make", "-o", ".venv/.installed", target, *extra], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=900)

    (tmp_path / "no-submissions").mkdir()
    done = make("release")
    assert done.returncode == 0, done.stdout + done.stderr
    notebook = repo / ".state" / "course" / "release" / "lab00" / "00_environment_check.ipynb"
    edited = notebook.read_bytes().replace(b"raise NotImplementedError()", b"return 'my work'", 1)
    notebook.write_bytes(edited)
    gradebook = repo / ".state" / "course" / "gradebook.db"
    assert gradebook.is_file(), "release records the assignments in the gradebook"
    failures = []
    try:
        for target in TARGETS:
            done = make(target)
            if target in MUST_SUCCEED and done.returncode != 0:
                failures.append(f"make {target}: exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
            assert notebook.is_file() and notebook.read_bytes() == edited, (
                f"`make {target}` deleted or replaced the learner's edited notebook {notebook}; expected it kept")
            assert gradebook.is_file(), f"`make {target}` deleted the gradebook"
    finally:
        make("stop")
    assert not failures, "\n\n".join(failures)
