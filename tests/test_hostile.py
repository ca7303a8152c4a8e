"""Hostile submissions against every lab: none earns more than the blank release, none hangs the grader.

Each lab gets one submission, ``mallory``, built from its released notebook with every non-fatal attack
at once (the grading kernel is the attacker's process):

- **spying**: her first answer walks up from the grading folder looking for the source notebooks
  (``notebooks/<lab>/``), the gradebook, the rubrics and other learners' folders, runs the solution
  cells of any source notebook it finds, and prints what it found;
- **patching the kernel**: ``showtraceback``/``_showtraceback``, ``sys.excepthook``, an AST transformer
  and an input transformer removing ``assert``, ``builtins.isinstance``/``AssertionError``, a trace
  function, a ``pre_run_cell`` hook, the kernel session's ``send`` dropping error messages, the
  helpers' answer checks replaced by no-ops;
- **objects that equal anything**: every answer name (functions and variables of the stubs) bound
  to an ``AlwaysEqual`` object (or a function returning one);
- **edited test cells**: every test cell's source replaced by ``pass`` and its points raised to 100,
  one test cell unlocked and one deleted.

Lab 00 also gets the fatal cases, graded with ``--jobs 1`` (one worker after another, as serial
grading runs) and a 10 s cell limit: ``trudy`` exits at once (``os._exit``), ``oscar`` calls
``sys.exit``, kills her kernel's parent and the namespace's init (out of reach in the sandbox), then
her kernel, ``harry`` sleeps and loops forever. Each test is bounded (``subprocess`` timeout).

The blank release scores 0 on every lab (``tests/test_autograder.py``, bob), so "no more than the
blank release" is 0 here. Needs bubblewrap (``make test`` installs it as root); without it the suite
is skipped with the install line, as grading then is not isolated.
"""

from __future__ import annotations

import copy
import re

import nbformat
import pytest
from test_autograder import (  # noqa: F401 (course is a fixture)
    LABS,
    SOURCES,
    course,
    course_copy,
    grade_folder,
    meta,
)

from autograder.sandbox import probe

BLANK_SCORE = 0.0
"""What the released notebook as it is scores on every lab (tests/test_autograder.py asserts it)."""
FATAL_TIMEOUT = 10
SPY_MARK = "HOSTILE-FOUND:"

SPY = r'''
import builtins, glob, os, sys, signal, threading
from pathlib import Path as _P
_found = []
_here = _P.cwd().resolve()
for _up in [_here, *_here.parents]:
    for _pattern in ("notebooks/*/*.ipynb", "gradebook.db", "*/gradebook.db", "autograder/rubrics/*", "autograder/*.py",
                     "../submitted/*/*/*.ipynb", "../*/*/*.ipynb", "source_with_tests/*/*.ipynb"):
        _found += [str(p) for p in _up.glob(_pattern) if p.is_file() and _P(p).resolve().parent != _here]
try:
    from helpers.platform.config import REPO_ROOT as _root
    _found += [str(p) for p in _root.glob("notebooks/*/*.ipynb")]
except Exception:
    pass
_found = sorted(set(_found))
print("HOSTILE-FOUND:", _found)
try:  # links for the grader to follow when it copies this folder into the feedback
    os.symlink(str(_root / "notebooks"), "loot")
    os.symlink(str(_root / "autograder" / "rubrics"), "loot-rubrics")
except Exception as _error:
    print("no links:", _error)
_ip = get_ipython()
for _path in _found:
    if _path.endswith(".ipynb") and "/notebooks/" in _path:
        import json
        for _cell in json.load(open(_path))["cells"]:
            if _cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                _ip.run_cell("".join(_cell["source"]))
'''

