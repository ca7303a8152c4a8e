"""helpers.feedback.learner_tests (the learners' own tests, graded) and helpers.alerts (the course's alert sink)."""

from __future__ import annotations

import pytest

from helpers.alerts import sink as alerts
from helpers.alerts.webhook import LocalWebhook
from helpers.feedback.learner_tests import check_learner_tests, collect_tests, run_my_tests


def learner_namespace(test_sources: str) -> dict:
    """A notebook-like namespace: ``double`` and the learner's tests, defined by exec like a cell."""
    ns: dict = {}
    exec("def double(x):\n    return 2 * x\n" + test_sources, ns)
    return ns


GOOD_TESTS = """
def test_double_small():
    assert double(2) == 4
def test_double_zero():
    assert double(0) == 0
def test_double_negative():
    assert double(-3) == -6
"""


def test_good_tests_pass_on_right_answers_and_catch_broken_variants():
    ns = learner_namespace(GOOD_TESTS)
    report = check_learner_tests(ns, "double", reference=lambda x: x + x, min_tests=3,
                                 broken={"adds one": lambda x: x + 1, "squares": lambda x: x * x,
                                         "crashes": lambda x: 1 / 0})
    assert report.caught == ["adds one", "squares", "crashes"] and not report.missed
    assert ns["double"](5) == 10, "the learner's function is put back after the runs"


def test_a_test_that_asserts_nothing_misses_broken_variants():
    ns = learner_namespace("def test_runs():\n    double(2)\ndef test_type():\n    assert double(2) is not None\n")
    with pytest.raises(AssertionError, match="no test failed on these broken versions of double: returns the input"):
        check_learner_tests(ns, "double", broken={"returns the input": lambda x: x})


def test_a_wrong_test_is_reported_against_the_reference():
    ns = learner_namespace("def test_wrong():\n    assert double(2) == 5\ndef test_ok():\n    assert double(1) == 2\n")
    with pytest.raises(AssertionError, match=r"pass on a correct implementation(.|\n)*test_wrong"):
        check_learner_tests(ns, "double", reference=lambda x: 2 * x, broken={})


def test_too_few_tests_and_helpers_with_arguments_are_not_tests():
    ns = learner_namespace("def test_one():\n    assert double(1) == 2\ndef test_helper(x):\n    pass\n")
    assert list(collect_tests(ns)) == ["test_one"]
    with pytest.raises(AssertionError, match="found 1 test function"):
        check_learner_tests(ns, "double", broken={}, min_tests=2)


@pytest.fixture
def alert_db(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_ALERTS_DB", str(tmp_path / "alerts.db"))
    monkeypatch.delenv("WORKBOOK_ALERT_WEBHOOK", raising=False)
    return tmp_path / "alerts.db"


def test_alerts_are_stored_and_filtered_by_source(alert_db):
    start = alerts.last_alert_id()
    alerts.send_alert("lab01.etl.load", "load failed", details={"try": 3})
    alerts.send_alert("quality_gate", "2 expectations failed", severity="critical")
    alerts.send_alert("lab01_x", "underscore is not a wildcard", severity="info")
    got = alerts.read_alerts(since_id=start)
    assert [a.source for a in got] == ["lab01.etl.load", "quality_gate", "lab01_x"]
    assert got[0].details == {"try": 3} and got[0].delivery == "table"
    assert [a.message for a in alerts.read_alerts("lab01.")] == ["load failed"]
    with pytest.raises(ValueError, match="severity"):
        alerts.send_alert("x", "y", severity="panic")


def test_alerts_are_posted_to_a_webhook_and_a_dead_webhook_does_not_raise(alert_db, monkeypatch, free_port):
    with LocalWebhook(status=204) as hook, hook.as_alert_webhook():
        alert = alerts.send_alert("lab04.gate", "quality below threshold", details={"score": 71.5})
    assert alert.delivery == "table, webhook 204"
    assert hook.received and hook.received[0]["message"] == "quality below threshold"
    assert hook.received[0]["details"] == {"score": 71.5}
    monkeypatch.setenv("WORKBOOK_ALERT_WEBHOOK", f"http://127.0.0.1:{free_port}/nobody-listens")
    alert = alerts.send_alert("lab04.gate", "still stored")
    assert alert.delivery.startswith("table, webhook failed")
    assert alerts.read_alerts("lab04.gate")[-1].message == "still stored"


def test_run_my_tests_runs_every_test_and_prints_each_verdict(capsys):
    ns = learner_namespace(GOOD_TESTS + "def test_wrong():\n    assert double(1) == 3, 'double(1) should be 3'\n")
    assert run_my_tests(ns) is None
    out = capsys.readouterr().out
    assert "test_double_small: passed" in out and "test_double_negative: passed" in out, out
    assert "test_wrong: FAILED (AssertionError: double(1) should be 3)" in out, out
    assert "1 of 4 failed" in out, out


def test_run_my_tests_without_tests_says_what_to_write(capsys):
    run_my_tests(learner_namespace(""))
    assert "no test_... functions yet" in capsys.readouterr().out
