"""The embedded services: a real broker that plain kafka-python can use, start/stop/status, Spark."""

from __future__ import annotations

import json
import os
import time
import uuid

import psutil
import pytest

from helpers.kafka.admin import ensure_topic
from helpers.kafka.clients import consume_json, is_reachable, produce_json
from helpers.platform import config, services
from helpers.platform.kafka_broker import broker_status, log_file, start_broker, stop_broker


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    proc = psutil.Process(pid)
    return {(c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN}


def test_plain_kafka_python_round_trip(kafka_broker):
    """The broker works for a client that knows nothing of our helpers."""
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"plain-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    try:
        for i in range(3):
            producer.send(topic, json.dumps({"n": i}).encode())
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    try:
        got = []
        for message in consumer:
            got.append(json.loads(message.value))
            if len(got) == 3:
                break
    finally:
        consumer.close()
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_helpers_round_trip_keeps_order_per_key(kafka_broker):
    topic = f"helpers-{uuid.uuid4().hex[:8]}"
    ensure_topic(topic, partitions=3)
    ensure_topic(topic, partitions=3)  # a second call is not an error
    records = [{"user": u, "seq": s} for s in range(5) for u in ("a", "b")]
    assert produce_json(topic, records, key_field="user") == 10
    got = consume_json(topic, max_records=10, timeout_s=10)
    assert len(got) == 10
    for user in ("a", "b"):
        assert [r["seq"] for r in got if r["user"] == user] == list(range(5))


@pytest.mark.skipif(config.external_kafka() is not None, reason="uses an external broker")
def test_embedded_broker_listens_on_loopback_only(kafka_broker):
    pid = broker_status()["pid"]
    assert pid, "the embedded broker should report its pid"
    addresses = _listening_addresses(pid)
    assert addresses, "the broker should listen somewhere"
    assert {ip for ip, _ in addresses} <= {"127.0.0.1", "::ffff:127.0.0.1"}, addresses
    assert ("127.0.0.1", config.kafka_port()) in {(ip.replace("::ffff:", ""), p) for ip, p in addresses}


@pytest.mark.skipif(config.external_kafka() is not None, reason="uses an external broker")
def test_second_broker_start_stop_leaves_nothing(tmp_path, monkeypatch, kafka_broker):
    """A broker in a fresh state folder: formatted on first start, stopped cleanly, no process left."""
    monkeypatch.setenv("WORKBOOK_JARS", str(config.jars_dir()))  # reuse the resolved jars
    monkeypatch.setenv("WORKBOOK_STATE", str(tmp_path / "state"))
    port = free_port_pair()
    monkeypatch.setenv("WORKBOOK_KAFKA_PORT", str(port))
    t0 = time.perf_counter()
    servers = start_broker(timeout=60)
    print(f"fresh broker ready in {time.perf_counter() - t0:.1f} s")
    try:
        assert servers == f"127.0.0.1:{port}"
        assert (tmp_path / "state" / "kafka" / "data" / "meta.properties").exists()
        status = broker_status()
        assert status["reachable"] and status["mode"] == "embedded"
        pid = status["pid"]
        assert start_broker() == servers and broker_status()["pid"] == pid  # reused
        assert log_file().stat().st_size > 0
    finally:
        assert stop_broker() is True
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert broker_status()["reachable"] is False
    assert stop_broker() is False  # stopping twice is fine
    # the suite's broker is untouched
    monkeypatch.undo()
    assert is_reachable(kafka_broker)


def free_port_pair() -> int:
    """A free port whose neighbour (the controller's, port + 1) is free too."""
    from helpers.platform.ports import free_port, port_in_use

    for _ in range(50):
        port = free_port()
        if port < 65535 and not port_in_use(port + 1):
            return port
    raise RuntimeError("no two neighbouring free ports on 127.0.0.1")


def test_port_taken_by_another_process_is_named(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("WORKBOOK_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        monkeypatch.setenv("WORKBOOK_KAFKA_PORT", str(sock.getsockname()[1]))
        with pytest.raises(RuntimeError, match=rf"already taken by .*pid {os.getpid()}"):
            start_broker(timeout=5)


def test_external_broker_variable_wins(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    assert config.kafka_bootstrap_servers() == "kafka:9092"
    assert start_broker() == "kafka:9092"  # nothing is started for an external broker
    monkeypatch.setenv("SPARK_MASTER", "spark://spark-master:7077")
    assert config.spark_master() == "spark://spark-master:7077"


def test_status_reports_the_running_broker(kafka_broker, capsys):
    assert services.status() == 0
    out = capsys.readouterr().out
    assert "kafka    up" in out and kafka_broker in out


def test_spark_session_is_built_once_and_reads_kafka(spark, kafka_broker):
    from helpers.spark.session import get_spark

    assert get_spark() is spark
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    topic = f"spark-{uuid.uuid4().hex[:8]}"
    produce_json(topic, [{"n": i} for i in range(4)])
    rows = (spark.read.format("kafka").option("kafka.bootstrap.servers", kafka_broker)
            .option("subscribe", topic).option("startingOffsets", "earliest").load()
            .selectExpr("CAST(value AS STRING) AS v").collect())
    assert sorted(json.loads(r.v)["n"] for r in rows) == [0, 1, 2, 3]