PATCH = r'''
import ast as _ast
class _StripAsserts(_ast.NodeTransformer):
    def visit_Assert(self, node):
        return _ast.Pass()
_ip.ast_transformers.append(_StripAsserts())
_ip.input_transformers_post.append(lambda lines: [l for l in lines if "assert" not in l])
_ip._showtraceback = lambda *a, **k: None
_ip.showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
_isinstance = builtins.isinstance
builtins.isinstance = lambda obj, cls: type(obj).__name__ == "AlwaysEqual" or _isinstance(obj, cls)
builtins.AssertionError = type("AssertionError", (Exception,), {})
_ip.events.register("pre_run_cell", lambda *a: _ip.ast_transformers.append(_StripAsserts()))
_send = _ip.kernel.session.send
def _quiet_send(stream, msg_or_type, content=None, *a, **k):
    if msg_or_type == "error" or (_isinstance(content, dict) and content.get("status") == "error"):
        if _isinstance(content, dict) and "status" in content:
            content = {"status": "ok", "execution_count": content.get("execution_count"), "user_expressions": {}, "payload": []}
        else:
            return None
    return _send(stream, msg_or_type, content, *a, **k)
_ip.kernel.session.send = _quiet_send
def _skip(frame, event, arg):
    return None
sys.settrace(_skip)
threading.settrace(_skip)
try:
    import helpers.feedback.answers as _answers
    for _name in dir(_answers):
        if not _name.startswith("_") and callable(getattr(_answers, _name)):
            setattr(_answers, _name, lambda *a, **k: None)
except Exception:
    pass

class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __hash__(self): return 0
    def __bool__(self): return True
    def __len__(self): return 1
    def __iter__(self): return iter(())
    def __contains__(self, item): return True
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
    def __getitem__(self, key): return self
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __round__(self, n=None): return self
    def __sub__(self, other): return self
    __add__ = __radd__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __abs__ = __sub__
'''


def answer_names(source: str) -> tuple[list[str], list[str], list[str]]:
    """The top-level functions, assigned names and classes of a released answer cell (its stub)."""
    functions = re.findall(r"^def (\w+)\(", source, flags=re.M)
    variables = [n for n in re.findall(r"^(\w+)\s*(?::[^=\n]+)?=", source, flags=re.M) if n not in functions]
    classes = re.findall(r"^class (\w+)\b", source, flags=re.M)
    return functions, variables, classes


def always_equal_answer(source: str) -> str:
    """An answer cell binding every name of the stub to an AlwaysEqual (functions return one)."""
    functions, variables, classes = answer_names(source)
    lines = [f"def {name}(*args, **kwargs):\n    return AlwaysEqual()" for name in functions]
    lines += [f"class {name}(AlwaysEqual):\n    def __init__(self, *args, **kwargs):\n        pass" for name in classes]
    lines += [f"{name} = AlwaysEqual()" for name in variables]
    return "\n".join(lines) or "pass"


def mallory(released):
    """Every non-fatal attack in one submission (module docstring); returns it and the ids of edited tests."""
    nb = copy.deepcopy(released)
    answers = [c for c in nb.cells if meta(c).get("solution") and c.cell_type == "code"]
    for index, cell in enumerate(answers):
        attack = always_equal_answer(cell.source)
        cell.source = (SPY + PATCH + attack) if index == 0 else attack
    tests = [c for c in nb.cells if meta(c).get("grade") and not meta(c).get("solution")]
    for cell in tests:
        cell.source = "pass  # tests removed"
        cell.metadata.nbgrader["points"] = 100
    tests[0].metadata.nbgrader["locked"] = False
    nb.cells.remove(tests[-1])
    return nb, [meta(c)["grade_id"] for c in tests]


def fatal(released, lines: list[str]):
    """The released notebook with ``lines[i]`` prepended to answer cell ``i`` (the rest left as stubs)."""
    nb = copy.deepcopy(released)
    answers = [c for c in nb.cells if meta(c).get("solution") and c.cell_type == "code"]
    for cell, line in zip(answers, lines):
        cell.source = line + "\n" + cell.source
    return nb


FATAL = {
    # sys.exit (IPython catches it), then the kernel's parent and the namespace's init killed (out of reach in
    # the sandbox: nothing happens), then the kernel itself (it dies: an error row)
    "oscar": ["import sys\nsys.exit(0)",
              "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n"
              "os.kill(os.getpid(), signal.SIGKILL)"],
    "trudy": ["import os\nos._exit(0)"],
    "harry": ["import time\ntime.sleep(10**6)", "while True:\n    pass"],
}


