"""Manual grading: ``python -m autograder.formgrader [--port 8890]`` (``make formgrader``).

Serves JupyterLab with nbgrader's formgrader on the course (the configuration of
``autograder/nbgrader_config.py``: ``.state/course``, or ``WORKBOOK_COURSE``), token required, on
127.0.0.1 only, and prints the formgrader's URL with its token. The server's root is the repository
(nbgrader needs the course root, where ``notebooks/`` is, inside it), so this is an instructor's tool:
never give its URL to a learner. Grade submissions first (``make grade``), then open
"Manual Grading", pick a lab, a notebook and a submission, and type each manually graded answer's
score (saved as you leave the field). ``python -m autograder.grades`` (``make grades``) then writes
the manual scores into ``grades.csv``. Ctrl-C stops the server.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python autograder/formgrader.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.course import PACKAGE_DIR, REPO_ROOT, course_dir, load_config, prepare_environment
from helpers.platform.config import state_dir
from helpers.platform.jupyter import NEWS_PLUGIN, banner, lab_command, lab_environment, write_lab_config

DEFAULT_PORT = 8890
SERVER_EXTENSIONS = {"formgrader": True, "validate_assignment": True, "course_list": False, "assignment_list": False}
"""nbgrader's server extensions: formgrader on; the exchange-based lists (unused here: no JupyterHub) off."""


def formgrader_url(port: int, token: str) -> str:
    """Return the URL of the formgrader's first page, token included."""
    return f"http://127.0.0.1:{port}/formgrader?token={token}"


def formgrader_command(port: int, token: str) -> tuple[list[str], dict[str, str], Path]:
    """Return ``(command, environment, working folder)`` that serve the formgrader on ``127.0.0.1:port``.

    The working folder is ``autograder/``: the formgrader reads ``nbgrader_config.py`` from there.
    JupyterLab's news pop-up is off (its plugin is disabled in ``<state>/jupyter/instructor``).
    """
    prepare_environment()  # nbgrader's alembic and the python3 kernel from this virtualenv
    config = write_lab_config(state_dir() / "jupyter" / "instructor", [NEWS_PLUGIN])
    return lab_command(port, token, REPO_ROOT, SERVER_EXTENSIONS), lab_environment(config), PACKAGE_DIR


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: replaces this process with the server (returns only on an error)."""
    parser = argparse.ArgumentParser(prog="python -m autograder.formgrader", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FORMGRADER_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    from helpers.platform.ports import port_owner

    owner = port_owner(args.port)
    if owner:
        print(f"Port {args.port} is taken by {owner}: run `make formgrader FORMGRADER_PORT=8891`.", file=sys.stderr)
        return 1
    course = course_dir(load_config())
    if not (course / "gradebook.db").exists():
        print(f"No gradebook in {course}: grade the submissions first (`make grade SUBMISSIONS=folder`).",
              file=sys.stderr)
        return 1
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    command, env, cwd = formgrader_command(args.port, token)
    print(banner(f"Formgrader: {formgrader_url(args.port, token)}",
                 f"Course: {course}",
                 "Manual Grading -> lab -> notebook -> submission; then `make grades` updates grades.csv.",
                 "Instructors only: this server shows the source notebooks. Ctrl-C to quit."), flush=True)
    os.chdir(cwd)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    sys.exit(main())
