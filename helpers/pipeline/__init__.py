"""Lab 05's training pipeline, the pieces its DAG calls (``notebooks/lab05/dags/training_pipeline.py``).

- :mod:`helpers.pipeline.checks`: the GX suites on raw events and on features, and the run's data quality score.
- :mod:`helpers.pipeline.training`: the time split, the classifier, its metrics against the prior, reproduction.
- :mod:`helpers.pipeline.steps`: one function per DAG task (small dicts in, small dicts out).
"""
