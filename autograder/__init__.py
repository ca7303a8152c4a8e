"""The course's nbgrader loop: release the labs, grade submissions, write feedback.

- ``python -m autograder.release [--assignment lab00]``: learner versions in ``.state/course/release``.
- ``python -m autograder.grade SUBMISSIONS_DIR [--out DIR]``: autograde, feedback and ``grades.csv``.

Configuration: ``autograder/nbgrader_config.py`` (loaded by :func:`autograder.course.load_config`).
Importing this package does nothing else. See ``autograder/README.md`` for the instructor's guide.
"""
