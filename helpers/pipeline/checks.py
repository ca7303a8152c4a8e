"""Lab 05's data contracts as GX 1.x suites (raw events, features) and the run's data quality score.

Both suites are built in code from the definitions they guard (the API's schema and allowed values,
:mod:`helpers.features.definitions`), validated through Lab 04's gate (:func:`helpers.quality.gate.run_suite`),
so a failure names its expectations the same way.

The **data quality score** of a batch (the share of its records in which no check found a problem, in
percent) is computed from a :class:`~helpers.quality.gate.GateResult` by the function the DAG passes to
:func:`helpers.pipeline.steps.check_raw` (Lab 05a, Task 2); the run's score is the lowest of its
suites' scores. The gate itself is stricter than the goal (> 95 %): every expectation must pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd

from helpers.api.extract import COLUMNS
from helpers.data.ecommerce import CATEGORIES, COUNTRIES, DEVICES, EVENT_TYPES
from helpers.features.definitions import FEATURES, KEY_COLUMNS, LABEL, CurrentFeature, WindowFeature
from helpers.quality.gate import GateResult, run_suite

MAX_PRICE = 20_000.0
"""No product costs more (the generator's most expensive category has a median of 180)."""
MAX_QUANTITY = 20


def raw_events_suite(days: Iterable[date | datetime | str] | None = None):  # noqa: ANN201 (gx.ExpectationSuite)
    """The contract of a raw snapshot: the API's columns, no nulls, unique ids, known values, sane numbers.

    Args:
        days: the UTC days the snapshot covers; every ``event_time`` must fall inside them (a broken clock
            or a misplaced page shows up here). None: any time.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from helpers.quality.suites import active_context

    active_context()
    suite = gx.ExpectationSuite(name="lab05_raw_events")
    suite.add_expectation(gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(COLUMNS)))
    for column in COLUMNS:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    for column, allowed in (("event_type", EVENT_TYPES), ("category", CATEGORIES), ("device", DEVICES),
                            ("country", COUNTRIES)):
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0.01, max_value=MAX_PRICE))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=MAX_QUANTITY))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0,
                                                            max_value=MAX_PRICE * MAX_QUANTITY))
    if days is not None:
        stamps = sorted(pd.Timestamp(pd.Timestamp(d).date(), tz="UTC") for d in days)
        if stamps:
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
                column="event_time", min_value=stamps[0].to_pydatetime(),
                max_value=(stamps[-1] + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)).to_pydatetime()))
    return suite


def features_suite():  # noqa: ANN201 (gx.ExpectationSuite)
    """The contract of a feature set: keys, every feature and the label present and in range.

    Counts are whole and non-negative, a 1 h count never exceeds its 24 h count, recency lies in
    ``[0, 24 h]``, flags are 0/1, hours 0-23, and the label's rate is plausible (a label that is
    all zeros or all ones is a bug upstream, not a dataset).
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from helpers.quality.suites import active_context

    active_context()
    suite = gx.ExpectationSuite(name="lab05_features")
    columns = [*KEY_COLUMNS, *(f.name for f in FEATURES), LABEL]
    suite.add_expectation(gxe.ExpectTableColumnsToMatchOrderedList(column_list=columns))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    for column in columns:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    for f in FEATURES:
        if isinstance(f, WindowFeature):
            upper = f.window_s if f.agg == "recency" else None
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=f.name, min_value=0, max_value=upper))
        elif isinstance(f, CurrentFeature) and f.kind == "hour":
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=f.name, min_value=0, max_value=23))
        else:
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=[0, 1]))
    for short, long in (("n_events_1h", "n_events_24h"), ("n_carts_1h", "n_carts_24h")):
        suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=long, column_B=short,
                                                                          or_equal=True))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]))
    suite.add_expectation(gxe.ExpectColumnMeanToBeBetween(column=LABEL, min_value=0.001, max_value=0.9))
    return suite


def validate_raw(events: pd.DataFrame, days: Iterable[date | datetime | str] | None = None,
                 data: str = "raw events") -> GateResult:
    """Validate a raw snapshot with :func:`raw_events_suite` (every expectation must pass)."""
    return run_suite(events, raw_events_suite(days), 100.0, data=data)


def validate_features(frame: pd.DataFrame, data: str = "features") -> GateResult:
    """Validate a feature set with :func:`features_suite` (every expectation must pass)."""
    return run_suite(frame, features_suite(), 100.0, data=data)
