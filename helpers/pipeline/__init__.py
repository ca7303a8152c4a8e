"""Lab 05's training pipeline, the pieces its DAG calls (a learner's DAG in 05a; the instructor's reference
``notebooks/lab05/dags/reference_training_pipeline.py``, never released).

- :mod:`helpers.pipeline.checks`: the GX suites on raw events and on features, and the run's data quality score.
- :mod:`helpers.pipeline.training`: the time split, the classifier, its metrics against the prior, reproduction.
- :mod:`helpers.pipeline.steps`: one function per DAG task (small dicts in, small dicts out).
"""
