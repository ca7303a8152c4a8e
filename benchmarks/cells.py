"""Run chosen cells of a source notebook (the instructor's solution) and return their namespace.

The benchmarks time the labs' reference solutions, so they execute those cells from the notebook
itself rather than from a copy that could drift. Instructor-only: benchmarks never ship to learners.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def load_cells(notebook: Path, grade_ids: Iterable[str], namespace: dict[str, Any] | None = None,
               edit: Callable[[str, str], str] | None = None) -> dict[str, Any]:
    """Execute the cells ``grade_ids`` of ``notebook``, in that order, in ``namespace`` and return it.

    Args:
        notebook: a source notebook (``notebooks/labNN/*.ipynb``).
        grade_ids: the nbgrader ``grade_id`` of each cell to run.
        namespace: globals the cells expect from earlier cells (imports); a new dict by default.
        edit: ``edit(grade_id, source) -> source``, e.g. to keep a cell's definitions but not its demo run.

    Raises:
        KeyError: a ``grade_id`` that the notebook does not have (the message lists those it has).
    """
    import nbformat

    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"}
    namespace = {} if namespace is None else namespace
    with contextlib.redirect_stdout(io.StringIO()):  # set-up cells print for the learner
        for grade_id in grade_ids:
            if grade_id not in cells:
                raise KeyError(f"{notebook.name} has no cell {grade_id!r}; it has {sorted(filter(None, cells))}")
            source = edit(grade_id, cells[grade_id]) if edit else cells[grade_id]
            exec(compile(source, f"{notebook.name}:{grade_id}", "exec"), namespace)  # noqa: S102 - our notebook
    return namespace
