"""Instructor-only reference implementations of the labs' graded tasks: one module per notebook.

Nothing here ships: the learners' copy (:mod:`autograder.student_copy`) takes no ``autograder/``
file, the grading sandbox cannot import ``autograder``, and a lab's instructor-only files next to its
notebook are named ``reference_*`` (nbgrader's ``CourseDirectory.ignore``: neither released nor copied
into a grading folder). The shipped ``helpers`` take the solving functions as required parameters;
the reference DAGs, ``make capstone`` and the tests pass these, a learner's DAG passes the learner's.
Import them lazily (``from autograder.reference.lab05a import ...`` inside a function).

- :mod:`autograder.reference.lab05a`: Lab 05a, the training pipeline (Tasks 1, 2, 4, 5.1).
"""