@pytest.fixture(scope="class")
def hostile(request, course, kafka_broker, tmp_path_factory) -> dict:  # noqa: F811 (course: the imported fixture)
    """The class's lab graded for mallory (and, on Lab 00, the fatal cases, ``--jobs 1``)."""
    why = probe()
    if why:
        pytest.skip(f"hostile grading needs the sandbox: {why}")
    lab = request.cls.lab
    source_path = next(p for p in SOURCES if p.parent.name == lab)
    released = nbformat.read(course / "release" / lab / source_path.name, as_version=4)
    folder = tmp_path_factory.mktemp(f"hostile-{lab}")
    nb, edited = mallory(released)
    students = {"mallory": nb}
    extra = ["--jobs", "1"]
    if lab == "lab00":
        students.update({name: fatal(released, lines) for name, lines in FATAL.items()})
        extra += ["--timeout", str(FATAL_TIMEOUT)]
    for student, notebook in students.items():
        (folder / student / lab).mkdir(parents=True)
        nbformat.write(notebook, folder / student / lab / source_path.name)
    lab_course = course_copy(course, f"hostile-{lab}")
    rows, _, stdout, elapsed = grade_folder(folder, lab_course, tmp_path_factory.mktemp(f"grades-hostile-{lab}"), *extra)
    print(f"\nhostile grading of {lab} ({', '.join(students)}): {elapsed:.1f} s")
    return {"rows": rows, "stdout": stdout, "course": lab_course, "edited": edited, "lab": lab,
            "notebook": source_path.name, "source": nbformat.read(source_path, as_version=4)}


@pytest.mark.notebook
class HostileGrading:
    """One lab's hostile submission; a subclass per lab (below) sets ``lab``."""

    lab = ""

    def test_mallory_earns_no_more_than_the_blank_release(self, hostile: dict):
        rows = [r for r in hostile["rows"] if r["student"] == "mallory"]
        assert rows, f"expected a grades.csv row for mallory, the grader said:\n{hostile['stdout']}"
        for row in rows:
            assert float(row["auto_score"]) <= BLANK_SCORE, (
                f"{self.lab}: expected the hostile submission to score at most the blank release ({BLANK_SCORE}), "
                f"got {row['auto_score']}/{row['max_auto_score']} ({row['message']}); look at "
                f"{hostile['course']}/autograded/mallory/ for the test cell that passed")

    def test_the_kernel_saw_no_source_gradebook_rubric_or_other_work(self, hostile: dict):
        executed = hostile["course"] / "autograded" / "mallory" / self.lab / hostile["notebook"]
        nb = nbformat.read(executed, as_version=4)
        spied = [line for c in nb.cells for o in c.get("outputs", []) for line in o.get("text", "").splitlines()
                 if line.startswith(SPY_MARK)]
        assert spied, f"expected mallory's spy line ({SPY_MARK}) in {executed}: did her first answer run?"
        assert spied == [f"{SPY_MARK} []"], (
            f"{self.lab}: expected the sandboxed kernel to find no source notebook, gradebook, rubric or other "
            f"learner's file, it found: {spied}; check the binds in autograder/sandbox.py")

    def test_no_link_the_kernel_left_reaches_the_feedback(self, hostile: dict):
        for step in ("autograded", "feedback"):
            folder = hostile["course"] / step / "mallory" / self.lab
            links = [str(p) for p in folder.rglob("*") if p.is_symlink() or p.name.startswith("loot")]
            assert folder.is_dir() and not links, (
                f"{self.lab}: expected the links mallory's kernel made (loot -> notebooks/) removed from {folder} "
                f"before feedback copies it, found {links}; see autograder.grade.remove_links")

    def test_edited_and_deleted_test_cells_were_restored_and_ran(self, hostile: dict):
        executed = nbformat.read(hostile["course"] / "autograded" / "mallory" / self.lab / hostile["notebook"], 4)
        tests = {meta(c)["grade_id"]: c for c in executed.cells if meta(c).get("grade") and not meta(c).get("solution")}
        source = {meta(c)["grade_id"]: c for c in hostile["source"].cells if meta(c).get("grade") and not meta(c).get("solution")}
        assert set(tests) == set(source), f"expected every test cell back, got {sorted(tests)}, the source has {sorted(source)}"
        for grade_id, cell in tests.items():
            assert "tests removed" not in cell.source, f"{grade_id}: the learner's edit of the test cell was kept"
            assert meta(cell)["points"] == meta(source[grade_id])["points"], f"{grade_id}: points {meta(cell)['points']}"
            errors = [o.ename for o in cell.outputs if o.output_type == "error"]
            assert errors, f"{grade_id}: expected the restored test cell to fail on mallory's answers, it passed"


