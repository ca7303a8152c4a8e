"""nbgrader preprocessors of the course (``nbgrader_config.py`` refers to them by name)."""

from __future__ import annotations

import secrets
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Bool, Integer, Unicode, default

GUARD_SOURCE = (Path(__file__).with_name("kernel_guard.py")).read_text(encoding="utf-8")
SOURCE_DIR = Path(__file__).resolve().parent.parent / "notebooks"
INCOMPLETE = "TestCellIncomplete"
"""``ename`` of the error the grader adds to a test cell that did not run to its end."""


class CourseExecute(Execute):
    """nbgrader's ``Execute``, with longer time for setup cells and a guard around every test cell.

    Setup cells start services (Spark, Airflow: a minute on a busy laptop) and a learner cannot
    change them, so they get ``setup_timeout``. Every other cell (answers, tests calling the
    answers) gets ``Execute.timeout``: an infinite loop there costs that much and no more.

    With ``guard`` on (the default), the kernel first receives ``kernel_guard.py`` (silently), each
    locked setup cell is bracketed by ``mark()``/``record()`` and each graded test cell is preceded
    by ``restore()``, which puts back what an answer may have patched (traceback and display
    machinery, transformers, builtins, ``sys`` hooks, the helpers' modules, the setup's names).
    Each test cell is also sent with one more line that prints a per-cell random nonce: a test cell
    whose output lacks it did not run to its end (its exception was swallowed, its asserts skipped)
    and gets an error (``TestCellIncomplete``), so it scores 0. Which cells are setup and test cells
    is read from the source notebook (``notebooks/<assignment>/``), never from the submission.
    """

    setup_timeout = Integer(300, help="Seconds a locked, ungraded cell may run").tag(config=True)
    guard = Bool(True, help="Guard test cells against a tampered kernel (kernel_guard.py, nonce)").tag(config=True)
    roles: dict[str, str] = {}

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any] | None = None, km=None):
        """Learn the roles of the notebook's cells from its source, then execute it."""
        info = (resources or {}).get("nbgrader", {})
        self.roles = source_roles(info.get("assignment", ""), info.get("notebook", ""))
        self._guard_ready = False
        return super().preprocess(nb, resources, km=km)

    async def _silent(self, code: str) -> bool:
        """Run ``code`` in the kernel without output or history; True if it replied ``ok`` in time."""
        msg_id = await ensure_async(self.kc.execute(code, silent=True, store_history=False, allow_stdin=False))
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=self.timeout or 60))
            except Empty:
                return False
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"].get("status") == "ok"

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        """Execute one cell; a setup cell's names are recorded, a test cell is guarded and must finish."""
        role = self.roles.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))
        if not self.guard or role is None or cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if not self._guard_ready:
            self._guard_ready = await self._silent(GUARD_SOURCE)
        if role == "setup":
            await self._silent("__import__('sys').modules['_workbook_guard'].mark()")
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            await self._silent("__import__('sys').modules['_workbook_guard'].record()")
            return cell
        restored = await self._silent("__import__('sys').modules['_workbook_guard'].restore()")
        nonce = secrets.token_hex(16)
        original = cell.source
        cell.source = f"{original}\n\nprint({nonce!r})  # the grader: this test cell ran to its end\n"
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            cell.source = original
        seen = strip_nonce(cell, nonce)
        if not seen and not any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            why = "" if restored and self._guard_ready else " (the grader could not restore the kernel before it)"
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename=INCOMPLETE, traceback=[f"{INCOMPLETE}: this test cell did not run to its end{why}"],
                evalue=f"this test cell did not run to its end{why}: something in the notebook stopped or "
                       "skipped its checks, so it scores 0. Remove code that changes how cells run or report "
                       "errors, restart the kernel and run all cells."))
        return cell

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own coroutine: rebind ours

    @default("timeout_func")
    def _timeout_func_default(self):
        return self.cell_timeout

    def cell_timeout(self, cell: NotebookNode) -> int | None:
        """Return the timeout of ``cell``: ``setup_timeout`` for a locked setup cell, else ``timeout``."""
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and not meta.get("grade") and not meta.get("solution"):
            return max(self.setup_timeout, self.timeout or 0)
        return self.timeout


class HideHiddenTestTracebacks(NbGraderPreprocessor):
    """Shorten the errors of test cells that hold hidden tests to ``Name: message``.

    nbgrader shows the full traceback in feedback, and an IPython traceback quotes the failing line
    with its neighbours, which can be a hidden test. Run this before ``ClearHiddenTests`` (it
    recognises the cells by their ``BEGIN HIDDEN TESTS`` marker).
    """

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="Marker of a hidden test region").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int):
        """Replace the traceback of each error output of a hidden-test cell by one line."""
        if cell.cell_type == "code" and is_grade(cell) and self.begin_test_delimeter in cell.source:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


def source_roles(assignment: str, notebook: str) -> dict[str, str]:
    """``{grade_id: "setup" | "test"}`` of a source notebook's locked setup cells and graded test cells.

    Read from ``notebooks/<assignment>/<notebook>.ipynb`` (the instructor's file), so a submission
    cannot give its own cells a role; ``{}`` when there is no such notebook.
    """
    path = SOURCE_DIR / assignment / f"{notebook}.ipynb"
    if not (assignment and notebook and path.is_file()):
        return {}
    roles = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade_id"):
            continue
        if meta.get("grade") and not meta.get("solution"):
            roles[meta["grade_id"]] = "test"
        elif meta.get("locked") and not meta.get("grade") and not meta.get("solution"):
            roles[meta["grade_id"]] = "setup"
    return roles


def strip_nonce(cell: NotebookNode, nonce: str) -> bool:
    """Remove the nonce line from ``cell``'s stream outputs; return whether it was there."""
    seen = False
    for output in list(cell.get("outputs", [])):
        if output.get("output_type") == "stream" and nonce in output.get("text", ""):
            seen = True
            output["text"] = "".join(line for line in output["text"].splitlines(keepends=True) if nonce not in line)
            if not output["text"]:
                cell.outputs.remove(output)
    return seen
