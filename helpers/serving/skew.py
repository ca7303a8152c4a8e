"""The training/serving skew check: the features the stream computed vs the ones training used, per event."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from helpers.features.definitions import FEATURE_NAMES


def compare_features(served: pd.DataFrame, reference: pd.DataFrame,
                     names: Sequence[str] = FEATURE_NAMES) -> dict[str, dict]:
    """Return ``{feature: {"differ": n, "examples": [...]}}`` for each feature that differs (empty: no skew).

    Both frames hold ``event_id`` and the feature columns; values are compared to the cent (2 decimals),
    on the events both hold. Events only one side holds are reported under ``"event_id"``.

    Raises:
        KeyError: a frame lacks ``event_id`` or a feature column (the message names them).
    """
    for label, frame in (("served", served), ("reference", reference)):
        missing = [c for c in ("event_id", *names) if c not in frame.columns]
        if missing:
            raise KeyError(f"the {label} features lack columns {missing}")
    both = served.merge(reference, on="event_id", how="outer", suffixes=("_served", "_ref"), indicator=True)
    skew: dict[str, dict] = {}
    one_side = both[both["_merge"] != "both"]
    if len(one_side):
        skew["event_id"] = {"differ": len(one_side), "examples": one_side[["event_id", "_merge"]].head(3).to_dict("records")}
    both = both[both["_merge"] == "both"]
    for name in names:
        a, b = both[f"{name}_served"].astype(float).round(2), both[f"{name}_ref"].astype(float).round(2)
        differ = both[a != b]
        if len(differ):
            skew[name] = {"differ": len(differ),
                          "examples": differ[["event_id", f"{name}_served", f"{name}_ref"]].head(3).to_dict("records")}
    return skew
