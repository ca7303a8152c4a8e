"""Lab 05's model registry: MLflow 3 tracking and registry, embedded (SQLite) or a server.

- :mod:`helpers.registry.tracking`: connect to the registry (bounded wait), the experiment, the code version.
- :mod:`helpers.registry.models`: log and register a scikit-learn model with its data and code versions; load
  the champion.
- :mod:`helpers.registry.promotion`: move the ``champion`` alias only to a model that beats the champion on
  the same holdout.

``import mlflow`` costs 3-4 s, so every module imports it inside its functions.
"""
