"""The leakage check: a point-in-time feature must not change when the future is removed.

:func:`find_leaks` computes features twice, on all events and on the events up to a cutoff, and
compares the values of the events before the cutoff. A feature that uses only earlier events gives
the same values; one that peeks at later events (the label, or anything after the event) differs.
It works with any implementation: pass a function from an events frame to a features frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

Compute = Callable[[pd.DataFrame], pd.DataFrame]


def find_leaks(compute: Compute, events: pd.DataFrame, names: Sequence[str],
               cutoffs: Sequence[float] = (0.5,)) -> dict[str, int]:
    """Return ``{feature: number of events whose value changed}`` for the features that leak.

    Args:
        compute: events frame -> frame with ``event_id`` and the feature columns.
        events: raw events (with ``event_id`` and ``event_time``).
        names: the feature columns to check.
        cutoffs: where to cut, as quantiles of ``event_time`` (several cutoffs catch more).

    Returns:
        The leaking features with how many events changed; empty when every feature is point-in-time.
    """
    full = compute(events).set_index("event_id")
    leaks: dict[str, int] = {}
    for q in cutoffs:
        cutoff = events["event_time"].quantile(q)
        past = compute(events[events["event_time"] <= cutoff]).set_index("event_id")
        before = full.loc[past.index]
        for name in names:
            changed = int((before[name].astype(float).round(2) != past[name].astype(float).round(2)).sum())
            if changed:
                leaks[name] = leaks.get(name, 0) + changed
    return leaks
