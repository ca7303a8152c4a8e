"""Lab 05's point-in-time features, defined once and computed twice.

- :mod:`helpers.features.definitions`: the feature and label definitions (data, not code).
- :mod:`helpers.features.spark`: the batch implementation (Spark window functions over range frames).
- :mod:`helpers.features.stream`: the streaming implementation (plain Python, one event at a time).
- :mod:`helpers.features.leakage`: the check that a feature uses only the past.
"""
