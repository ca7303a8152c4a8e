"""``make lab``'s last step: JupyterLab on the student notebooks, token auth on, 127.0.0.1 only.

``python -m helpers.platform.jupyter [--port 8888]`` prints the URL (with its token) and serves until Ctrl-C.

Learners see no instructor tools: nbgrader's formgrader, course list and assignment list are off on
the server, and their JupyterLab plugins (the "Nbgrader" menu, the "Create Assignment" sidebar) are
disabled, the way ``jupyter labextension disable`` does it, in a ``labconfig/page_config.json`` of
this launch's own Jupyter config folder (``<state>/jupyter/learner``), so nothing is written to the
environment or the user's ``~/.jupyter``. Assignment validation (the notebook's "Validate" button)
stays. JupyterLab's "get notified about Jupyter news?" pop-up is off too (its announcements plugin
is disabled and nothing checks for updates). The instructor's server (``python -m autograder.formgrader``)
uses the same functions with formgrader on.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from helpers.platform.config import course_dir, state_dir

INSTRUCTOR_EXTENSIONS = ("formgrader", "course_list", "assignment_list")
"""nbgrader's server extensions learners don't get (``validate_assignment`` stays on)."""

NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"
"""JupyterLab's plugin that asks "get notified about official Jupyter news?" and checks for updates."""

INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:menu", "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:assignment-list")
"""nbgrader's JupyterLab plugins for instructors; ``@jupyter/nbgrader:validate-assignment`` stays."""

LEARNER_DISABLED_PLUGINS = (*INSTRUCTOR_PLUGINS, NEWS_PLUGIN)


def release_dir() -> Path:
    """Return the folder of released (student) notebooks that learners work in."""
    return course_dir() / "release"


def write_lab_config(folder: Path, disabled_plugins: Iterable[str]) -> Path:
    """Write a Jupyter config folder whose ``labconfig/page_config.json`` disables ``disabled_plugins``.

    Args:
        folder: the config folder (created; its page config is replaced each launch).
        disabled_plugins: JupyterLab plugin ids, e.g. ``"@jupyter/nbgrader:menu"``.

    Returns:
        ``folder``, to put first on ``JUPYTER_CONFIG_PATH`` (:func:`lab_environment`).
    """
    page_config = folder / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    page_config.write_text(json.dumps({"disabledExtensions": {p: True for p in disabled_plugins}}, indent=2) + "\n")
    return folder


def write_learner_config(folder: Path) -> Path:
    """Write the learners' Jupyter config folder, for a JupyterLab started by someone else's command.

    Besides :func:`write_lab_config`'s page config (instructor plugins and the news pop-up off), it
    holds a ``jupyter_server_config.json`` turning nbgrader's instructor server extensions off and
    the update check off: what :func:`lab_command`'s flags do for ``make lab``. docker-compose's
    notebook service and Binder's ``start`` put it first on ``JUPYTER_CONFIG_PATH``
    (``python -m helpers.platform.jupyter --write-config FOLDER`` prints the folder).

    Returns:
        ``folder``.
    """
    write_lab_config(folder, LEARNER_DISABLED_PLUGINS)
    server = {"ServerApp": {"jpserver_extensions": {f"nbgrader.server_extensions.{name}": False
                                                    for name in INSTRUCTOR_EXTENSIONS}},
              "LabApp": {"check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n")
    return folder


def lab_environment(config_folder: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``base`` (default ``os.environ``) with ``config_folder`` first on ``JUPYTER_CONFIG_PATH``."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != str(config_folder)]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(config_folder), *rest])
    return env


def lab_command(port: int, token: str, root: Path, server_extensions: Mapping[str, bool] | None = None) -> list[str]:
    """Return the command that serves JupyterLab on ``127.0.0.1:port`` with ``token`` over ``root``.

    Args:
        port: the TCP port (no fallback to another one).
        token: the token every request must carry.
        root: the folder the file browser shows.
        server_extensions: ``{name: on}`` for nbgrader's server extensions (default: the learner's,
            every :data:`INSTRUCTOR_EXTENSIONS` off).
    """
    if server_extensions is None:
        server_extensions = dict.fromkeys(INSTRUCTOR_EXTENSIONS, False)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    for extension, enabled in server_extensions.items():
        command += ["--ServerApp.jpserver_extensions", f"nbgrader.server_extensions.{extension}={enabled}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        command.append("--allow-root")
    return command


def banner(*lines: str) -> str:
    """Return ``lines`` framed by two rules, for the URL a person has to find in a busy terminal."""
    rule = "=" * 78
    return "\n".join([rule, *(f"  {line}" for line in lines), rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", 8888)))
    parser.add_argument("--root", type=Path, default=None,
                        help="the folder of notebooks to serve (default: the released notebooks, "
                             "<course>/release; the learners' copy serves its notebooks/)")
    parser.add_argument("--write-config", type=Path, metavar="FOLDER",
                        help="only write the learners' Jupyter config folder and print it (docker-compose, Binder)")
    args = parser.parse_args(argv)
    if args.write_config:
        print(write_learner_config(args.write_config.resolve()))
        return 0
    root = (args.root or release_dir()).resolve()
    if not any(root.glob("*/*.ipynb")):
        print(f"No student notebooks in {root}: run `make release` first.", file=sys.stderr)
        return 1
    from helpers.platform.ports import port_owner

    owner = port_owner(args.port)
    if owner:
        print(f"Port {args.port} is taken by {owner}: run `make lab LAB_PORT=8889`.", file=sys.stderr)
        return 1
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    url = f"http://127.0.0.1:{args.port}/lab/tree/lab00?token={token}"
    print(banner(f"JupyterLab: {url}", "Start with lab00/00_environment_check.ipynb. Ctrl-C to quit, then `make stop`."),
          flush=True)
    config = write_lab_config(state_dir() / "jupyter" / "learner", LEARNER_DISABLED_PLUGINS)
    os.execve(sys.executable, lab_command(args.port, token, root), lab_environment(config))


if __name__ == "__main__":
    raise SystemExit(main())