class FatalChecks:
    """Lab 00's exits, kills and hangs (graded in the same run as its mallory)."""

    @pytest.mark.parametrize("student", sorted(FATAL))
    def test_fatal_submission_scores_nothing_and_the_run_ends(self, hostile: dict, student: str):
        rows = [r for r in hostile["rows"] if r["student"] == student]
        assert rows, f"expected a row for {student} (the run must go on after her), the grader said:\n{hostile['stdout']}"
        for row in rows:
            assert float(row["auto_score"]) <= BLANK_SCORE and row["status"] in ("graded", "error"), (
                f"expected {student} to score at most the blank release ({BLANK_SCORE}) with a graded or error row, "
                f"got {row}")
            assert row["message"], f"expected {student}'s row to say what happened, got {row}"


for _lab in LABS:  # TestHostile_lab00, ...: one class (one grading run) per lab, kept on one xdist worker
    _bases = (HostileGrading, FatalChecks) if _lab == "lab00" else (HostileGrading,)
    globals()[f"TestHostile_{_lab}"] = type(f"TestHostile_{_lab}", _bases, {"lab": _lab})


def test_a_test_cell_that_does_not_finish_scores_nothing():
    """The nonce check itself: a test cell whose output lacks its nonce gets an error output (0 points)."""
    from nbformat.v4 import new_code_cell, new_output

    from autograder.preprocessors import strip_nonce

    cell = new_code_cell("assert answer == 1", outputs=[new_output("stream", name="stdout", text="hello\nabc123\n")])
    assert strip_nonce(cell, "abc123") and cell.outputs[0]["text"] == "hello\n", cell.outputs
    assert not strip_nonce(cell, "zzz999"), "expected a missing nonce to be reported as missing"


def test_links_a_kernel_leaves_are_removed_before_feedback_copies_the_folder(tmp_path):
    """A symlink (or fifo) the kernel made in its folder is deleted, so feedback never follows it to a secret."""
    import os

    from autograder.grade import remove_links

    secret = tmp_path / "notebooks" / "lab01" / "solution.ipynb"
    secret.parent.mkdir(parents=True)
    secret.write_text("### BEGIN SOLUTION")
    folder = tmp_path / "autograded" / "mallory" / "lab01"
    (folder / "dags").mkdir(parents=True)
    (folder / "dags" / "etl.py").write_text("print('mine')")
    (folder / "loot.txt").symlink_to(secret)
    (folder / "dags" / "loot-dir").symlink_to(secret.parent, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    removed = remove_links(folder)
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == ["dags", "dags/etl.py"], f"expected only the real files left, got {left} (removed {removed})"
    assert secret.read_text() == "### BEGIN SOLUTION", "removing a link must not touch its target"


def test_sandboxed_kernel_sees_only_what_the_lab_needs(tmp_path, monkeypatch):
    """A kernel of the ``workbook-sandbox`` kernelspec: no sources, grader, gradebook, secrets or grader process."""
    import json
    import os
    import sys
    from pathlib import Path

    from jupyter_client.manager import start_new_kernel

    import helpers
    from autograder import sandbox
    from autograder.course import REPO_ROOT

    why = probe()
    if why:
        pytest.skip(f"the sandbox is off here: {why}")
    kernels, work, state = tmp_path / "kernels", tmp_path / "autograded" / "mallory" / "lab00", tmp_path / "state"
    work.mkdir(parents=True)
    (tmp_path / "gradebook.db").write_text("secret")
    sandbox.install(kernels, [os.path.dirname(helpers.__file__)])
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(kernels), f"{sys.prefix}/share/jupyter"]))
    monkeypatch.setenv("WORKBOOK_STATE", str(state))
    monkeypatch.setenv("INSTRUCTOR_API_TOKEN", "do-not-leak")
    probe_code = f"""
import json, os
from pathlib import Path
def writable(path):
    try:
        Path(path, "probe.txt").write_text("x"); return True
    except OSError:
        return False
def can_signal(pid):
    try:
        os.kill(pid, 0); return True
    except OSError:
        return False
print(json.dumps({{
    "sources": os.path.exists({str(REPO_ROOT / "notebooks")!r}),
    "grader": os.path.exists({str(REPO_ROOT / "autograder")!r}),
    "gradebook": os.path.exists({str(tmp_path / "gradebook.db")!r}),
    "home": sorted(os.listdir("/root")) if os.path.isdir("/root") else [],
    "secret": "INSTRUCTOR_API_TOKEN" in os.environ,
    "grader_process": can_signal({os.getpid()}),
    "uid": os.getuid(),
    "cwd_writable": writable("."),
    "helpers_writable": writable({os.path.dirname(helpers.__file__)!r}),
    "state_writable": writable(os.environ["WORKBOOK_STATE"]),
    "imports": __import__("helpers.platform.config").__name__,
}}))
"""
    km, kc = start_new_kernel(kernel_name=sandbox.KERNEL_NAME, cwd=str(work))
    outputs = []
    try:
        kc.execute_interactive(probe_code, timeout=60, output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    seen = json.loads("".join(outputs))
    python_dirs = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()]  # a pyenv Python lives in /root
    home = sorted({p.relative_to("/root").parts[0] for p in python_dirs if p.is_relative_to("/root")})
    expected = {"sources": False, "grader": False, "gradebook": False, "home": home, "secret": False,
                "grader_process": False, "uid": sandbox.UID, "cwd_writable": True, "helpers_writable": False,
                "state_writable": True, "imports": "helpers"}
    assert seen == expected, f"expected the sandboxed kernel to see {expected}, it saw {seen}; see autograder/sandbox.py"


