"""Binder: the conda files agree with the lock, and the image holds student notebooks only.

binder/postBuild and binder/start are run for real on a scratch copy of the repository, with a
stand-in ``python`` that records (instead of running) the slow steps: ``pip install``, the Maven
jar downloads and the broker start. The release itself is real nbgrader.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers.platform.config import REPO_ROOT
from helpers.platform.jvm import MIN_JAVA

BINDER = REPO_ROOT / "binder"
SCRIPTS = ("postBuild", "start")
STUBBED = ("pip", "helpers.platform.kafka_broker", "helpers.platform.services")  # `python -m <these>` are only recorded


def _conda_env(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Return ``(channels, conda dependencies, pip lines)`` of a conda environment file."""
    env = yaml.safe_load(path.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [line for d in env["dependencies"] if isinstance(d, dict) for line in d.get("pip", [])]
    return env.get("channels", []), conda, pip


def _commands(script: Path) -> list[str]:
    """Return the script's lines that are neither blank nor comments."""
    return [l.strip() for l in script.read_text().splitlines() if l.strip() and not l.strip().startswith("#")]


@pytest.mark.parametrize("name", SCRIPTS)
def test_binder_scripts_are_strict_executable_bash(name):
    """Check that repo2docker can run the script and that any failing step stops it."""
    script = BINDER / name
    assert os.access(script, os.X_OK), f"binder/{name} must be executable (chmod +x)"
    assert script.read_text().splitlines()[0] in ("#!/usr/bin/env bash", "#!/bin/bash")
    assert _commands(script)[0] == "set -euo pipefail", "the first command must be `set -euo pipefail`"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_start_hands_over_to_the_notebook_server():
    """Check that binder/start ends by exec'ing its arguments, as repo2docker requires."""
    assert _commands(BINDER / "start")[-1] == 'exec "$@"'


def test_environment_files_agree_with_each_other_and_the_lock(lock):
    """Check that Binder and local conda installs get the same conda packages and the lock's pins."""
    root_channels, root_conda, root_pip = _conda_env(REPO_ROOT / "environment.yml")
    binder_channels, binder_conda, binder_pip = _conda_env(BINDER / "environment.yml")
    assert root_channels == binder_channels == ["conda-forge"]
    assert root_conda == binder_conda, "binder/environment.yml must list the root file's conda packages"
    header = (REPO_ROOT / "requirements.txt").read_text().splitlines()[0]
    python = next(d.split("=", 1)[1] for d in root_conda if d.startswith("python="))
    assert f"Python {python}" in header, f"python={python}, but the lock says {header!r}"
    java = next(d.split("=", 1)[1] for d in root_conda if d.startswith("openjdk="))
    assert int(java) >= MIN_JAVA, f"helpers.platform.jvm needs Java {MIN_JAVA}+"
    assert "maven" in root_conda, "the embedded broker's jars are fetched with Maven"
    assert root_pip == ["-r requirements.txt", "-e ."], (
        f"local conda installs take the Python packages from the lock, then the workbook's package; got {root_pip}")
    pins = lock
    for line in root_pip + binder_pip:
        if "==" in line:
            name, version = line.split("==", 1)
            key = re.sub(r"[-_.]+", "-", name.strip()).lower()
            assert pins.get(key) == version.strip(), f"{line!r} differs from requirements.txt"
    assert "python -m pip install --no-cache-dir -r requirements.txt" in _commands(BINDER / "postBuild")
    assert "python -m pip install --no-cache-dir --no-deps -e ." in _commands(BINDER / "postBuild")


def _stub_python(tmp: Path) -> tuple[dict[str, str], Path]:
    """Return an environment whose ``python`` records the slow steps and runs everything else."""
    bin_dir, home, log = tmp / "bin", tmp / "home", tmp / "stub.log"
    bin_dir.mkdir()
    home.mkdir()
    patterns = "|".join(STUBBED)
    (bin_dir / "python").write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ "${{1:-}}" == "-m" && "${{2:-}}" =~ ^({patterns})$ ]]; then\n'
        f'    echo "$*" >> "{log}"; exit 0\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    (bin_dir / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WORKBOOK_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "AIRFLOW_HOME")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return env, log


def _lab_notebook() -> nbformat.NotebookNode:
    """Return a minimal nbgrader source notebook with one solution and one hidden test."""
    def meta(**nbgrader):
        return {"nbgrader": {"schema_version": 3, "locked": False, "solution": False, "grade": False,
                             "task": False, **nbgrader}}

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Task 1.1 — The answer (1 point)"),
        nbformat.v4.new_code_cell(
            'def answer():\n    """Return the answer."""\n    ### BEGIN SOLUTION\n'
            "    return 42  # SECRET-SOLUTION\n    ### END SOLUTION",
            metadata=meta(grade_id="task_1_1", solution=True)),
        nbformat.v4.new_code_cell(
            '"""Check the answer"""\nassert answer() == 42\n### BEGIN HIDDEN TESTS\n'
            "assert answer() != 41  # SECRET-HIDDEN-TEST\n### END HIDDEN TESTS",
            metadata=meta(grade_id="task_1_1_tests", grade=True, locked=True, points=1)),
    ]
    return nb


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A copy of what postBuild needs, one source lab, and the instructor-only folders."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for folder in ("helpers", "autograder", "binder", "data/fixtures"):
        shutil.copytree(REPO_ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "pyproject.toml", "environment.yml", "data/README.md", "setup.mk"):
        shutil.copy2(REPO_ROOT / name, repo / name)
    lab = repo / "notebooks" / "labx"
    (lab / "dags").mkdir(parents=True)
    nbformat.write(_lab_notebook(), lab / "labx.ipynb")
    (lab / "dags" / "etl.py").write_text('"""A DAG file shipped with the lab."""\n')
    for folder in (".git", "tests", ".ci"):
        (repo / folder).mkdir()
        (repo / folder / "keep").write_text("instructor material\n")
    return repo


