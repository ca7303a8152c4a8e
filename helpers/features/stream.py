"""The streaming implementation of :mod:`helpers.features.definitions`: plain Python, one event at a time.

:class:`FeatureEngineer` keeps each user's last 24 h of events and computes the features of an event
from them *before* adding it, so it sees exactly what the Spark job's ``rangeBetween(-w, -1)`` sees.
Events of one user must arrive in time order (Kafka keeps order per key: key by user). A feature that
looks ahead cannot be computed from a stream: the constructor refuses it.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

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


def epoch_seconds(value: Any) -> int:
    """Whole UTC seconds of a timestamp (pandas, datetime, ISO string or epoch seconds)."""
    if isinstance(value, (int, float)):
        return int(value)
    stamp = pd.Timestamp(value) if not isinstance(value, pd.Timestamp) else value
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000_000)


class FeatureEngineer:
    """Compute the point-in-time features of each event from the user's earlier events."""

    def __init__(self, features: tuple[Feature, ...] = FEATURES) -> None:
        ahead = [f.name for f in features if isinstance(f, WindowFeature) and f.ahead_s]
        if ahead:
            raise ValueError(f"{ahead} look ahead in time: a stream cannot see the future, so these "
                             f"features would leak the label in training and be missing in serving")
        self.features = features
        self.lookback_s = max((f.window_s for f in features if isinstance(f, WindowFeature)), default=0)
        self._history: dict[int, deque[tuple[int, str, int, Any]]] = {}

    def update(self, event: Mapping[str, Any]) -> dict[str, int | float]:
        """Return the features of ``event``, then remember it for the user's later events."""
        t = epoch_seconds(event["event_time"])
        history = self._history.setdefault(int(event["user_id"]), deque())
        while history and history[0][0] < t - self.lookback_s:
            history.popleft()
        earlier = [h for h in history if h[0] < t]  # same-second events are not "earlier"
        values = {f.name: self._value(f, t, earlier, event) for f in self.features}
        amount = event.get("amount")
        cents = int(round(float(amount) * 100)) if amount is not None and amount == amount else 0
        history.append((t, str(event.get("event_type")), cents, event.get("category")))
        return values

    @staticmethod
    def _value(f: Feature, t: int, earlier: list[tuple[int, str, int, Any]],
               event: Mapping[str, Any]) -> int | float:
        if isinstance(f, CurrentFeature):
            if f.kind == "hour":
                return (t % DAY_S) // HOUR_S
            return int(event.get(f.column) == f.equals)
        rows = [h for h in earlier if h[0] >= t - f.window_s and (f.event_type is None or h[1] == f.event_type)]
        if f.agg == "count":
            return len(rows)
        if f.agg == "sum_cents":
            return sum(h[2] for h in rows) / 100
        if f.agg == "distinct":
            return len({h[3] for h in rows if h[3] is not None})
        if f.agg == "recency":
            return t - rows[-1][0] if rows else f.window_s
        raise ValueError(f"unknown aggregate {f.agg!r} in feature {f.name}")


def compute_features(events: pd.DataFrame | Iterable[Mapping[str, Any]],
                     features: tuple[Feature, ...] = FEATURES) -> pd.DataFrame:
    """Run :class:`FeatureEngineer` over events in ``(event_time, event_id)`` order.

    Returns:
        ``event_id, user_id, event_time`` and one column per feature.
    """
    frame = pd.DataFrame(events) if not isinstance(events, pd.DataFrame) else events
    frame = frame.sort_values(["event_time", "event_id"], kind="stable")
    engineer = FeatureEngineer(features)
    rows = [{"event_id": e["event_id"], "user_id": e["user_id"], "event_time": e["event_time"], **engineer.update(e)}
            for e in frame.to_dict("records")]
    return pd.DataFrame(rows, columns=["event_id", "user_id", "event_time", *(f.name for f in features)])


def label_next_hour(events: pd.DataFrame) -> pd.Series:
    """The label of each event (1 if the user purchases in ``(t, t + 1 h]``), indexed like ``events``."""
    seconds = events["event_time"].map(epoch_seconds)
    purchases: dict[int, list[int]] = {}
    for user, t in zip(events.loc[events.event_type == "purchase", "user_id"], seconds[events.event_type == "purchase"]):
        purchases.setdefault(int(user), []).append(t)
    for times in purchases.values():
        times.sort()

    def label(user: int, t: int) -> int:
        times = purchases.get(int(user), [])
        i = bisect.bisect_right(times, t)
        return int(i < len(times) and times[i] <= t + LABEL_HORIZON_S)

    return pd.Series([label(u, t) for u, t in zip(events["user_id"], seconds)], index=events.index, name=LABEL)
