"""Make the learner versions of the labs: ``python -m autograder.release [--assignment lab00] [--force]``.

For each assignment folder of ``notebooks/`` this runs nbgrader's ``generate_assignment`` (solutions
replaced by ``raise NotImplementedError()`` stubs, hidden tests removed, outputs cleared, setup and
test cells locked) into ``.state/course/release/<assignment>/``, together with the assignment's other
files (``dags/`` ...). That folder is what learners open (``make lab``), so running this again is
safe: a released notebook the learner has edited is kept as it is (``--force`` replaces it, after
copying it to ``.state/course/backups/``); every other file is regenerated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python autograder/release.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from traitlets.config import Config

from autograder.course import course_dir, load_config, open_api, source_assignments, step_dir


class ReleaseError(RuntimeError):
    """nbgrader could not generate an assignment (its log is in the message)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edited_notebooks(folder: Path, manifest: dict[str, str], assignment_id: str) -> dict[str, bytes]:
    """Return ``{name: content}`` of released notebooks that differ from what release wrote last."""
    edited = {}
    for notebook in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        if manifest.get(f"{assignment_id}/{notebook.name}") != _digest(notebook):
            edited[notebook.name] = notebook.read_bytes()
    return edited


def release(assignments: Iterable[str] | None = None, config: Config | None = None,
            force: bool = False, echo: bool = False) -> dict[str, Path]:
    """Generate the learner version of each assignment.

    Args:
        assignments: assignment ids (default: every folder of ``notebooks/`` with a notebook).
        config: course configuration (default: :func:`autograder.course.load_config`).
        force: replace released notebooks the learner edited (backed up first).
        echo: print what happened to edited notebooks.

    Returns:
        ``{assignment_id: release folder}``.

    Raises:
        ReleaseError: unknown assignment, or nbgrader reported a failure (e.g. bad cell metadata).
    """
    config = config if config is not None else load_config()
    known = source_assignments()
    wanted = list(assignments) if assignments else known
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise ReleaseError(f"no notebooks/<assignment>/*.ipynb for {unknown}; found {known}")
    api = open_api(config)
    manifest_path = course_dir(config) / "release-manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    released: dict[str, Path] = {}
    for assignment_id in wanted:
        folder = step_dir(config, "release", assignment_id)
        edited = _edited_notebooks(folder, manifest, assignment_id)
        result = api.generate_assignment(assignment_id, force=True, create=True)
        if not result["success"]:
            raise ReleaseError(f"{assignment_id}: {result.get('log', '')}\n{result.get('error', '')}")
        for notebook in folder.glob("*.ipynb"):
            manifest[f"{assignment_id}/{notebook.name}"] = _digest(notebook)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for name, content in edited.items():
            if force:
                backup = course_dir(config) / "backups" / stamp / assignment_id / name
                backup.parent.mkdir(parents=True, exist_ok=True)
                backup.write_bytes(content)
                message = f"replaced your edited {name}; your copy is in {backup}"
            else:
                (folder / name).write_bytes(content)
                message = f"kept your edited {name} (use --force to replace it with a fresh copy)"
            if echo:
                print(f"{assignment_id}: {message}")
        released[assignment_id] = folder
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return released


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m autograder.release", description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    parser.add_argument("--force", action="store_true", help="replace notebooks the learner edited (backed up)")
    args = parser.parse_args(argv)
    try:
        released = release(args.assignment, force=args.force, echo=True)
    except ReleaseError as error:
        print(f"release failed: {error}", file=sys.stderr)
        return 1
    for assignment_id, folder in released.items():
        notebooks = ", ".join(sorted(p.name for p in folder.glob("*.ipynb")))
        print(f"{assignment_id}: {folder} ({notebooks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
