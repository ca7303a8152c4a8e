"""Bad input to the helpers learners call fails clearly: a named problem and a hint, never a hang or a silent [].

One test per case of the architecture issue: a missing broker, a mistyped topic, a non-JSON message,
a non-string output key in a stream, a DAG factory passed to ``run_dag``, an alert that JSON cannot
hold or whose webhook is broken, and a quality gate given a batch without a column or a text threshold.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from helpers.kafka.admin import ensure_topic
from helpers.kafka.clients import (
    BrokerUnavailable,
    NotJsonMessage,
    TopicNotFound,
    consume_json,
    produce_json,
    read_topic,
    unique_topic,
)


def test_consume_json_without_a_broker_fails_fast_with_the_doctors_hint(monkeypatch, free_port):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port}")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="Hint:") as caught:
        consume_json("orders", timeout_s=30)
    waited = time.monotonic() - started
    assert f"127.0.0.1:{free_port}" in str(caught.value), f"expected the address in the error, got {caught.value}"
    assert waited < 25, f"expected a bounded wait well under the 30 s consume timeout, waited {waited:.1f} s"


def test_a_mistyped_topic_is_an_error_naming_the_close_ones_and_is_not_created(kafka_broker):
    from kafka import KafkaAdminClient

    real = unique_topic("orders-bad-input")
    ensure_topic(real)
    typo = real.replace("orders", "order")
    with pytest.raises(TopicNotFound, match=f"did you mean '{real}'"):
        consume_json(typo, timeout_s=2)
    with pytest.raises(TopicNotFound):
        read_topic(typo, idle_timeout_s=1)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
    try:
        assert typo not in admin.list_topics(), f"reading {typo!r} created it; expected no auto-create"
    finally:
        admin.close()


def test_a_non_json_message_names_its_offset_and_keeps_what_was_read(kafka_broker):
    from kafka import KafkaProducer

    topic = unique_topic("mixed-json")
    ensure_topic(topic)
    producer = KafkaProducer(bootstrap_servers=kafka_broker, acks="all")
    try:
        for value in (b'{"n": 0}', b'{"n": 1}', b"not json at all", b'{"n": 3}'):
            producer.send(topic, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()
    with pytest.raises(NotJsonMessage, match=r"partition 0 offset 2") as caught:
        consume_json(topic, timeout_s=5)
    assert [r.value for r in caught.value.records] == [{"n": 0}, {"n": 1}], (
        f"expected the two values before the bad one in .records, got {caught.value.records}")
    lenient = read_topic(topic, idle_timeout_s=2)  # the default reader keeps the raw bytes instead
    assert [r.value for r in lenient] == [{"n": 0}, {"n": 1}, b"not json at all", {"n": 3}]


def test_run_stream_sends_a_non_string_key_to_the_dlq_and_goes_on(kafka_broker):
    from helpers.streaming.stream import run_stream

    source, sink, dlq = (unique_topic(f"keys-{name}") for name in ("in", "out", "dlq"))
    for topic in (source, sink, dlq):
        ensure_topic(topic)
    produce_json(source, [{"user": i} for i in range(6)])

    def keyed_by_int(raw: bytes):
        event = json.loads(raw)
        key = event["user"] if event["user"] % 2 else str(event["user"])  # odd users: an int key (a bug)
        return [(key, event)]

    stats = run_stream(keyed_by_int, source, group_id=unique_topic("keys-group"), sink_topic=sink,
                       dlq_topic=dlq, max_messages=6, idle_timeout_s=20, max_seconds=60)
    assert (stats.consumed, stats.emitted, stats.dead_lettered) == (6, 3, 3), f"expected 6 in, 3 out, 3 DLQ: {stats}"
    dead = read_topic(dlq, idle_timeout_s=2)
    assert {r.headers.get("reason") for r in dead} == {"bad_output"}, [r.headers for r in dead]
    assert "must be a str" in dead[0].headers.get("detail", ""), dead[0].headers
    assert sorted(r.value["user"] for r in read_topic(sink, idle_timeout_s=2)) == [0, 2, 4]


def test_run_dag_given_a_dag_factory_says_to_call_it():
    from helpers.airflow.runner import run_dag

    def build_orders_dag(table="orders"):
        raise AssertionError("run_dag must not call the factory itself")

    with pytest.raises(TypeError, match=r"got the function build_orders_dag: call it first"):
        run_dag(build_orders_dag)
    with pytest.raises(TypeError, match="needs a DAG"):
        run_dag(42)


def test_an_alert_json_cannot_hold_is_stored_with_its_values_as_text():
    from helpers.alerts.sink import alerts_db, read_alerts, send_alert

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    alert = send_alert("tests.bad_input", "odd details", details={"when": when, "path": Path("/x"), "obj": object()})
    stored = [a for a in read_alerts("tests.bad_input") if a.id == alert.id]
    assert stored and stored[0].details["when"] == str(when) and stored[0].details["path"] == "/x", stored
    with sqlite3.connect(alerts_db()) as conn:
        (raw,) = conn.execute("SELECT details FROM alerts WHERE id = ?", (alert.id,)).fetchone()
    assert json.loads(raw)["obj"].startswith("<object object"), raw


@pytest.mark.parametrize("url", ["not a url", "ftp-ish://nowhere", "http://127.0.0.1:9/nothing-listens"])
def test_a_bad_webhook_url_is_recorded_and_the_alert_still_stored(monkeypatch, url):
    from helpers.alerts.sink import read_alerts, send_alert

    monkeypatch.setenv("WORKBOOK_ALERT_WEBHOOK", url)
    alert = send_alert("tests.bad_webhook", "still stored", details={"n": 1})
    assert alert.delivery.startswith("table, webhook failed"), f"expected the failure recorded, got {alert.delivery}"
    assert any(a.id == alert.id for a in read_alerts("tests.bad_webhook")), "the alert should be in the table"


@pytest.fixture(scope="module")
def suite_and_batch(tmp_path_factory):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from helpers.quality.suites import active_context, save_suite

    active_context()
    suite = gx.ExpectationSuite(name="bad_input_suite")
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="revenue"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="n_events", min_value=0, max_value=100))
    folder = tmp_path_factory.mktemp("gate-bad-input")
    batch = pd.DataFrame({"n_events": [1, 2, 3], "revenue": [1.0, 2.0, None]})
    batch.to_csv(folder / "ok.csv", index=False)
    batch.drop(columns=["revenue"]).to_csv(folder / "no_revenue.csv", index=False)
    return save_suite(suite, folder / "suite.json"), folder


def test_run_gate_on_a_batch_missing_a_checked_column_names_it(suite_and_batch):
    from helpers.quality.gate import EXIT_ERROR, gate_main, run_gate
    from helpers.quality.suites import GateInputError

    suite, folder = suite_and_batch
    with pytest.raises(GateInputError, match="no column 'revenue'"):
        run_gate(folder / "no_revenue.csv", suite)
    assert gate_main(str(folder / "no_revenue.csv"), str(suite)) == EXIT_ERROR


@pytest.mark.parametrize("threshold, expected", [("50", 50.0), ("50%", 50.0), (50, 50.0), (" 49.5 ", 49.5)])
def test_run_gate_accepts_a_threshold_written_as_text(suite_and_batch, threshold, expected):
    from helpers.quality.gate import run_gate

    suite, folder = suite_and_batch
    result = run_gate(folder / "ok.csv", suite, threshold=threshold)
    assert result.threshold == expected and result.success_percent == 50.0, result
    assert result.passed is (50.0 >= expected)


@pytest.mark.parametrize("threshold", ["eighty", "150", None])
def test_run_gate_rejects_a_threshold_that_is_not_a_percentage(suite_and_batch, threshold):
    from helpers.quality.gate import run_gate
    from helpers.quality.suites import GateInputError

    suite, folder = suite_and_batch
    with pytest.raises(GateInputError, match="threshold"):
        run_gate(folder / "ok.csv", suite, threshold=threshold)
