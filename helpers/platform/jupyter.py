"""``make lab``'s last step: JupyterLab on the student notebooks, token auth on, 127.0.0.1 only.

``python -m helpers.platform.jupyter [--port 8888]`` prints the URL (with its token) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from helpers.platform.config import course_dir

INSTRUCTOR_EXTENSIONS = ("formgrader", "course_list", "assignment_list")


def release_dir() -> Path:
    """Return the folder of released (student) notebooks that learners work in."""
    return course_dir() / "release"


def lab_command(port: int, token: str, root: Path) -> list[str]:
    """Return the command that serves JupyterLab on ``127.0.0.1:port`` with ``token`` over ``root``."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}"]
    for extension in INSTRUCTOR_EXTENSIONS:  # learners need none of them; they only log errors here
        command += ["--ServerApp.jpserver_extensions", f"nbgrader.server_extensions.{extension}=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        command.append("--allow-root")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", 8888)))
    parser.add_argument("--root", type=Path, default=None,
                        help="the folder of notebooks to serve (default: the released notebooks, "
                             "<course>/release; the learners' copy serves its notebooks/)")
    args = parser.parse_args(argv)
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
    banner = "=" * 78
    print(f"{banner}\n  JupyterLab: {url}\n  Start with lab00/00_environment_check.ipynb. "
          f"Ctrl-C to quit, then `make stop`.\n{banner}", flush=True)
    os.execv(sys.executable, lab_command(args.port, token, root))


if __name__ == "__main__":
    raise SystemExit(main())
