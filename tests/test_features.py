"""Lab 05's features: one definition, two implementations (Spark batch, Python stream) that agree per event.

Also: the leakage check catches a feature that looks ahead, and the features carry enough signal for a
model to beat the prior (the generator makes purchases depend on behaviour: helpers/data/ecommerce.py).
"""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.data.ecommerce import generate_ecommerce
from helpers.features.definitions import FEATURE_NAMES, FEATURES, LABEL, LEAKY_FEATURE
from helpers.features.leakage import find_leaks
from helpers.features.stream import FeatureEngineer, compute_features, label_next_hour


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """Two days of generated events (seeded): heavy users have dozens of events a day."""
    return generate_ecommerce(8_000, 42, "2026-01-01", 2, progress=False).events


def test_spark_and_stream_give_the_same_features_per_event(spark, events):
    """Check that the Spark job and the streaming engineer agree on every feature and the label, per event."""
    from helpers.features.spark import build_training_frame

    batch = build_training_frame(spark.createDataFrame(events)).toPandas()
    stream = compute_features(events)
    stream[LABEL] = label_next_hour(events.sort_values(["event_time", "event_id"], kind="stable")).to_numpy()
    both = stream.merge(batch, on="event_id", suffixes=("_stream", "_spark"), validate="one_to_one")
    assert len(both) == len(events), f"expected one row per event ({len(events)}), got {len(both)}"
    for name in (*FEATURE_NAMES, LABEL):
        differ = both[(both[f"{name}_stream"].astype(float).round(2) != both[f"{name}_spark"].astype(float).round(2))]
        assert differ.empty, (f"{name}: {len(differ)} events differ between stream and Spark, e.g. "
                              f"{differ[['event_id', f'{name}_stream', f'{name}_spark']].head(3).to_dict('records')}; "
                              f"both must read the window [t - w, t) from helpers.features.definitions")
    assert both["spend_24h_spark"].gt(0).any() and both[f"{LABEL}_spark"].nunique() == 2, (
        "the sample should contain past spend and both label values, or the comparison proves little")


def test_leakage_check_catches_a_feature_that_looks_ahead(spark, events):
    """Check that removing the future changes only the leaky feature, and that a stream refuses it."""
    from helpers.features.spark import add_features

    def compute(frame: pd.DataFrame) -> pd.DataFrame:
        return add_features(spark.createDataFrame(frame), (*FEATURES, LEAKY_FEATURE)).toPandas()

    leaks = find_leaks(compute, events, (*FEATURE_NAMES, LEAKY_FEATURE.name), cutoffs=(0.5,))
    assert set(leaks) == {LEAKY_FEATURE.name}, f"expected only {LEAKY_FEATURE.name} to leak, got {leaks}"
    with pytest.raises(ValueError, match="cannot see the future"):
        FeatureEngineer((*FEATURES, LEAKY_FEATURE))


def test_features_let_a_model_beat_the_prior():
    """Check that a time-split gradient-boosting model ranks buyers well above the base rate (PR AUC)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score
    from threadpoolctl import threadpool_limits

    raw = generate_ecommerce(60_000, 7, "2026-01-01", 2, progress=False).events
    frame = compute_features(raw)
    frame[LABEL] = label_next_hour(raw.sort_values(["event_time", "event_id"], kind="stable")).to_numpy()
    cut = frame.event_time.quantile(0.7)
    train, test = frame[frame.event_time <= cut], frame[frame.event_time > cut]
    with threadpool_limits(1):  # OpenMP threads spinning on a busy 2-core machine cost more than they give
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(train[list(FEATURE_NAMES)],
                                                                                train[LABEL])
        score = model.predict_proba(test[list(FEATURE_NAMES)])[:, 1]
    prior, pr_auc = test[LABEL].mean(), average_precision_score(test[LABEL], score)
    roc_auc = roc_auc_score(test[LABEL], score)
    print(f"prior {prior:.3f}, ROC AUC {roc_auc:.3f}, PR AUC {pr_auc:.3f}")
    assert roc_auc > 0.6 and pr_auc > 1.3 * prior, (
        f"expected the features to beat the prior clearly, got ROC AUC {roc_auc:.3f} (0.5 = guessing) and "
        f"PR AUC {pr_auc:.3f} vs base rate {prior:.3f}")
