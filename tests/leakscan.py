"""The leak scan: which lines of a source notebook learners must never see.

Shared by test_autograder.py (released notebooks and feedback) and test_student_copy.py (the learners'
copy). It is stricter than nbgrader's markers: a solution or hidden-test line repeated in a visible
*test* cell counts as a leak too (the learner would read the answer there); only markdown, set-up and
demo cells, and the lab's other files, may quote a line on purpose; trivial lines are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

REGIONS = {"### BEGIN SOLUTION": "### END SOLUTION", "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS"}
TRIVIAL = re.compile(r'^(pass|return ?[(\[{]?|return None|try:|finally:|else:|except [\w.]+( as \w+)?:|'
                     r'[)\]}]+[,:]?|"""|#.*)?$')


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def secret_lines(source_path: Path) -> dict[str, set[str]]:
    """Solution and hidden-test lines of a source notebook that learners must not read anywhere.

    A solution line is a leak wherever a learner can read it, visible test cells included; only the
    notebook's markdown, set-up and demo cells (a hint may quote a line on purpose) and the lab's other
    files (a DAG given to learners; not an instructor-only ``reference_*`` file, which never ships) may show it. A hidden-test line repeated in a visible test cell is
    not a leak (the learner reads it there anyway). Trivial lines are left out.

    Returns:
        ``{"### BEGIN SOLUTION": lines, "### BEGIN HIDDEN TESTS": lines}``.
    """
    secret: dict[str, set[str]] = {begin: set() for begin in REGIONS}
    public: set[str] = set()
    visible_tests: set[str] = set()
    for cell in nbformat.read(source_path, as_version=4).cells:
        is_test = bool(meta(cell).get("grade")) and not meta(cell).get("solution")
        begin = None
        for line in cell.source.splitlines():
            text = line.strip()
            if begin is None and text in REGIONS:
                begin = text
            elif begin is not None and text == REGIONS[begin]:
                begin = None
            elif begin is not None:
                secret[begin].add(text)
            else:
                (visible_tests if is_test else public).add(text)
    others = [p for p in source_path.parent.rglob("*") if p.is_file() and p.suffix != ".ipynb"
              and "__pycache__" not in p.parts and not p.name.startswith("reference_")]  # reference_*: never shipped
    shown = "\n".join([*public, *(p.read_text(errors="replace") for p in others)]).replace("`", "")
    shown_with_tests = shown + "\n" + "\n".join(visible_tests)
    return {begin: {line for line in lines if line not in (shown if begin == "### BEGIN SOLUTION" else shown_with_tests)
                    and len(line) > 5 and not TRIVIAL.match(line)}
            for begin, lines in secret.items()}
