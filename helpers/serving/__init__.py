"""Lab 05's streaming inference: ``user-events`` -> features -> the champion model -> ``predictions``.

- :mod:`helpers.serving.transport`: one interface over confluent-kafka (the serving path) and kafka-python.
- :mod:`helpers.serving.loop`: the micro-batch loop (produce, flush, then commit; dedupe by event id).
- :mod:`helpers.serving.stages`: the feature stage and the model stage.
- :mod:`helpers.serving.champion`: ``models:/<name>@champion``, followed without a restart.
- :mod:`helpers.serving.topics`: the pipeline's topics.

Each stage is a process: ``python -m helpers.serving features|model ...`` (see ``--help``), so it can
be killed, restarted, and scaled to N members of one consumer group.
"""
