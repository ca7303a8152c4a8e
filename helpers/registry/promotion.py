"""Move the ``champion`` alias only to a model that beats the champion on the same holdout.

Metrics logged at training time come from each run's own test split, so they cannot be compared
across runs. :func:`promote_if_better` therefore loads both models and scores them **now, on the
same holdout**; whether the new version becomes champion is decided by the promotion ``rule`` given
(:data:`Rule`: Lab 05a's ``should_promote``, Task 5.1) on the two scores.
The decision, both scores and a fingerprint of the holdout are tagged on the new version, so the
registry says why a version is (or is not) the champion. Aliases, not stages (deprecated since 2.9).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.registry.models import CHAMPION, champion_version, load_model

Metric = tuple[Callable[[Any, Any], float], bool]
Rule = Callable[[float, float | None, bool, float], bool]
"""``rule(new_score, champion_score, higher_is_better, min_delta) -> bool`` (``champion_score`` None: no champion)."""


def _metrics() -> dict[str, Metric]:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    return {"roc_auc": (roc_auc_score, True), "pr_auc": (average_precision_score, True),
            "log_loss": (log_loss, False), "brier": (brier_score_loss, False)}


METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
"""The holdout metrics :func:`promote_if_better` knows (the first two: higher is better)."""


@dataclass(frozen=True)
class PromotionDecision:
    """Whether ``version`` became champion, why, and both scores on the same holdout."""

    name: str
    version: str
    promoted: bool
    reason: str
    metric: str
    new_score: float
    champion_version: str | None
    champion_score: float | None
    holdout_rows: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(model: Any, metric: str, features: pd.DataFrame, labels: pd.Series | np.ndarray) -> float:
    """Score a binary classifier's positive-class probability on ``features``/``labels`` with ``metric``."""
    table = _metrics()
    if metric not in table:
        raise ValueError(f"unknown metric {metric!r}: use one of {METRICS}")
    return float(table[metric][0](np.asarray(labels), model.predict_proba(features)[:, 1]))


def holdout_fingerprint(features: pd.DataFrame, labels: pd.Series | np.ndarray) -> str:
    """A short hash of the holdout's rows and labels: two decisions on the same holdout show the same one."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    digest.update(np.asarray(labels, dtype="int64").tobytes())
    return digest.hexdigest()[:16]


def promote_if_better(name: str, version: str | int, metric: str, holdout: tuple[pd.DataFrame, Any], *,
                      rule: Rule, min_delta: float = 0.0, tracking_uri: str | None = None,
                      wait_s: float = 10.0) -> PromotionDecision:
    """Give ``version`` the ``champion`` alias if it beats the current champion on ``holdout``.

    Args:
        name, version: the registered model and the candidate version.
        metric: one of :data:`METRICS` (``roc_auc``, ``pr_auc``: higher is better; ``log_loss``, ``brier``: lower).
        holdout: ``(features, labels)``: the same rows score both models.
        rule: the promotion rule (:data:`Rule`), asked with both scores (the champion's is None when there
            is none); it must return a bool.
        min_delta: the margin passed to ``rule`` (how much better the candidate must be).
        tracking_uri, wait_s: see :func:`helpers.registry.tracking.connect`.

    Returns:
        A :class:`PromotionDecision`; when not promoted, the champion is unchanged and ``reason`` says why.

    Raises:
        RegistryUnavailable: the registry did not answer; no alias moved.
    """
    from mlflow import MlflowClient

    features, labels = holdout
    version = str(version)
    current = champion_version(name, tracking_uri=tracking_uri, wait_s=wait_s)
    new_score = score(load_model(name, version), metric, features, labels)
    higher = _metrics()[metric][1]
    old_score = None
    if current == version:
        old_score = new_score
        promoted, reason = False, f"version {version} is already the champion"
    else:
        if current is not None:
            old_score = score(load_model(name, current), metric, features, labels)
        promoted = rule(new_score, old_score, higher, min_delta)
        if not isinstance(promoted, (bool, np.bool_)):
            raise TypeError(f"the promotion rule must return a bool, got {promoted!r}: no alias moved")
        promoted = bool(promoted)
        if current is None:
            reason = (f"no champion yet: version {version} becomes the first ({metric} {new_score:.4f})" if promoted
                      else f"no champion yet, and the rule did not promote version {version} ({metric} "
                           f"{new_score:.4f})")
        else:
            verb = "beats" if promoted else "does not beat"
            reason = (f"version {version} {verb} champion version {current} on the same holdout: {metric} "
                      f"{new_score:.4f} vs {old_score:.4f} ({'higher' if higher else 'lower'} is better, "
                      f"required margin {min_delta:g})" + ("" if promoted else f"; version {current} stays champion"))
    client = MlflowClient()
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    tags = {"promotion.decision": "champion" if promoted else "kept_previous", "promotion.reason": reason,
            f"holdout.{metric}": f"{new_score:.6f}", "holdout.fingerprint": holdout_fingerprint(features, labels)}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return PromotionDecision(name, version, promoted, reason, metric, new_score, current, old_score, len(features))
