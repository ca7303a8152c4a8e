"""The model stage's batch scorer: exactly ``predict_proba`` on the named DataFrame, whichever input it uses.

:class:`helpers.serving.scoring.BatchScorer` gives a model fitted on the feature names (in order) an
ndarray, which skips pandas validation (a third of the stage's time per batch, measured), and falls back
to the DataFrame for any model whose scores would differ or that needs the names (a column selector).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from helpers.features.definitions import FEATURE_NAMES
from helpers.serving.scoring import BatchScorer

COLUMNS = list(FEATURE_NAMES)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.random((2_000, len(COLUMNS))) * 100, columns=COLUMNS)
    y = (x[COLUMNS[0]] + rng.normal(0, 20, len(x)) > 50).to_numpy()
    return x, y, rng.random((13, len(COLUMNS))) * 100


def _models(x: pd.DataFrame, y: np.ndarray) -> dict[str, object]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return {
            "gradient boosting on the names": HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(x, y),
            "logistic regression on the names": LogisticRegression(max_iter=500).fit(x, y),
            "a pipeline selecting columns by name": make_pipeline(
                ColumnTransformer([("some", "passthrough", COLUMNS[:3])]), LogisticRegression()).fit(x, y),
        }


@pytest.mark.parametrize("kind, fast", [("gradient boosting on the names", True),
                                        ("logistic regression on the names", True),
                                        ("a pipeline selecting columns by name", False)])
def test_scores_equal_predict_proba_on_the_named_frame(data, kind, fast):
    x, y, rows = data
    model = _models(x, y)[kind]
    scorer = BatchScorer(COLUMNS)
    expected = model.predict_proba(pd.DataFrame(rows, columns=COLUMNS))[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stage prints warnings to its log on every batch: none allowed
        for _ in range(2):  # the probe, then the decided path
            got = scorer.score(model, rows.tolist())
    assert np.array_equal(got, expected), (
        f"{kind}: expected exactly predict_proba of the named DataFrame, got a max difference of "
        f"{np.max(np.abs(got - expected))}: the fast input must only be used when it changes nothing")
    assert scorer.fast_input(model, rows) is fast, (
        f"{kind}: expected the {'ndarray' if fast else 'DataFrame'} input to be chosen; check BatchScorer.fast_input")


def test_a_swapped_model_is_probed_again(data):
    x, y, rows = data
    models = _models(x, y)
    scorer = BatchScorer(COLUMNS)
    scorer.score(models["gradient boosting on the names"], rows)
    got = scorer.score(models["a pipeline selecting columns by name"], rows)
    want = models["a pipeline selecting columns by name"].predict_proba(pd.DataFrame(rows, columns=COLUMNS))[:, 1]
    assert np.array_equal(got, want), "after a model swap the new model must be probed, not given the old decision"