def _post_build(repo: Path) -> tuple[subprocess.CompletedProcess, str]:
    env, log = _stub_python(repo.parent)
    done = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    return done, log.read_text() if log.exists() else ""


def test_post_build_leaves_learners_student_notebooks_only(scratch_repo):
    """Check that the Binder image holds released notebooks and nothing that reveals the answers."""
    done, stubbed = _post_build(scratch_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-m pip install --no-cache-dir -r requirements.txt" in stubbed
    assert "-m helpers.platform.kafka_broker --fetch-jars" in stubbed
    released = scratch_repo / "notebooks" / "labx" / "labx.ipynb"
    assert released.is_file(), f"learners should find notebooks/labx/labx.ipynb:\n{done.stdout}"
    text = released.read_text()
    assert "NotImplementedError" in text, "the solution should be replaced by a stub"
    assert "SECRET-SOLUTION" not in text and "SECRET-HIDDEN-TEST" not in text
    assert "assert answer() == 42" in text, "the visible test stays for learners to run"
    assert (scratch_repo / "notebooks" / "labx" / "dags" / "etl.py").is_file(), "lab files come along"
    for gone in (".git", "tests", ".ci", "autograder", ".state/course"):
        assert not (scratch_repo / gone).exists(), f"{gone} could reveal the answers; postBuild must delete it"
    assert (scratch_repo / "helpers").is_dir() and (scratch_repo / "binder" / "start").is_file()
    assert "make lab" in (scratch_repo / "README.md").read_text(), "the learners' README replaces the instructors'"
    assert "student-copy" not in (scratch_repo / "Makefile").read_text(), "the learners' Makefile replaces the instructors'"
    leaks = [p for p in scratch_repo.rglob("*") if p.is_file() and b"SECRET-" in p.read_bytes()]
    assert not leaks, f"solutions left in the image: {leaks}"


def test_post_build_refuses_an_image_without_notebooks(scratch_repo):
    """Check that a repository with no lab fails the build rather than publishing an empty image."""
    shutil.rmtree(scratch_repo / "notebooks")
    (scratch_repo / "notebooks").mkdir()
    done, _ = _post_build(scratch_repo)
    assert done.returncode != 0
    assert "no released notebook" in done.stderr


def test_post_build_refuses_a_solution_left_in_a_lab_file(scratch_repo):
    """Check that a solution written into a file nbgrader copies verbatim fails the build."""
    dag = scratch_repo / "notebooks" / "labx" / "dags" / "etl.py"
    dag.write_text("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n")
    done, _ = _post_build(scratch_repo)
    assert done.returncode != 0
    assert "notebooks/labx/dags/etl.py: ### BEGIN SOLUTION" in done.stderr, done.stderr
    assert "would show solutions or hidden tests" in done.stderr, done.stderr


def test_start_launches_the_broker_and_runs_the_server(tmp_path):
    """Check that binder/start starts Kafka in the background and then runs the given command."""
    repo = tmp_path / "repo"
    shutil.copytree(BINDER, repo / "binder")
    env, log = _stub_python(tmp_path)
    done = subprocess.run(["bash", "binder/start", "bash", "-c", 'printf "server up %s" "$JUPYTER_CONFIG_PATH"'],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    learner = repo / ".state" / "jupyter" / "learner"
    assert done.stdout.split(":")[0] == f"server up {learner}", (
        f"expected the server to start with the learners' config first on JUPYTER_CONFIG_PATH, got {done.stdout!r}")
    disabled = json.loads((learner / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert disabled.get("@jupyter/nbgrader:menu") and disabled.get("@jupyterlab/apputils-extension:announcements"), (
        f"expected the nbgrader menu and the news pop-up disabled for Binder's learners, got {disabled}")
    for _ in range(100):  # the broker start runs in the background: wait until it was called
        if log.exists() and log.read_text():
            break
        time.sleep(0.1)
    assert log.read_text().strip() == "-m helpers.platform.services start kafka"


def test_apt_file_installs_the_monitoring_services():
    """Check binder/apt.txt names the packages Lab 05c's embedded Prometheus & co. come from, and nothing odd."""
    from helpers.platform.monitoring_services import APT_PACKAGES

    lines = [line.partition("#")[0].strip() for line in (BINDER / "apt.txt").read_text().splitlines()]
    packages = [line for line in lines if line]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", name) for name in packages), (
        f"expected one Debian package name per line (repo2docker refuses anything else), got {packages}")
    assert sorted(packages) == sorted(APT_PACKAGES.split()), (
        f"expected binder/apt.txt to list {APT_PACKAGES.split()} (monitoring_services.APT_PACKAGES), got {packages}; "
        "keep the two equal")
