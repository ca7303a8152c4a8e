"""Benchmarks that print figures (``make bench`` = ``python -m benchmarks``); instructors only.

Each lab's module has ``run(record, rows)``; :mod:`benchmarks.run` finds and runs them. Nothing here
asserts a speed, and learners' copies of the workbook do not ship this package.
"""
