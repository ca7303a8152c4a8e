"""nbgrader configuration of the Module 05 course.

The course root is the repository: instructor notebooks are ``notebooks/<assignment>/*.ipynb``
(assignment ids ``lab00``, ``lab01``, ...). Everything nbgrader generates (release, submitted,
autograded, feedback, the gradebook) lives in the git-ignored state folder, ``.state/course``.

Environment overrides (all optional):

| variable                 | default                 | meaning                                  |
|--------------------------|-------------------------|------------------------------------------|
| ``WORKBOOK_STATE``       | ``<repo>/.state``       | state folder (same as helpers/platform/config.py) |
| ``WORKBOOK_COURSE``      | ``<state>/course``      | folder of nbgrader's generated steps     |
| ``WORKBOOK_CELL_TIMEOUT``| ``120``                 | seconds a learner's cell may run         |
| ``WORKBOOK_SETUP_TIMEOUT``| ``300``                | seconds a locked setup cell may run      |

``python -m autograder.release`` and ``python -m autograder.grade`` load this file explicitly, so they
work from any folder. The ``nbgrader`` command line reads it when run from this folder
(``cd autograder && nbgrader db student list``); ``python -m autograder.formgrader`` serves the formgrader from there.
"""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (injected by traitlets when it loads this file)

repo_root = Path(__file__).resolve().parent.parent
if str(repo_root) not in sys.path:  # so `helpers` and `autograder.preprocessors` import from the nbgrader CLI too
    sys.path.insert(0, str(repo_root))

from helpers.platform.config import course_dir  # noqa: E402 (needs the path above)

course = course_dir()


def _step(name: str) -> str:
    """Return a step folder relative to the course root when it lies inside it (nbgrader's habit)."""
    path = course / name
    try:
        return str(path.relative_to(repo_root))
    except ValueError:
        return str(path)


# Where things live. nbgrader joins root / <step> / <student_id> / <assignment_id>; the instructor
# steps (source, release) use the student id ".", so release/./lab00 is simply release/lab00.
c.CourseDirectory.root = str(repo_root)
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = _step("release")
c.CourseDirectory.submitted_directory = _step("submitted")
c.CourseDirectory.autograded_directory = _step("autograded")
c.CourseDirectory.feedback_directory = _step("feedback")
c.CourseDirectory.solution_directory = _step("solution")
c.CourseDirectory.source_with_tests_directory = _step("source_with_tests")
c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "reference_*"]  # instructor-only lab files (autograder/reference/__init__.py)

# How student notebooks run while grading: a bounded time per cell, then interrupt the kernel and
# record a CellTimeoutError in that cell, so an infinite loop costs one timeout, not the grader.
# Locked setup cells (starting Spark or Airflow) get CourseExecute.setup_timeout instead.
c.Execute.timeout = int(os.environ.get("WORKBOOK_CELL_TIMEOUT", "120"))
c.CourseExecute.setup_timeout = int(os.environ.get("WORKBOOK_SETUP_TIMEOUT", "300"))
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120
c.Execute.kernel_name = "python3"  # the kernel installed in the workbook's virtualenv
# The grading kernel forwards what Python writes to sys.stdout/sys.stderr, not what its child processes
# write to the file descriptors: nbgrader scores a test cell 0 when it has any stderr output, and
# Spark's JVM logs warnings there ("WARN CacheManager: Asked to cache already cached data") at any time.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.capture_fd_output=False"]

# Released notebooks keep nbgrader's defaults: solutions become "# YOUR CODE HERE" followed by
# "raise NotImplementedError()", hidden tests are removed, setup and test cells are locked.

c.Autograde.autograde_preprocessors = [  # nbgrader 0.9's list, with CourseExecute for Execute
    "autograder.preprocessors.CourseExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback: never show hidden tests, neither their code nor a traceback quoting it.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.preprocessors.HideHiddenTestTracebacks",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Grading: put back test cells a learner deleted (they then run and score like any other).
c.OverwriteCells.add_missing_cells = True
