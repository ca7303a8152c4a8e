"""The nbgrader course: its configuration, its folders and a ready-to-use ``NbGraderAPI``.

``autograder/nbgrader_config.py`` is the one place the course is configured; this module loads it
explicitly (so the scripts work from any folder) and prepares the process environment nbgrader needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CONFIG_FILE = PACKAGE_DIR / "nbgrader_config.py"
SOURCE_DIR = REPO_ROOT / "notebooks"

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI


def prepare_environment() -> None:
    """Make nbgrader's subprocesses use this virtualenv.

    nbgrader runs ``alembic`` (gradebook migrations) from ``PATH`` and starts the kernel named
    ``python3``; putting the virtualenv's ``bin`` first on ``PATH`` and its Jupyter data folder first
    on ``JUPYTER_PATH`` makes both resolve to this environment, even from a plain shell.
    """
    bin_dir = str(Path(sys.executable).parent)  # not resolved: a venv's python is a symlink
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in path if p != bin_dir]])
    jupyter_data = str(Path(sys.prefix) / "share" / "jupyter")
    jupyter_path = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if jupyter_path[:1] != [jupyter_data]:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([jupyter_data, *jupyter_path])


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    """Temporarily set (or leave alone, for ``None``) environment variables."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is not None:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_config(course_dir: Path | str | None = None, timeout: int | None = None) -> Config:
    """Load ``autograder/nbgrader_config.py`` into a traitlets ``Config``.

    Args:
        course_dir: folder for nbgrader's generated steps and gradebook (default
            ``WORKBOOK_COURSE`` or ``.state/course``); tests use a scratch folder.
        timeout: seconds a cell may run while grading (default ``WORKBOOK_CELL_TIMEOUT`` or 120).

    Returns:
        The configuration to pass to :func:`open_api`.
    """
    course = str(Path(course_dir).resolve()) if course_dir is not None else None
    with _env(WORKBOOK_COURSE=course):
        config = PyFileConfigLoader(CONFIG_FILE.name, path=str(PACKAGE_DIR)).load_config()
    if timeout is not None:
        config.Execute.timeout = int(timeout)
    return config


def course_dir(config: Config) -> Path:
    """Return the folder holding the gradebook and the generated steps of ``config``."""
    return Path(config.CourseDirectory.db_url.removeprefix("sqlite:///")).parent


def step_dir(config: Config, step: str, assignment_id: str, student_id: str = ".") -> Path:
    """Return the folder of one nbgrader step, e.g. ``step_dir(c, "release", "lab00")``.

    Args:
        config: the course configuration.
        step: ``source``, ``release``, ``submitted``, ``autograded`` or ``feedback``.
        assignment_id: the assignment, e.g. ``lab00``.
        student_id: the student (``"."`` for the instructor steps).

    Returns:
        The absolute folder (which may not exist yet).
    """
    folder = Path(getattr(config.CourseDirectory, f"{step}_directory"))
    return (REPO_ROOT / folder / student_id / assignment_id).resolve()


def source_assignments() -> list[str]:
    """Return the assignment ids: folders of ``notebooks/`` holding at least one notebook."""
    if not SOURCE_DIR.is_dir():
        return []
    return sorted(p.name for p in SOURCE_DIR.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def open_api(config: Config) -> NbGraderAPI:
    """Return an ``NbGraderAPI`` for the course, with the environment prepared.

    Args:
        config: from :func:`load_config`.

    Returns:
        The API object; each of its calls returns ``{"success": bool, "log": str, "error": str}``.
    """
    prepare_environment()
    from nbgrader.apps import NbGraderAPI  # imported here: importing nbgrader takes seconds
    from nbgrader.coursedir import CourseDirectory

    course_dir(config).mkdir(parents=True, exist_ok=True)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
