"""Data quality on Great Expectations 1.x: suites and validation, and the gate (``python -m helpers.quality gate``)."""
