"""``make capstone``: Lab 05's reference system end to end, headless, against the live services.

Each part of the capstone is a function that runs its piece and returns one JSON-ready section
(:mod:`helpers.capstone.summary` keeps the list: :data:`helpers.capstone.summary.PARTS`). This part
registers ``training`` (:mod:`helpers.capstone.training`: the training DAG); parts 2 and 3 register
``streaming`` and ``monitoring`` the same way. ``python -m helpers.capstone`` runs them in order,
prints a short report and writes ``<state>/capstone/summary.json``.

Instructor-only: the parts run the reference answers (:mod:`autograder.reference`, the reference DAGs), so
the learners' copy holds this package back (``autograder/student_copy.py``: ``NOT_SHIPPED``).
"""
