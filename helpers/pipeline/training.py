"""Train and judge Lab 05's classifier: a time split, gradient boosting, metrics against the prior.

The business question is "will this user purchase within the next hour?". The time split (a
:data:`Split`, passed in: the learner's ``split_by_time`` of Lab 05a, checked by :func:`checked_split`)
holds out the **latest** events (a random split would let the model train on the future of the events
it is tested on); :func:`evaluate` reports ROC AUC and PR AUC next to what guessing the base rate gets
(ROC AUC 0.5, PR AUC = the base rate), plus the Brier score and log loss of the probabilities;
:func:`calibration_table` gives the points of a calibration plot. :func:`reproduce` retrains a
registered version from the data version it is tagged with (DVC) and returns its metrics again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.features.definitions import FEATURE_NAMES, LABEL

Split = Callable[[pd.DataFrame, float], tuple[pd.DataFrame, pd.DataFrame]]
"""A time split ``(frame, holdout_share) -> (train, holdout)`` (Lab 05a, Task 4: the learner's ``split_by_time``)."""

PARAMS: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 100,
                          "holdout_share": 0.3, "calibration_share": 0.25, "random_state": 0}
"""The reference model's settings (``holdout_share``: the latest share of events held out;
``calibration_share``: the latest share of the training events kept to calibrate the probabilities, 0: none)."""
SPLIT_PARAMS = ("holdout_share", "calibration_share")
METRIC = "pr_auc"
"""The metric that decides promotion: PR AUC suits a rare positive class (ROC AUC looks good too easily)."""


def checked_split(frame: pd.DataFrame, split: Split, holdout_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``split(frame, holdout_share)`` (the time split the DAG is given) and check what it returns.

    Raises:
        ValueError: the split is not ``(train, holdout)`` DataFrames, a side is empty, a row is lost or
            doubled, or a training event is later than a held-out one (the model would learn the future).
    """
    if not 0 < holdout_share < 1:
        raise ValueError(f"holdout_share is a fraction between 0 and 1, got {holdout_share!r}")
    parts = split(frame, holdout_share)
    if not (isinstance(parts, tuple) and len(parts) == 2 and all(isinstance(p, pd.DataFrame) for p in parts)):
        raise ValueError(f"the time split must return (train, holdout) DataFrames, got {type(parts).__name__}")
    train, holdout = parts
    if train.empty or holdout.empty:
        raise ValueError(f"a time split of {len(frame)} events leaves {len(train)} to train and {len(holdout)} "
                         f"to hold out: need events at more than one time")
    if len(train) + len(holdout) != len(frame):
        raise ValueError(f"the time split must keep every row once: {len(train)} + {len(holdout)} != {len(frame)}")
    if train["event_time"].max() >= holdout["event_time"].min():
        raise ValueError(f"the time split trains on events up to {train['event_time'].max()} but holds out events "
                         f"from {holdout['event_time'].min()}: every training event must be earlier")
    return train, holdout


def fit_model(train: pd.DataFrame, params: Mapping[str, Any] | None = None) -> Any:
    """Fit a gradient-boosting classifier on the features of ``train`` (one thread: the machine is shared)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    settings = {k: v for k, v in {**PARAMS, **(params or {})}.items() if k not in SPLIT_PARAMS}
    if train[LABEL].nunique() < 2:
        raise ValueError(f"the training events all have {LABEL} = {train[LABEL].iloc[0]}: nothing to learn "
                         f"(a day without purchases, or a broken label)")
    with threadpool_limits(1):
        return HistGradientBoostingClassifier(**settings).fit(train[list(FEATURE_NAMES)], train[LABEL])


def calibrate(model: Any, later: pd.DataFrame) -> Any:
    """Platt-scale ``model``'s probabilities on ``later``: events after those it learned from, before the holdout.

    Boosted trees rank well but their probabilities drift when the hours to score lie past the training
    ones (the ``hour`` feature is then out of the range the trees saw): a sigmoid fitted on a later
    slice maps the scores back to observed rates without touching the ranking.

    Raises:
        ValueError: the slice holds a single class (nothing to calibrate on).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from threadpoolctl import threadpool_limits

    if later[LABEL].nunique() < 2:
        raise ValueError(f"the calibration slice's {len(later)} events all have {LABEL} = {later[LABEL].iloc[0]}: "
                         f"nothing to calibrate on; use more days or calibration_share 0")
    with threadpool_limits(1):
        return CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(later[list(FEATURE_NAMES)],
                                                                                   later[LABEL])


def evaluate(model: Any, holdout: pd.DataFrame) -> dict[str, float]:
    """The model's holdout metrics and the baseline's (always predicting the base rate)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
    from threadpoolctl import threadpool_limits

    y = holdout[LABEL].to_numpy()
    with threadpool_limits(1):
        p = model.predict_proba(holdout[list(FEATURE_NAMES)])[:, 1]
    prior = float(y.mean())
    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "brier": float(brier_score_loss(y, p)), "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "prior": prior, "baseline_roc_auc": 0.5, "baseline_pr_auc": prior,
            "baseline_brier": float(prior * (1 - prior)), "holdout_rows": float(len(y))}


