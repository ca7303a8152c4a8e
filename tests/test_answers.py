"""``helpers.feedback.answers.plain``: the type check graded cells run before comparing an answer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers.feedback.answers import plain


class AlwaysEqual:
    """What a hostile answer returns: equal to anything."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class SneakyDict(dict):
    def __eq__(self, other):
        return True

    __hash__ = None


@pytest.mark.parametrize("value", [
    {"state": "success", "failed_tasks": [], "revenue": 49.75, "n": 3, "ok": True, "none": None},
    [("books", 2), ("toys", np.int64(1))],
    {0.5: np.float64(1.5), "when": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "gap": dt.timedelta(1)},
    {"ids": {1, 2}, "frozen": frozenset({"a"}), "raw": b"x", "flag": np.bool_(True)},
], ids=["dict", "rows-with-numpy", "floats-and-times", "sets-and-bytes"])
def test_plain_values_pass_unchanged(value):
    assert plain(value) is value


@pytest.mark.parametrize("value, where", [
    (AlwaysEqual(), "the answer is a "),
    ({"state": AlwaysEqual()}, "the answer['state'] is a "),
    ([("books", AlwaysEqual())], "the answer[0][1] is a "),
    ({AlwaysEqual(): 1}, "a key of the answer is a "),
    (SneakyDict(a=1), "the answer is a "),
    (pd.DataFrame({"a": [1]}), "the answer is a pandas"),
])
def test_anything_else_fails_with_its_place_and_type(value, where):
    with pytest.raises(AssertionError) as err:
        plain(value)
    message = str(err.value)
    assert message.startswith(where), f"expected the message to start with {where!r}, got {message!r}"
    assert "expected plain Python values" in message and "return the values themselves" in message, message


def test_the_message_uses_the_name_given():
    with pytest.raises(AssertionError, match=r"^summarise_run\(run\)\['revenue'\] is a .*AlwaysEqual"):
        plain({"revenue": AlwaysEqual()}, "summarise_run(run)")
