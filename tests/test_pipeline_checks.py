"""Lab 05's data contracts: the raw-events and features suites pass good data, name what breaks a bad batch,
and the run's data quality score tells a clean day (100 %) from a 5 %-dirty one (below the 95 % goal)."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.api.extract import COLUMNS
from helpers.data.ecommerce import generate_ecommerce
from helpers.features.definitions import LABEL
from helpers.features.stream import compute_features, label_next_hour
from autograder.reference.lab05a import data_quality_score as check_score
from autograder.reference.lab05a import quality_score
from helpers.pipeline.checks import validate_features, validate_raw

DAY = "2026-01-01"


@pytest.fixture(scope="module")
def day_events() -> pd.DataFrame:
    """One clean day of generated events, in the raw snapshot's columns."""
    events = generate_ecommerce(12_000, 42, DAY, 2, progress=False).events
    return events[events.event_time < pd.Timestamp("2026-01-02", tz="UTC")][COLUMNS].reset_index(drop=True)


def test_good_day_passes_both_suites_with_full_score(day_events):
    """Check that a clean day passes the raw and the features suite and scores 100 %."""
    raw = validate_raw(day_events, [DAY])
    ordered = day_events.sort_values(["event_time", "event_id"], kind="stable")
    features = compute_features(ordered)
    features[LABEL] = label_next_hour(ordered).to_numpy()
    checked = validate_features(features)
    assert raw.passed and checked.passed, (
        f"expected clean generated data to pass both suites, got:\n{raw.summary()}\n{checked.summary()}")
    assert quality_score([raw, checked]) == 100.0, "expected a 100 % quality score on clean data"


def test_dirty_batch_fails_naming_its_expectations():
    """Check that a 5 %-dirty batch fails the raw suite, names each problem and scores below the 95 % goal."""
    dirty = generate_ecommerce(12_000, 42, DAY, 1, dirty_fraction=0.05, progress=False).events[COLUMNS]
    result = validate_raw(dirty, [DAY])
    named = "\n".join(result.failing)
    assert not result.passed, "expected a batch with nulls, duplicates and bad values to fail the gate"
    for expected in ("expect_column_values_to_be_unique(column=event_id)",
                     "expect_column_values_to_not_be_null(column=price)",
                     "expect_column_values_to_be_in_set(column=event_type)",
                     "expect_column_values_to_be_between(column=event_time)"):
        assert expected in named, f"expected the failures to name {expected}, got:\n{named}"
    score = check_score(result)
    assert 90.0 < score < 95.0, f"expected about 5 % of records flagged (score near 95 %), got {score:.2f} %"


def test_wrong_label_rate_is_a_table_level_failure(day_events):
    """Check that a feature set whose label is all zeros fails (label mean) and scores 0."""
    ordered = day_events.sort_values(["event_time", "event_id"], kind="stable")
    features = compute_features(ordered)
    features[LABEL] = 0
    result = validate_features(features)
    assert "expect_column_mean_to_be_between(column=purchase_next_1h)" in "\n".join(result.failing), (
        f"expected the label-rate expectation to fail on an all-zero label, got:\n{result.summary()}")
    assert check_score(result) == 0.0, "a failed table-level expectation should make the score 0"
