"""Lab 05's training steps on bad settings and degenerate data: clear errors, before any work is done."""

from __future__ import annotations

import pandas as pd
import pytest

from autograder.reference.lab05a import split_by_time
from helpers.features.definitions import FEATURE_NAMES, LABEL
from helpers.pipeline.steps import Settings
from helpers.pipeline.training import checked_split, fit_model


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
        split_by_time(frame)
    with pytest.raises(ValueError, match="holdout_share"):
        split_by_time(frame, 1.5)
    with pytest.raises(ValueError, match="need events at more than one time"):
        checked_split(frame, lambda f, share: (f, f.iloc[:0]), 0.3)


def test_the_pipeline_refuses_a_split_that_trains_on_the_future_or_loses_rows():
    """Check that the split a DAG passes in is checked: time order, every row once, a (train, holdout) tuple."""
    times = pd.date_range("2026-01-01", periods=10, freq="min", tz="UTC")
    frame = pd.DataFrame({"event_time": times, "x": range(10)})
    train, holdout = checked_split(frame, split_by_time, 0.3)
    assert len(train) == 7 and len(holdout) == 3, f"expected a 7 / 3 split of 10 minutes, got {len(train)} / {len(holdout)}"
    with pytest.raises(ValueError, match="every training event must be earlier"):
        checked_split(frame, lambda f, share: (f.iloc[3:], f.iloc[:3]), 0.3)
    with pytest.raises(ValueError, match="every row once"):
        checked_split(frame, lambda f, share: (f.iloc[:5], f.iloc[7:]), 0.3)
    with pytest.raises(ValueError, match=r"must return \(train, holdout\) DataFrames, got list"):
        checked_split(frame, lambda f, share: [f.iloc[:7], f.iloc[7:]], 0.3)


def test_one_class_training_set_is_refused():
    """Check that a day without a single purchase label says so instead of fitting a constant."""
    frame = pd.DataFrame({name: [1.0, 2.0, 3.0] for name in FEATURE_NAMES} | {LABEL: [0, 0, 0]})
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_model(frame)


def test_a_one_class_calibration_slice_is_refused():
    """Check that calibrating on a slice without a single purchase says so (and how to get out of it)."""
    from helpers.pipeline.training import calibrate

    frame = pd.DataFrame({name: [1.0, 2.0, 3.0] for name in FEATURE_NAMES} | {LABEL: [0, 0, 0]})
    with pytest.raises(ValueError, match="nothing to calibrate on; use more days or calibration_share 0"):
        calibrate(object(), frame)
