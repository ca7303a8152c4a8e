"""Every lab notebook is well formed for nbgrader (no execution here: that is ``test_autograder.py``).

Parametrized over ``notebooks/*/*.ipynb``, so a new lab is tested as soon as its notebook exists.
Each notebook executes exactly twice in the suite, both times in ``test_autograder.py`` against the
live services: the source's solutions as a graded full submission (every cell must run cleanly and
score full marks) and the released notebook as the blank submission (only the stubs fail).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from autograder.course import REPO_ROOT

SOURCES = sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb"))
IDS = [f"{p.parent.name}/{p.name}" for p in SOURCES]


IPYTHON_LINE = re.compile(r"^\s*[%!]")
"""A line that IPython runs but Python cannot parse: a magic (``%matplotlib inline``) or a shell escape."""


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def silent_asserts(nb) -> list[str]:
    """The failures of the graded test cells of ``nb`` that would reach the learner without a message.

    An ``assert`` without a message, or a bare ``raise AssertionError``, leaves the learner's
    feedback at ``AssertionError:`` with nothing to learn from.

    Returns:
        One ``"<grade_id> line <n>: <source line>"`` per silent assertion, hidden tests included (their
        ``### BEGIN HIDDEN TESTS`` markers are comments, so the whole cell parses).
    """
    found = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        lines = cell.source.splitlines()
        python = "\n".join("" if IPYTHON_LINE.match(line) else line for line in lines)  # keeps line numbers
        for node in ast.walk(ast.parse(python, filename=meta["grade_id"])):
            bare_raise = (isinstance(node, ast.Raise) and node.exc is not None
                          and (isinstance(node.exc, ast.Name) or (isinstance(node.exc, ast.Call) and not node.exc.args))
                          and "AssertionError" in ast.unparse(node.exc))
            if (isinstance(node, ast.Assert) and node.msg is None) or bare_raise:
                found.append(f"{meta['grade_id']} line {node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_source_is_committed_clean_and_well_formed(path: Path):
    """Outputs cleared, unique grade ids, marked solutions, tests that open with a docstring and score."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade ids: {ids}"
    solutions = [c for c in code if nbgrader_meta(c).get("solution")]
    tests = [c for c in code if nbgrader_meta(c).get("grade")]
    assert solutions and tests, "a lab has at least one answer cell and one graded test cell"
    for cell in [c for c in nb.cells if c.cell_type == "markdown" and nbgrader_meta(c).get("solution")]:
        # nbgrader replaces a written answer cell by "YOUR ANSWER HERE" in the release; the source holds a
        # model answer (else a full submission looks unanswered and skips manual grading).
        assert cell.source.strip() != "YOUR ANSWER HERE", f"{nbgrader_meta(cell)['grade_id']}: write a model answer"
    for cell in solutions:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, nbgrader_meta(cell)["grade_id"]
    for cell in tests:
        meta = nbgrader_meta(cell)
        assert meta.get("locked") and meta.get("points", 0) > 0, f"{meta['grade_id']}: locked, with points"
        assert cell.source.lstrip().startswith('"""'), f"{meta['grade_id']}: open with a one-line docstring"
    assert nb.metadata.kernelspec.name == "python3"


MANUAL_HEADING = "## For your instructor (10 points, graded by hand)"
MANUAL_CRITERIA = (("code_quality", "**Code quality (5 points).**"), ("best_practices", "**Best practices (5 points).**"))


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_manual_answers_use_the_course_layout(path: Path):
    """The notebook ends with its manually graded part, the same five cells in every lab (Lab 00 has none).

    A read-only heading (``manual_intro``), then for code quality and best practices: a read-only
    question (``manual_<criterion>_question``) and a 5-point answer cell (``manual_<criterion>``)
    holding only the model answer between the solution markers, so the release shows the question
    and "YOUR ANSWER HERE", and the formgrader shows each question above the learner's answer.
    """
    nb = nbformat.read(path, as_version=4)
    manual = [c for c in nb.cells if nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("solution")]
    if not manual:
        assert not any(nbgrader_meta(c).get("grade_id", "").startswith("manual_") for c in nb.cells), path.name
        return
    tail = nb.cells[-5:]
    expected = ["manual_intro"] + [f"manual_{key}{suffix}" for key, _ in MANUAL_CRITERIA for suffix in ("_question", "")]
    found = [nbgrader_meta(c).get("grade_id") for c in tail]
    assert found == expected and len(manual) == 2, (
        f"expected the notebook to end with the cells {expected} (and no other manual answer), found {found}; "
        f"see autograder/README.md, 'Manual grading'")
    assert all(c.cell_type == "markdown" for c in tail), "the manual part is five markdown cells"
    assert tail[0].source.startswith(MANUAL_HEADING + "\n"), f"expected the heading '{MANUAL_HEADING}'"
    for index, (key, label) in enumerate(MANUAL_CRITERIA):
        question, answer = tail[1 + 2 * index], tail[2 + 2 * index]
        for cell in (tail[0], question):
            meta = nbgrader_meta(cell)
            assert meta.get("locked") and not meta.get("grade") and not meta.get("solution"), (
                f"{meta.get('grade_id')}: expected a read-only cell (locked, no points, not an answer)")
        assert question.source.startswith(label), f"manual_{key}_question: expected it to open with {label}"
        assert nbgrader_meta(answer).get("points") == 5, f"manual_{key}: expected 5 points"
        assert answer.source.startswith("### BEGIN SOLUTION\nModel answer (instructor): ") and \
            answer.source.endswith("\n### END SOLUTION"), (
            f"manual_{key}: expected only 'Model answer (instructor): ...' between the solution markers, "
            f"got {answer.source[:80]!r}")


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_every_graded_assertion_has_a_message(path: Path):
    """Each assert of a graded test cell (hidden ones too) says what was expected, what came and what to try."""
    silent = silent_asserts(nbformat.read(path, as_version=4))
    assert not silent, (
        f"{len(silent)} assertion(s) in graded cells have no message, so the learner reads only 'AssertionError:': "
        + "; ".join(silent) + ". Add a message: expected ..., got ...: try ...")


def test_a_silent_assertion_is_found():
    """The scan above fails a graded cell with a bare assert, hidden or not, and leaves other cells alone."""
    graded = {"nbgrader": {"grade": True, "grade_id": "check_x", "locked": True, "points": 1, "solution": False}}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\n"
                                  '"""Check x"""\n'
                                  'assert x == 1, f"expected 1, got {x}: set x = 1"\n'
                                  "### BEGIN HIDDEN TESTS\n"
                                  "assert y == 2\n"
                                  "if z:\n"
                                  "    raise AssertionError\n"
                                  "### END HIDDEN TESTS\n", metadata=graded),
        nbformat.v4.new_code_cell("assert 'not graded'", metadata={}),
        nbformat.v4.new_code_cell('"""Check w"""\nassert w, "w should be set: set w = True"\n'
                                  'raise AssertionError("stop here: expected ..., got ...")\n',
                                  metadata={"nbgrader": {**graded["nbgrader"], "grade_id": "check_w"}}),
    ])
    assert silent_asserts(nb) == ["check_x line 5: assert y == 2", "check_x line 7: raise AssertionError"], silent_asserts(nb)
