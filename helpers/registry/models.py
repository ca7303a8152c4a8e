"""Log a trained scikit-learn model to MLflow, register it with its data and code versions, load the champion.

A registered version carries everything needed to reproduce it: the parameters, the metrics, the
model with its signature and an input example, and tags naming the data version (the DVC hashes of
the raw snapshot and the feature set: ``data.raw``, ``data.features``) and the code version
(``code.git_commit``). Check out those hashes (:func:`helpers.versioning.dvc.checkout`) and retrain to
reproduce its metrics. The pyfunc flavour predicts probabilities (``predict_proba``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as installed
from typing import Any

import pandas as pd

from helpers.registry.tracking import EXPERIMENT, code_version, connect, experiment_id

CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version (small enough for an XCom: use :meth:`as_dict`)."""

    name: str
    version: str
    run_id: str
    model_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_and_register(model: Any, name: str, example: pd.DataFrame, *, params: Mapping[str, Any] | None = None,
                     metrics: Mapping[str, float] | None = None, data_version: Mapping[str, str] | None = None,
                     run_name: str | None = None, experiment: str = EXPERIMENT, tracking_uri: str | None = None,
                     wait_s: float = 10.0) -> RegisteredVersion:
    """Log ``model`` in a new MLflow run and register it as a new version of ``name``.

    Args:
        model: a fitted scikit-learn estimator (classifiers: the pyfunc flavour returns ``predict_proba``).
        name: the registered model's name (created on first use).
        example: a few rows of the model's input (feature columns only): signature and input example.
        params, metrics: logged to the run (metrics: those of the training run's own test split).
        data_version: e.g. ``{"raw": <dvc md5>, "features": <dvc md5>}``, tagged ``data.<key>``.
        run_name, experiment: the MLflow run's name and experiment.
        tracking_uri, wait_s: see :func:`helpers.registry.tracking.connect`.

    Returns:
        The new :class:`RegisteredVersion` (``model_uri`` is ``models:/<name>/<version>``).

    Raises:
        RegistryUnavailable: the registry did not answer; nothing was registered.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    t0 = time.perf_counter()
    connect(tracking_uri, wait_s)
    from skops.io import dumps, get_untrusted_types

    # Numbers as float64 in the signature: an integer column could not carry a missing value at serving time.
    example = example.head(5).astype({c: "float64" for c in example.select_dtypes("number").columns})
    proba = hasattr(model, "predict_proba")
    output = model.predict_proba(example) if proba else model.predict(example)
    tags = {**{f"data.{k}": str(v) for k, v in (data_version or {}).items()}, **code_version()}
    with mlflow.start_run(experiment_id=experiment_id(experiment), run_name=run_name, tags=tags) as run:
        mlflow.log_params(dict(params or {}))
        mlflow.log_metrics({k: float(v) for k, v in (metrics or {}).items()})
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(example, output), input_example=example,
            registered_model_name=name, pyfunc_predict_fn="predict_proba" if proba else "predict",
            # Listing the requirements skips MLflow's inference of them (a subprocess: seconds per model).
            # skops refuses on load any type not known safe (e.g. HistGradientBoosting's TreePredictor);
            # this process built the model, so its own types are trusted, and only those.
            skops_trusted_types=get_untrusted_types(data=dumps(model)),
            pip_requirements=[f"scikit-learn=={installed('scikit-learn')}", f"skops=={installed('skops')}"])
    client = MlflowClient()
    registered = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, registered, key, value)
    return RegisteredVersion(name, registered, run.info.run_id, f"models:/{name}/{registered}", tags,
                             time.perf_counter() - t0)


def champion_version(name: str, *, tracking_uri: str | None = None, wait_s: float = 10.0) -> str | None:
    """Return the version that holds the ``champion`` alias of ``name``, or None (no model or no champion yet)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    connect(tracking_uri, wait_s)
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return str(aliases[CHAMPION]) if CHAMPION in aliases else None


def load_model(name: str, version: str | None = None, *, tracking_uri: str | None = None,
               wait_s: float = 10.0) -> Any:
    """Load version ``version`` of ``name`` as a scikit-learn estimator; default: ``models:/<name>@champion``.

    Raises:
        LookupError: ``name`` has no champion yet (register a model and promote it first).
        RegistryUnavailable: the registry did not answer.
    """
    import mlflow.sklearn

    if version is None:
        if champion_version(name, tracking_uri=tracking_uri, wait_s=wait_s) is None:
            raise LookupError(f"model {name!r} has no {CHAMPION!r} alias yet: register a version and promote it "
                              f"with helpers.registry.promotion.promote_if_better")
        return mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}")
    connect(tracking_uri, wait_s)
    return mlflow.sklearn.load_model(f"models:/{name}/{version}")
