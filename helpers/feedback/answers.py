"""Type checks for graded answers: an answer must be what it claims before a check compares it.

An object whose ``__eq__`` always returns True would pass every ``==`` of a test cell, so the graded
cells first check the type of an answer, then compare values. :func:`plain` does that for answers
made of Python values (dicts, lists, numbers, strings): it accepts only built-in types, the numpy
scalars that pandas hands out, and dates and times, and names the first part that is anything else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SCALARS = (str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.timedelta)
"""Exact types a plain answer may hold (subclasses are not accepted: they can redefine ``==``)."""
CONTAINERS = (dict, list, tuple, set, frozenset)
MAX_DEPTH = 20


def plain(value: Any, name: str = "the answer") -> Any:
    """Return ``value`` if it is made only of plain Python values, else fail with a message.

    Args:
        value: the learner's answer (or part of it).
        name: how the message names it, e.g. ``"summarise_run(hello_run)"``.

    Returns:
        ``value`` itself, so that a check can write ``summary = plain(summarise_run(run))``.

    Raises:
        AssertionError: some part of ``value`` is not a dict, list, tuple, set, str, number, bool,
            None, bytes, date, time or numpy scalar; the message names that part and its type.
    """
    _check(value, name, 0)
    return value


def _is_numpy_scalar(value: Any) -> bool:
    kind = type(value)
    if kind.__module__ != "numpy":
        return False
    import numpy as np  # numpy is loaded whenever a numpy scalar exists; importing it costs nothing then

    return isinstance(value, np.generic)


def _check(value: Any, where: str, depth: int) -> None:
    kind = type(value)
    if kind in SCALARS or _is_numpy_scalar(value):
        return
    if kind in CONTAINERS and depth < MAX_DEPTH:
        items = value.items() if kind is dict else enumerate(value)
        for key, item in items:
            if kind is dict:
                _check(key, f"a key of {where}", depth + 1)
            _check(item, f"{where}[{key!r}]" if kind is not set and kind is not frozenset else f"an item of {where}",
                   depth + 1)
        return
    raise AssertionError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}, expected plain Python values (dict, list, tuple, "
        "str, int, float, bool or None): return the values themselves, not an object that wraps or imitates them")
