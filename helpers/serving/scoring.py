"""Score a micro-batch with a registry model, exactly as ``predict_proba`` on a DataFrame would, but fast.

Two costs dominated the model stage's time per batch at 1,000 events/s (batches of 1-15 events; profile
in ``benchmarks/notes/streaming-latency.md``), both outside the model's own work:

- ``threadpoolctl.threadpool_limits(1)`` around each call enumerates every loaded native library each
  time: 2.6-5 ms per batch, measured, against 0.1-0.4 ms for the 60-tree model's ``predict_proba``.
  :class:`BatchScorer` makes one ``ThreadpoolController`` and reuses it (0.01 ms).
- scikit-learn's input validation of a pandas DataFrame (dtype checks through narwhals, feature-name
  checks): 0.33 of 0.46 ms per call. A model fitted on the feature names in :data:`FEATURE_NAMES`
  order gets the same numbers as an ndarray in that order; the fast input is used only for a model
  whose scores on a probe batch are *bit for bit* those of the DataFrame call (checked once per loaded
  model), so the served model stays exactly the registry's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from helpers.features.definitions import FEATURE_NAMES

NAMES_WARNING = "X does not have valid feature names"
"""What scikit-learn warns when a model fitted on named columns gets an ndarray (the check we did once)."""


class BatchScorer:
    """``score(model, rows)``: the positive-class probability of each row, on one thread.

    Args:
        columns: the feature names, in the order of each row.
    """

    def __init__(self, columns: Sequence[str] = FEATURE_NAMES) -> None:
        self.columns = list(columns)
        self._pools: Any = None
        self._fast: dict[int, bool] = {}  # id(model) -> the ndarray input gives the DataFrame's scores

    def one_thread(self) -> Any:
        """A context running OpenMP/BLAS on one thread, from a controller made once (at the first batch,
        when the model's native libraries are loaded)."""
        from threadpoolctl import ThreadpoolController

        if self._pools is None:
            self._pools = ThreadpoolController()
        return self._pools.limit(limits=1)

    def frame(self, x: Any) -> Any:
        """``x`` as the DataFrame the model was fitted on."""
        import pandas as pd

        return pd.DataFrame(x, columns=self.columns)

    def _array_scores(self, model: Any, x: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=NAMES_WARNING, category=UserWarning)
            return model.predict_proba(x)[:, 1]

    def fast_input(self, model: Any, x: Any) -> bool:
        """Whether ``model`` scores an ndarray exactly as the DataFrame (probed once per model on ``x``)."""
        import numpy as np

        key = id(model)
        if key not in self._fast:
            names = getattr(model, "feature_names_in_", None)
            same = names is not None and list(names) == self.columns
            if same:
                try:
                    same = bool(np.array_equal(self._array_scores(model, x), model.predict_proba(self.frame(x))[:, 1]))
                except (TypeError, ValueError, KeyError, AttributeError):  # e.g. a column selector by name
                    same = False
            self._fast = {key: same}  # one model at a time: a swapped-out model is forgotten
        return self._fast[key]

    def score(self, model: Any, rows: Sequence[Sequence[float]]) -> Any:
        """Scores of ``rows`` (each in :attr:`columns` order) by ``model.predict_proba``, column 1."""
        import numpy as np

        x = np.asarray(rows, dtype=float)
        with self.one_thread():  # see helpers.serving.__main__.ONE_THREAD: 1-4 ms instead of ~100 ms
            if self.fast_input(model, x):
                return self._array_scores(model, x)
            return model.predict_proba(self.frame(x))[:, 1]
