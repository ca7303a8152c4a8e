"""Lab 05's 3-node KRaft cluster on 127.0.0.1 (three JVMs, the embedded broker's jars).

The leader of a busy partition is SIGKILLed mid-stream: another replica takes over, no record the
cluster acknowledged (acks=all, min.insync.replicas=2) is lost, and the metadata shows the
under-replicated partitions until the node is back.
"""

from __future__ import annotations

import time
import uuid

import pytest

from helpers.platform import kafka_cluster as kc


@pytest.fixture(scope="module")
def cluster() -> str:
    """The suite's cluster (ports from WORKBOOK_KAFKA_PORT + 8), stopped after this module."""
    yield kc.start_cluster()
    kc.stop_cluster()


def test_not_enough_memory_is_refused_before_any_node_starts(monkeypatch):
    """Check that the memory check runs first and says what to do."""
    before = [kc.node_pid(n) for n in kc.NODES]
    monkeypatch.setenv("WORKBOOK_KAFKA_CLUSTER_HEAP", "64g")
    monkeypatch.setenv("WORKBOOK_KAFKA_CLUSTER_PORT", "1")  # no node answers there: start_cluster must try
    with pytest.raises(MemoryError, match=r"needs ~197,508 MiB.*WORKBOOK_KAFKA_CLUSTER_HEAP"):
        kc.start_cluster()
    after = [kc.node_pid(n) for n in kc.NODES]
    assert after == before, f"no node should have been started or stopped by a refused start: {before} -> {after}"


def test_killing_the_leader_mid_stream_fails_over_and_loses_no_acknowledged_record(cluster):
    """Check fail-over: new leader, every acknowledged record readable, under-replication shown, then healed."""
    from helpers.serving.failover import failover_drill
    from helpers.serving.topics import ensure_topics

    topic = f"drill-{uuid.uuid4().hex[:8]}"
    ensure_topics({"events": topic}, bootstrap=cluster, partitions=3, replication=3, min_insync=2)
    before = kc.partitions(topic)
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in before), (
        f"expected 3 replicas, all in sync, for every partition, got {before}")
    result = failover_drill(cluster, topic, kc.kill_node, lambda: kc.partitions(topic), rate=500, seconds=8,
                            kill_at_s=2)
    print(result)
    assert result.acked > 0 and not result.lost and result.duplicates == 0, (
        f"every acknowledged record must be readable once after the leader died (acks=all, min.insync.replicas=2), "
        f"got {result}")
    assert result.new_leader not in (-1, result.killed_leader), (
        f"another replica should lead partition 0 after node {result.killed_leader} died, got {result.new_leader}")
    after = kc.partitions(topic)
    assert any(p["under_replicated"] for p in after), (
        f"with a node down its partitions should show as under-replicated (ISR < replicas), got {after}")

    kc.start_node(result.killed_leader)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and any(p["under_replicated"] for p in kc.partitions(topic)):
        time.sleep(1)
    healed = kc.partitions(topic)
    assert not any(p["under_replicated"] for p in healed), (
        f"after node {result.killed_leader} came back it should catch up and rejoin every ISR within 90 s, got {healed}")


def test_doctor_and_services_status_list_the_running_cluster(cluster, capsys):
    """Check that `make doctor` and `services status` show the three nodes while the cluster runs."""
    from helpers.platform import doctor, services

    check = doctor.check_cluster()
    assert check.ok and "nodes [1, 2, 3] running" in check.detail, (
        f"expected the doctor to report nodes [1, 2, 3] running, got {check.line()}")
    services.status()
    out = capsys.readouterr().out
    for node in kc.NODES:
        assert f"kafka-cluster node {node} up" in out, (
            f"expected `services status` to list cluster node {node} as up, got:\n{out}")
