"""Lab 05's training steps on bad settings and degenerate data: clear errors, before any work is done."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.features.definitions import FEATURE_NAMES, LABEL
from helpers.pipeline.steps import Settings
from helpers.pipeline.training import fit_model, time_split


def test_unknown_setting_is_refused_naming_the_known_ones():
    """Check that a typo in a run's conf fails instead of being ignored."""
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['dayz'\].*'days'"):
        Settings.of({"dayz": 3})
    with pytest.raises(ValueError, match="days is the number of days"):
        Settings.of({"days": 0})
    assert Settings.of(None)["model_name"] == "purchase_next_1h"


def test_time_split_needs_two_sides():
    """Check that events all at one time cannot be split (nothing later to hold out)."""
    frame = pd.DataFrame({"event_time": [pd.Timestamp("2026-01-01", tz="UTC")] * 4})
    with pytest.raises(ValueError, match="need events at more than one time"):
        time_split(frame)
    with pytest.raises(ValueError, match="holdout_share"):
        time_split(frame, 1.5)


def test_one_class_training_set_is_refused():
    """Check that a day without a single purchase label says so instead of fitting a constant."""
    frame = pd.DataFrame({name: [1.0, 2.0, 3.0] for name in FEATURE_NAMES} | {LABEL: [0, 0, 0]})
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_model(frame)
