"""The serving model: ``models:/<name>@champion``, watched, and swapped between batches without a restart.

:class:`ChampionWatcher` loads the champion at start (a registry that does not answer is a clear
:class:`helpers.registry.tracking.RegistryUnavailable`, a model without a champion a ``LookupError``),
then checks the alias every ``reload_s`` in a background thread. A new version is loaded *beside* the
serving one and swapped in one assignment, so the loop scores each batch with one version and never
waits for a load. A version that fails to load (or a registry that stops answering) leaves the
serving version in place and raises an alert (:func:`helpers.alerts.sink.send_alert`), once per version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.alerts.sink import send_alert


@dataclass(frozen=True)
class ServedModel:
    """The model a batch is scored with, and which registered version it is."""

    name: str
    version: str
    model: Any


def _load(name: str, version: str, tracking_uri: str | None) -> Any:
    from helpers.registry.models import load_model

    return load_model(name, version, tracking_uri=tracking_uri)


class ChampionWatcher:
    """Hold the champion of ``name``; follow the alias in a thread (``start()``/``stop()``).

    Args:
        name: the registered model.
        tracking_uri: the registry (default: :func:`helpers.platform.config.mlflow_tracking_uri`).
        reload_s: how often the alias is checked.
        wait_s: how long the registry may take to answer at start.
        loader: ``loader(name, version, tracking_uri) -> model`` (default: the registry's sklearn flavour).

    Raises:
        RegistryUnavailable: at construction, when the registry does not answer.
        LookupError: at construction, when ``name`` has no champion.
    """

    def __init__(self, name: str, *, tracking_uri: str | None = None, reload_s: float = 2.0, wait_s: float = 10.0,
                 loader: Callable[[str, str, str | None], Any] = _load) -> None:
        from helpers.registry.models import champion_version

        self.name, self.tracking_uri, self.reload_s, self.loader = name, tracking_uri, reload_s, loader
        version = champion_version(name, tracking_uri=tracking_uri, wait_s=wait_s)
        if version is None:
            raise LookupError(f"model {name!r} has no 'champion' alias in the registry: train and promote a "
                              f"version first (helpers.registry.promotion.promote_if_better); nothing to serve")
        self._served = ServedModel(name, version, loader(name, version, tracking_uri))
        self.failed: set[str] = set()
        self.swaps: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry_down = False

    def current(self) -> ServedModel:
        """The serving model (one read: a batch keeps it even if a swap happens meanwhile)."""
        return self._served

    def check(self) -> bool:
        """Check the alias once; load and swap in a new champion. Return True if the model changed."""
        from helpers.registry.models import champion_version

        try:
            version = champion_version(self.name, tracking_uri=self.tracking_uri, wait_s=2.0)
            self._registry_down = False
        except Exception as err:  # noqa: BLE001 - the registry going away must not stop serving
            if not self._registry_down:
                self._alert("warning", f"the registry stopped answering ({type(err).__name__}: {err}); still "
                                       f"serving version {self._served.version}")
            self._registry_down = True
            return False
        if version is None or version == self._served.version or version in self.failed:
            return False
        try:
            model = self.loader(self.name, version, self.tracking_uri)
            if not hasattr(model, "predict_proba"):
                raise TypeError(f"{type(model).__name__} has no predict_proba: not a probabilistic classifier")
        except Exception as err:  # noqa: BLE001 - any failure to load keeps the serving model
            self.failed.add(version)
            self._alert("error", f"champion version {version} of {self.name} failed to load "
                                 f"({type(err).__name__}: {err}); still serving version {self._served.version}",
                        failed_version=version)
            return False
        previous = self._served.version
        self._served = ServedModel(self.name, version, model)
        self.swaps.append((previous, version))
        return True

    def _alert(self, severity: str, message: str, **details: Any) -> None:
        send_alert(f"serving.{self.name}", message, severity=severity,
                   details={"model": self.name, "serving_version": self._served.version, **details})

    def _run(self) -> None:
        while not self._stop.wait(self.reload_s):
            self.check()

    def start(self) -> ChampionWatcher:
        """Start following the alias in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"champion-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following the alias."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
