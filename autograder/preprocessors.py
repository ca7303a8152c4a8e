"""nbgrader preprocessors of the course (``nbgrader_config.py`` refers to them by name)."""

from __future__ import annotations

from typing import Any

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Integer, Unicode, default


class CourseExecute(Execute):
    """nbgrader's ``Execute``, giving the locked setup cells more time than the learner's cells.

    Setup cells start services (Spark, Airflow: a minute on a busy laptop) and a learner cannot
    change them, so they get ``setup_timeout``. Every other cell (answers, tests calling the
    answers) gets ``Execute.timeout``: an infinite loop there costs that much and no more.
    """

    setup_timeout = Integer(300, help="Seconds a locked, ungraded cell may run").tag(config=True)

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