def calibration_table(model: Any, holdout: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed purchase rate per probability quantile bin (for a plot)."""
    p = model.predict_proba(holdout[list(FEATURE_NAMES)])[:, 1]
    frame = pd.DataFrame({"predicted": p, "observed": holdout[LABEL].to_numpy()})
    frame["bin"] = pd.qcut(frame["predicted"].rank(method="first"), bins, labels=False)
    return frame.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"),
                                    events=("observed", "size")).reset_index(drop=True)


def save_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` with skops (no pickle), atomically; return the path."""
    from skops.io import dump

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    dump(model, tmp)
    tmp.replace(path)
    return path


def load_saved_model(path: str | Path) -> Any:
    """Read a model written by :func:`save_model` (its own types are trusted: this pipeline wrote it)."""
    from skops.io import get_untrusted_types, load

    return load(path, trusted=get_untrusted_types(file=path))


def train_and_evaluate(frame: pd.DataFrame, split: Split, params: Mapping[str, Any] | None = None
                       ) -> tuple[Any, dict[str, float], tuple[pd.DataFrame, pd.DataFrame]]:
    """Split ``frame`` in time with ``split``, fit, calibrate, evaluate: ``(model, metrics, (train, holdout))``.

    With ``calibration_share`` > 0 the same ``split`` keeps the latest share of the training events apart:
    the trees learn from the earlier ones and :func:`calibrate` fits on the later ones.
    """
    settings = {**PARAMS, **(params or {})}
    train, holdout = checked_split(frame, split, float(settings["holdout_share"]))
    share = float(settings["calibration_share"])
    if share > 0:
        learn, later = checked_split(train, split, share)
        model = calibrate(fit_model(learn, settings), later)
    else:
        model = fit_model(train, settings)
    return model, evaluate(model, holdout), (train, holdout)


def reproduce(name: str, version: str | int, split: Split, *, root: str | Path | None = None,
              tracking_uri: str | None = None) -> dict[str, float]:
    """Retrain registered version ``version`` of ``name`` from its tagged data version; return the metrics.

    The version's ``data.features`` tag (a DVC hash) and ``data.features_path`` are checked out into
    the DVC project (the workspace then holds that version of the feature set), and the model is
    trained again with the run's logged parameters and ``split`` (the time split it was trained with).
    Same data + same code + same parameters: the same metrics as the version logged.

    Raises:
        LookupError: the version has no data tags (it was not registered by this pipeline).
        VersioningError: that data version is in neither the DVC cache nor the remote.
    """
    from mlflow import MlflowClient

    from helpers.registry.tracking import connect
    from helpers.versioning.datarepo import checkout, data_root

    connect(tracking_uri)
    client = MlflowClient()
    found = client.get_model_version(name, str(version))
    tags = found.tags
    if "data.features" not in tags or "data.features_path" not in tags:
        raise LookupError(f"{name} version {version} has no data.features / data.features_path tags: only a "
                          f"version registered by the training pipeline can be reproduced")
    root = Path(root or data_root())
    checked = checkout(tags["data.features_path"], tags["data.features"], root=root)
    params = {k: _number(v) for k, v in client.get_run(found.run_id).data.params.items() if k in PARAMS}
    frame = pd.read_parquet(root / checked.path)
    _, metrics, _ = train_and_evaluate(frame, split, params)
    return metrics


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def beats_prior(metrics: Mapping[str, float]) -> bool:
    """True when the model ranks clearly better than guessing: ROC AUC > 0.5 and PR AUC above the base rate."""
    return bool(metrics["roc_auc"] > 0.5 and metrics["pr_auc"] > metrics["prior"] and np.isfinite(metrics["brier"]))