SILENCE_ERRORS = '''
_ip = get_ipython()
_send = _ip.kernel.session.send
def _quiet(stream, msg_type, content=None, *a, **k):
    if msg_type == "error":
        return None
    if msg_type == "execute_reply" and content.get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count"), "user_expressions": {}, "payload": []}
    return _send(stream, msg_type, content, *a, **k)
'''
TINY_CASES = {
    # an answer cell patches the kernel: the guard must undo it before the test cell
    "patched-before": SILENCE_ERRORS + "_ip.kernel.session.send = _quiet\nanswer = 2\n",
    # the patch happens inside the test cell, after the guard (answer's __eq__): the nonce must catch it
    "patched-during": SILENCE_ERRORS + ("class Sneaky(int):\n    def __eq__(self, other):\n"
                                        "        _ip.kernel.session.send = _quiet\n        return False\n"
                                        "answer = Sneaky(2)\n"),
}


@pytest.mark.parametrize("case", sorted(TINY_CASES))
def test_guard_and_nonce_turn_a_silenced_failure_into_an_error(case, monkeypatch):
    """A three-cell notebook (setup, answer, test) executed by CourseExecute with and without the guard.

    Without it the attack works (the failing test cell shows no error: nbgrader would give its
    points); with it the test cell has an error output (the real AssertionError, or TestCellIncomplete).
    """
    import asyncio

    from nbformat.v4 import new_code_cell, new_notebook

    from autograder import preprocessors
    from autograder.preprocessors import INCOMPLETE, CourseExecute

    monkeypatch.setattr(preprocessors, "source_roles", lambda *_: {"setup": "setup", "check": "test"})
    asyncio.set_event_loop(asyncio.new_event_loop())  # nbclient's sync wrappers want a loop in this thread

    def run(guard: bool) -> list[str]:
        nb = new_notebook(cells=[new_code_cell("expected = 1", metadata={"nbgrader": {"grade_id": "setup", "locked": True}}),
                                 new_code_cell(TINY_CASES[case]),
                                 new_code_cell('assert answer == expected, "expected 1"',
                                               metadata={"nbgrader": {"grade_id": "check", "grade": True, "points": 1}})])
        execute = CourseExecute(timeout=60, guard=guard, kernel_name="python3")
        execute.preprocess(nb, {"nbgrader": {"assignment": "tiny", "notebook": "tiny"}, "metadata": {"path": "."}})
        return [o.ename for o in nb.cells[2].outputs if o.output_type == "error"]

    assert run(guard=False) == [], f"{case}: expected the attack to hide the failure without the guard (else this test proves nothing)"
    errors = run(guard=True)
    expected = ["AssertionError"] if case == "patched-before" else [INCOMPLETE]
    assert errors == expected, f"{case}: expected the guarded test cell to end with {expected}, got {errors}"
