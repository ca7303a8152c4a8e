"""Lab 03's streaming plumbing against the live broker: DLQ routing, commits, metrics, lag, fail-fast,
and a consumer group that loses nothing when a member is SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import json
import time

import pytest

from helpers.kafka.admin import (
    committed_offsets,
    consumer_lag,
    describe_topic,
    end_offsets,
    ensure_topic,
    group_members,
)
from helpers.kafka.clients import BrokerUnavailable, produce_json, read_topic, require_broker, unique_topic
from helpers.streaming.group import ConsumerGroup
from helpers.streaming.metrics import StreamMetrics, scrape
from helpers.streaming.monitor import GroupMonitor
from helpers.streaming.scenario import run_scenario
from helpers.streaming.stream import PoisonMessage, run_stream
from helpers.viz import plot_scenario


@pytest.fixture
def topics(kafka_broker) -> dict[str, str]:
    names = {name: unique_topic(f"test-lab03-{name}") for name in ("events", "out", "dlq")}
    ensure_topic(names["events"], partitions=3)
    ensure_topic(names["out"], partitions=1)
    ensure_topic(names["dlq"], partitions=1)
    return names


def strict_process(raw: bytes):
    """Emit the event id; reject text that is not JSON as poison; crash on a negative amount (a bug)."""
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise PoisonMessage("bad_json", str(exc)) from exc
    if "user_id" not in event:
        raise PoisonMessage("missing_field", "user_id")
    if event["amount"] < 0:
        raise ZeroDivisionError("a bug in the processing function")
    return [(str(event["user_id"]), {"event_id": event["event_id"]})]


def test_poison_messages_go_to_the_dlq_with_reason_and_origin_and_good_ones_all_reach_the_sink(topics):
    good = [{"event_id": i, "user_id": i % 7, "amount": 1.0} for i in range(200)]
    poison = [b"{not json", json.dumps({"event_id": 900, "amount": 1}).encode(),
              json.dumps({"event_id": 901, "user_id": 1, "amount": -5}).encode()]
    produce_json(topics["events"], good, key_field="user_id")
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=require_broker(), acks="all")
    try:
        for raw in poison:
            producer.send(topics["events"], value=raw)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    group = unique_topic("test-lab03-group")
    with StreamMetrics("t") as metrics:
        metrics.serve()
        stats = run_stream(strict_process, topics["events"], group_id=group, sink_topic=topics["out"],
                           dlq_topic=topics["dlq"], metrics=metrics, idle_timeout_s=20, max_messages=203)
        scraped = scrape(metrics.url)
    assert (stats.consumed, stats.emitted, stats.dead_lettered) == (203, 200, 3), stats
    out = read_topic(topics["out"], idle_timeout_s=2)
    assert sorted(r.value["event_id"] for r in out) == list(range(200))
    dead = read_topic(topics["dlq"], idle_timeout_s=2, decode_json=False)
    assert sorted(r.headers["reason"] for r in dead) == ["bad_json", "missing_field", "processing_error"]
    assert {r.value for r in dead} == set(poison), "the DLQ keeps the original bytes"
    for record in dead:
        assert record.headers["original_topic"] == topics["events"]
        origin = read_topic(topics["events"], idle_timeout_s=1, decode_json=False)
        match = [r for r in origin if r.partition == int(record.headers["original_partition"])
                 and r.offset == int(record.headers["original_offset"])]
        assert match and match[0].value == record.value, "partition/offset headers point at the original"
    assert "ZeroDivisionError" in next(r.headers["detail"] for r in dead if r.headers["reason"] == "processing_error")
    assert committed_offsets(group, topics["events"]) == end_offsets(topics["events"]), "everything committed"
    assert scraped["t_events_processed_total"] == 203
    assert scraped["t_dlq_messages_total{reason=bad_json}"] == 1
    assert scraped["t_processing_latency_seconds_count"] == 203
    assert metrics.snapshot()["t_events_emitted_total"] == 200


def test_a_crash_mid_batch_leaves_the_batch_uncommitted(topics):
    """A process that dies mid-batch commits nothing of that batch: the restarted loop processes it again."""
    produce_json(topics["events"], [{"event_id": i, "user_id": 1, "amount": 1} for i in range(10)], key_field="user_id")
    group = unique_topic("test-lab03-group")

    def process(raw: bytes):
        raise SystemExit("the process dies mid-batch")  # not an Exception: nothing may be committed

    # Generous bounds cost nothing here (the first message ends the crash run, max_messages the second); a
    # consumer whose first assignment comes without partitions (stale metadata) needs a rebalance to recover.
    with pytest.raises(SystemExit):
        run_stream(process, topics["events"], group_id=group, sink_topic=topics["out"], dlq_topic=topics["dlq"],
                   idle_timeout_s=20)
    assert sum(committed_offsets(group, topics["events"]).values()) == 0
    stats = run_stream(strict_process, topics["events"], group_id=group, sink_topic=topics["out"],
                       dlq_topic=topics["dlq"], idle_timeout_s=20, max_messages=10)
    assert stats.emitted == 10, "the restarted loop processes the batch the crash left"


def test_consumer_lag_counts_uncommitted_messages(topics):
    produce_json(topics["events"], [{"event_id": i, "user_id": i, "amount": 1} for i in range(60)], key_field="user_id")
    group = unique_topic("test-lab03-group")
    assert sum(consumer_lag(group, topics["events"]).values()) == 60
    run_stream(strict_process, topics["events"], group_id=group, sink_topic=topics["out"], dlq_topic=topics["dlq"],
               max_messages=25, max_poll_records=5, idle_timeout_s=20)
    assert sum(consumer_lag(group, topics["events"]).values()) == 35
    assert describe_topic(topics["events"])["partitions"] == 3
    with pytest.raises(KeyError):
        describe_topic(unique_topic("test-lab03-no-such-topic"))


def test_missing_broker_fails_fast_with_the_doctors_hint(monkeypatch, free_port):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port}")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="does not answer.*docker compose ps"):
        run_stream(strict_process, "x", group_id="g", sink_topic="y", dlq_topic="z")
    with pytest.raises(BrokerUnavailable):
        read_topic("x")
    assert time.monotonic() - started < 30, "a missing broker must fail in seconds, not hang"
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    monkeypatch.setenv("WORKBOOK_KAFKA_PORT", str(free_port))
    with pytest.raises(BrokerUnavailable, match="make services"):
        require_broker()


def test_sigkilled_member_restarted_loses_no_event_and_duplicates_are_recognised(topics):
    """Real processes in one group: w1 and w2 share 3 partitions, w2 is SIGKILLed mid-stream, then restarted."""
    events = [{"event_id": i, "user_id": i % 50, "amount": 1.0} for i in range(1_500)]
    group = ConsumerGroup(topics["events"], unique_topic("test-lab03-scale"), topics["out"], topics["dlq"],
                          work_ms=4, max_poll_records=50)
    run = run_scenario(group, events, rate=150, progress=False,  # 10 s of events: the kill lands mid-stream
                       schedule=[(0, "start", "w1"), (1, "start", "w2"), (6.9, "await", "w2"), (7, "kill", "w2"),
                                 (8.5, "start", "w2")])
    kill_at = run.actions[2][0]
    assert any("w2" in s["owners"].values() for s in run.samples if s["t"] < kill_at), "w2 owned partitions when killed"
    assert group.members["w2"].returncode == 0, "the restarted w2 was stopped cleanly at the end"
    assert [a[1:] for a in run.actions] == [("start", "w1"), ("start", "w2"), ("kill", "w2"), ("start", "w2")]
    ids = [r.value["event_id"] for r in run.outputs]
    assert set(ids) == set(range(1_500)), f"lost {sorted(set(range(1_500)) - set(ids))[:10]}"
    per_worker = run.per_worker()
    assert per_worker.get("w2", 0) > 0, f"w2 processed events before it was killed: {per_worker}"
    assert per_worker.get("w2#2", 0) > 0 or per_worker.get("w1", 0) > 0, per_worker
    duplicates = len(ids) - len(set(ids))
    assert sum(per_worker.values()) == 1_500 + duplicates
    owners = [set(s["owners"].values()) for s in run.samples]
    # Which members the monitor catches owning partitions at the same instant depends on its sampling
    # and on rebalance timing on a loaded machine (once seen failing in a full suite run): each one, alone.
    assert any("w1" in o for o in owners) and any("w2" in o for o in owners), "the monitor saw each member own partitions"
    assert group_members(group.group_id) == {}, "every member left the group at the end"
    assert run.samples[-1]["lag"] and sum(run.samples[-1]["lag"].values()) == 0, "the group drained"
    assert plot_scenario(run).axes, "the chart draws"
    assert group.alive() == []


def test_group_monitor_reports_lag_without_members(topics):
    produce_json(topics["events"], [{"event_id": i, "user_id": i, "amount": 1} for i in range(30)], key_field="user_id")
    monitor = GroupMonitor(unique_topic("test-lab03-idle"), topics["events"], interval_s=0.2).start()
    try:
        deadline = time.monotonic() + 10
        while not monitor.samples and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        monitor.stop()
    assert monitor.total_lag() == 30 and monitor.samples[-1]["owners"] == {}
