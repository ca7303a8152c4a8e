"""The batch implementation of :mod:`helpers.features.definitions`: Spark window functions over range frames.

Each window feature is one aggregate over ``Window.partitionBy("user_id").orderBy(<epoch seconds>)
.rangeBetween(-window_s, -1)``: the user's events from ``window_s`` seconds ago up to one second
before this event (strictly earlier). The label looks ahead with ``rangeBetween(1, 3600)``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from helpers.features.definitions import (
    DAY_S,
    FEATURES,
    HOUR_S,
    LABEL,
    LABEL_HORIZON_S,
    CurrentFeature,
    Feature,
    WindowFeature,
)

TS = "_ts"


def _window_column(f: WindowFeature) -> Column:
    frame = Window.partitionBy("user_id").orderBy(TS).rangeBetween(-f.window_s, f.ahead_s - 1 if f.ahead_s else -1)
    match = (F.col("event_type") == f.event_type) if f.event_type else F.lit(True)
    if f.agg == "count":
        return F.count(F.when(match, 1)).over(frame)
    if f.agg == "sum_cents":
        cents = F.sum(F.when(match, F.round(F.col(f.column) * 100).cast("long"))).over(frame)
        return (F.coalesce(cents, F.lit(0)) / 100).cast("double")
    if f.agg == "distinct":
        return F.size(F.collect_set(F.when(match, F.col(f.column))).over(frame))
    if f.agg == "recency":
        return F.coalesce(F.col(TS) - F.max(F.when(match, F.col(TS))).over(frame), F.lit(f.window_s))
    raise ValueError(f"unknown aggregate {f.agg!r} in feature {f.name}")


def _current_column(f: CurrentFeature) -> Column:
    if f.kind == "hour":  # from epoch seconds: UTC whatever spark.sql.session.timeZone says
        return ((F.col(TS) % DAY_S) / HOUR_S).cast("int")
    if f.kind == "equals":
        return (F.col(f.column) == F.lit(f.equals)).cast("int")
    raise ValueError(f"unknown kind {f.kind!r} in feature {f.name}")


def add_features(events: DataFrame, features: tuple[Feature, ...] = FEATURES) -> DataFrame:
    """Add one column per feature to ``events`` (needs ``user_id``, ``event_time`` and the features' columns).

    Args:
        events: raw events (one row per event).
        features: the definitions to compute (default: the model's :data:`FEATURES`).

    Returns:
        ``events`` with the feature columns added, in definition order.
    """
    out = events.withColumn(TS, F.col("event_time").cast("long"))
    for f in features:
        out = out.withColumn(f.name, _window_column(f) if isinstance(f, WindowFeature) else _current_column(f))
    return out.drop(TS)


def add_label(events: DataFrame) -> DataFrame:
    """Add ``purchase_next_1h``: 1 if the user purchases within the hour after the event, else 0."""
    ahead = Window.partitionBy("user_id").orderBy(TS).rangeBetween(1, LABEL_HORIZON_S)
    bought = F.max(F.when(F.col("event_type") == "purchase", 1)).over(ahead)
    return (events.withColumn(TS, F.col("event_time").cast("long"))
            .withColumn(LABEL, F.coalesce(bought, F.lit(0)).cast("int")).drop(TS))


def build_training_frame(events: DataFrame, features: tuple[Feature, ...] = FEATURES) -> DataFrame:
    """Features and label for every event: ``event_id, user_id, event_time, <features>, purchase_next_1h``."""
    names = [f.name for f in features]
    return add_label(add_features(events, features)).select("event_id", "user_id", "event_time", *names, LABEL)
