"""Build the learners' copy of the workbook: ``python -m autograder.student_copy DEST [--force]``.

``make student-copy DEST=folder`` writes a folder learners can clone, zip or publish as a branch: the
``helpers`` package (services, data generator, checks), the released notebooks with their lab files
in ``notebooks/<lab>/`` (solutions replaced by stubs, hidden tests removed), ``data/`` fixtures, the
lock, a learners' README and Makefile, and ``binder/`` (Binder builds from this copy). It holds no
source notebook, hidden test, rubric, benchmark, grader or reference answer (:mod:`autograder.reference`,
``reference_*`` lab files; ``helpers/capstone`` runs them, so it stays out too), and the build refuses to
finish if a solution or hidden-test marker or a ``reference_*`` file is left anywhere in it.

Run again on the same DEST, it keeps every notebook the learner edited (``--force`` replaces them,
after copying them to ``DEST/.backups/<time>/`` and saying where).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from autograder.course import REPO_ROOT, load_config, step_dir
from autograder.release import release

TEMPLATES = Path(__file__).resolve().parent / "student"
SHIPPED = ("helpers", "data/fixtures", "data/README.md", "requirements.txt", "pyproject.toml", "environment.yml",
           "binder/environment.yml", "binder/start", "setup.mk")
"""What the copy takes from the workbook as it is (besides the released notebooks and the templates)."""
NOT_SHIPPED = ("helpers/capstone",)
"""Parts of :data:`SHIPPED` that stay out: ``make capstone`` runs the instructor's reference answers
(:mod:`autograder.reference`), which never ship (and a ``reference_*`` lab file is never released)."""
MARKERS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "### END SOLUTION", "### END HIDDEN TESTS")
MANIFEST = ".student-copy.json"


class StudentCopyError(RuntimeError):
    """The copy could not be built, or it would show a solution or a hidden test."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ignore(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).resolve() if folder else None
    held = {(REPO_ROOT / item).resolve() for item in NOT_SHIPPED}
    return {n for n in names if n in ("__pycache__", ".ipynb_checkpoints") or n.endswith((".pyc", ".egg-info"))
            or n.startswith("reference_") or (here is not None and (here / n).resolve() in held)}


def leaks(root: Path) -> list[str]:
    """Return ``"path: marker"`` for every text file under ``root`` that holds a solution or hidden-test marker."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".venv" not in p.parts and ".state" not in p.parts):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found += [f"{path.relative_to(root)}: {m}" for m in MARKERS if m in text]
    found += [f"{path.relative_to(root)}: an instructor-only reference file" for path in sorted(root.rglob("reference_*"))
              if ".venv" not in path.parts and ".state" not in path.parts]
    return found


def _released_notebooks(work: Path) -> Path:
    """Release every lab into a scratch course under ``work``; return its release folder."""
    config = load_config(course_dir=work / "course")
    release(config=config)
    return step_dir(config, "release", "_").parent


def build(dest: Path | str, force: bool = False, echo: bool = True) -> dict[str, list[str]]:
    """Write the learners' copy into ``dest``; return ``{"kept": [...], "replaced": [...]}`` notebooks.

    Raises:
        StudentCopyError: ``dest`` is inside the workbook, or the copy would leak a solution or hidden test.
    """
    dest = Path(dest).resolve()
    if dest == REPO_ROOT or REPO_ROOT in dest.parents and not dest.is_relative_to(REPO_ROOT / ".test-state"):
        raise StudentCopyError(f"{dest} is inside the workbook; choose a folder outside it, e.g. ../module05-student")
    manifest_path = dest / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    outcome: dict[str, list[str]] = {"kept": [], "replaced": []}
    with tempfile.TemporaryDirectory(prefix="student-copy-") as tmp:
        released = _released_notebooks(Path(tmp))
        if not any(released.glob("*/*.ipynb")):
            raise StudentCopyError(f"no released notebook in {released}: notebooks/<lab>/ holds no lab; "
                                   "refusing to build an empty copy")
        dest.mkdir(parents=True, exist_ok=True)
        for item in SHIPPED:
            source, target = REPO_ROOT / item, dest / item
            if source.is_dir():
                shutil.copytree(source, target, ignore=_ignore, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        for item in NOT_SHIPPED:  # a copy built before the item was held back
            shutil.rmtree(dest / item, ignore_errors=True)
        shutil.copytree(TEMPLATES, dest, dirs_exist_ok=True)
        for new in sorted(released.rglob("*")):
            if not new.is_file() or _ignore("", [new.name]):
                continue
            rel = new.relative_to(released)
            target = dest / "notebooks" / rel
            key = rel.as_posix()
            edited = target.is_file() and target.suffix == ".ipynb" and manifest.get(key) != _digest(target)
            if edited and not force:
                outcome["kept"].append(key)
                continue
            if edited:
                backup = dest / ".backups" / stamp / rel
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(target, backup)
                outcome["replaced"].append(f"{key} (your copy: {backup})")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(new, target)
            if target.suffix == ".ipynb":
                manifest[key] = _digest(target)
    found = leaks(dest)
    if found:
        raise StudentCopyError("the learners' copy would show solutions or hidden tests:\n  " + "\n  ".join(found))
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if echo:
        for key in outcome["kept"]:
            print(f"kept your edited notebooks/{key} (use --force to replace it; it is backed up first)")
        for line in outcome["replaced"]:
            print(f"replaced notebooks/{line}")
        print(f"learners' copy: {dest} ({len(manifest)} notebooks); start with `make lab` there")
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m autograder.student_copy", description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="the folder to write (outside the workbook)")
    parser.add_argument("--force", action="store_true", help="replace edited notebooks (backed up first)")
    args = parser.parse_args(argv)
    try:
        build(args.dest, force=args.force)
    except StudentCopyError as exc:
        print(f"student-copy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
