"""Lab 05's model registry against a real MLflow 3 registry (SQLite under the suite's state folder).

Three models of clearly different quality are trained on the capstone's features and registered; the
``champion`` alias moves only to a model that beats the champion on the same holdout, the champion
loads and predicts, and a registry that does not answer fails fast and moves nothing.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from helpers.data.ecommerce import generate_ecommerce
from helpers.features.definitions import FEATURE_NAMES, LABEL
from helpers.features.stream import compute_features, label_next_hour


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Two days of features and labels, split in time: train on the first 70 %, hold out the rest."""
    raw = generate_ecommerce(20_000, 11, "2026-01-01", 2, progress=False).events
    frame = compute_features(raw)
    frame[LABEL] = label_next_hour(raw.sort_values(["event_time", "event_id"], kind="stable")).to_numpy()
    cut = frame.event_time.quantile(0.7)
    return {"train": frame[frame.event_time <= cut], "holdout": frame[frame.event_time > cut]}


@pytest.fixture(scope="module")
def models(split) -> dict[str, object]:
    """A strong model (all features), a weak one (the hour only) and one that always says the base rate."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x, y = split["train"][list(FEATURE_NAMES)], split["train"][LABEL]
    with threadpool_limits(1):
        return {"weak": LogisticRegression().fit(x.assign(**{c: 0 for c in x.columns if c != "hour"}), y),
                "strong": HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x, y),
                "prior": DummyClassifier(strategy="prior").fit(x, y)}


def test_champion_moves_only_to_a_better_model_on_the_same_holdout(split, models):
    """Check that the better model becomes champion, a worse one does not (with the reason), and the champion loads."""
    from autograder.reference.lab05a import should_promote
    from helpers.registry.models import champion_version, load_model, log_and_register
    from helpers.registry.promotion import promote_if_better

    name = f"purchase-{uuid.uuid4().hex[:8]}"
    holdout = (split["holdout"][list(FEATURE_NAMES)], split["holdout"][LABEL])
    example = split["train"][list(FEATURE_NAMES)]
    data_version = {"raw": "0" * 32, "features": "1" * 32 + ".dir"}
    decisions, versions = {}, {}
    for kind in ("weak", "strong", "prior"):
        t0 = time.perf_counter()
        reg = log_and_register(models[kind], name, example, params={"kind": kind}, metrics={"rows": len(example)},
                               data_version=data_version)
        print(f"{kind}: log + register {time.perf_counter() - t0:.1f} s")
        versions[kind] = reg.version
        decisions[kind] = promote_if_better(name, reg.version, "roc_auc", holdout, rule=should_promote)
        print(decisions[kind].reason)

    assert decisions["weak"].promoted and decisions["weak"].champion_version is None, (
        f"the first version should become champion when there is none, got {decisions['weak']}")
    strong = decisions["strong"]
    assert strong.promoted and strong.champion_version == versions["weak"], (
        f"the gradient-boosting model should beat the hour-only model on the holdout, got {strong}")
    assert strong.new_score > strong.champion_score, f"a promotion must come with a higher score, got {strong}"
    prior = decisions["prior"]
    assert not prior.promoted and prior.champion_version == versions["strong"], (
        f"a model that predicts the base rate (ROC AUC 0.5) must not replace the champion, got {prior}")
    assert "does not beat" in prior.reason and f"version {versions['strong']} stays champion" in prior.reason, (
        f"the decision should say why the champion was kept, got {prior.reason!r}")
    assert champion_version(name) == versions["strong"], (
        f"expected version {versions['strong']} to hold the champion alias, got {champion_version(name)}")

    champion = load_model(name)  # models:/<name>@champion
    loaded = champion.predict_proba(holdout[0])[:, 1]
    expected = models["strong"].predict_proba(holdout[0])[:, 1]
    assert np.allclose(loaded, expected), "the champion loaded from the registry should predict like the model logged"

    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version(name, versions["strong"]).tags
    assert tags.get("data.raw") == data_version["raw"] and tags.get("data.features") == data_version["features"], (
        f"the version should be tagged with the DVC hashes of its data, got {tags}")
    assert tags.get("code.git_commit") and tags.get("promotion.decision") == "champion", (
        f"the version should carry its code version and promotion decision, got {tags}")


def test_registry_down_fails_fast_and_keeps_the_champion(split, models, free_port):
    """Check that a registry on a closed port gives a clear error after a bounded wait and moves no alias."""
    from autograder.reference.lab05a import should_promote
    from helpers.registry.models import champion_version, log_and_register
    from helpers.registry.promotion import promote_if_better
    from helpers.registry.tracking import RegistryUnavailable

    name = f"purchase-{uuid.uuid4().hex[:8]}"
    example = split["train"][list(FEATURE_NAMES)]
    holdout = (split["holdout"][list(FEATURE_NAMES)], split["holdout"][LABEL])
    first = log_and_register(models["weak"], name, example)
    promote_if_better(name, first.version, "roc_auc", holdout, rule=should_promote)
    second = log_and_register(models["strong"], name, example)

    down = f"http://127.0.0.1:{free_port}"
    t0 = time.perf_counter()
    with pytest.raises(RegistryUnavailable, match=r"did not answer within 2 s.*no alias moved"):
        promote_if_better(name, second.version, "roc_auc", holdout, rule=should_promote, tracking_uri=down,
                          wait_s=2)
    with pytest.raises(RegistryUnavailable, match="MLFLOW_TRACKING_URI"):
        log_and_register(models["strong"], name, example, tracking_uri=down, wait_s=2)
    print(f"two refusals in {time.perf_counter() - t0:.1f} s")
    assert champion_version(name) == first.version, (
        f"with the registry down the champion must stay version {first.version}, got {champion_version(name)}")
