"""Lab 05's Kafka cluster: three KRaft nodes on 127.0.0.1, from the same jars as the single embedded broker.

Each node is its own JVM (broker and controller in one process, "combined mode"), with a small heap,
its own folder under ``<state>/kafka-cluster/node<N>`` and two ports: clients on ``base + N - 1``,
the controller quorum on ``base + 3 + N - 1``, where ``base`` is ``WORKBOOK_KAFKA_CLUSTER_PORT`` or the
single broker's port + 8 (19100-19105 by default). Internal topics keep three copies, and a write with
``acks=all`` needs two in-sync copies (``min.insync.replicas=2``): the cluster survives one node.
Labs 00-04 keep the single broker (:mod:`helpers.platform.kafka_broker`).

``python -m helpers.platform.kafka_cluster --start | --stop | --status``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from helpers.kafka.clients import is_reachable
from helpers.platform import jvm
from helpers.platform.config import kafka_cluster_port, state_dir
from helpers.platform.kafka_broker import LOG4J2, fetch_jars
from helpers.platform.processes import find_process, start_lock, stop_process, tail

NODES = (1, 2, 3)
HEAP = "320m"
NODE_OVERHEAD_MIB = 300  # metaspace, threads, page cache the JVM touches: measured ~250 MiB over the heap


def base_port() -> int:
    """The first node's client port: ``WORKBOOK_KAFKA_CLUSTER_PORT`` or the single broker's port + 8."""
    return kafka_cluster_port()


def client_port(node: int) -> int:
    return base_port() + node - 1


def controller_port(node: int) -> int:
    return base_port() + len(NODES) + node - 1


def bootstrap_servers() -> str:
    """The three nodes' client addresses (a client needs any one of them)."""
    return ",".join(f"127.0.0.1:{client_port(n)}" for n in NODES)


def home(node: int | None = None) -> Path:
    """``<state>/kafka-cluster`` (or one node's folder in it)."""
    root = state_dir() / "kafka-cluster"
    return root if node is None else root / f"node{node}"


def heap() -> str:
    return os.environ.get("WORKBOOK_KAFKA_CLUSTER_HEAP", HEAP)


def _mib(size: str) -> int:
    value, unit = int(size[:-1]), size[-1].lower()
    return value * 1024 if unit == "g" else value


def required_mib() -> int:
    """Memory the three nodes need: heap plus JVM overhead, each."""
    return len(NODES) * (_mib(heap()) + NODE_OVERHEAD_MIB)


def check_memory() -> tuple[bool, str]:
    """Whether the machine has the memory for three nodes now, and a sentence saying so."""
    import psutil

    free = psutil.virtual_memory().available // 2**20
    need = required_mib()
    if free >= need:
        return True, f"{free:,} MiB available, the 3-node cluster needs ~{need:,} MiB"
    return False, (f"only {free:,} MiB available, the 3-node cluster needs ~{need:,} MiB: close other programs, "
                   f"stop Spark, or lower WORKBOOK_KAFKA_CLUSTER_HEAP (now {heap()}; 256m works)")


def _properties(node: int) -> dict[str, str]:
    voters = ",".join(f"{n}@127.0.0.1:{controller_port(n)}" for n in NODES)
    return {
        "process.roles": "broker,controller", "node.id": str(node), "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{client_port(node)},CONTROLLER://127.0.0.1:{controller_port(node)}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{client_port(node)}",
        "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(home(node) / "data"),
        "num.partitions": "3", "default.replication.factor": "3", "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3", "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
        "share.coordinator.state.topic.replication.factor": "3", "share.coordinator.state.topic.min.isr": "2",
        "group.initial.rebalance.delay.ms": "0", "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false", "log.retention.hours": "48",
        # A SIGKILLed node is noticed when its heartbeats stop: after 4 s here (default 9 s), then it is
        # fenced, its partitions get new leaders and it leaves their ISR. (Too short flaps on a busy laptop.)
        "broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "500",
        "replica.lag.time.max.ms": "10000",
        "num.network.threads": "2", "num.io.threads": "2", "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1", "log.cleaner.threads": "1",
    }


def _config_file(node: int) -> Path:
    return home(node) / "config" / "server.properties"


def node_pid(node: int) -> int | None:
    """The pid of node ``node``'s JVM (found by its own ``server.properties`` on the command line)."""
    return find_process("kafka.Kafka", str(_config_file(node)))


def _prepare(java: str, classpath: str, node: int, cluster_id: str) -> None:
    conf = _config_file(node).parent
    conf.mkdir(parents=True, exist_ok=True)
    (home(node) / "logs").mkdir(parents=True, exist_ok=True)
    _config_file(node).write_text("".join(f"{k}={v}\n" for k, v in _properties(node).items()))
    (conf / "log4j2.properties").write_text(LOG4J2.format(log=home(node) / "logs" / "server.log"))
    if (home(node) / "data" / "meta.properties").exists():
        return
    cmd = [java, "-cp", classpath, f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
           "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(_config_file(node))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"formatting node {node}'s storage failed:\n{done.stdout}{done.stderr}")


def start_node(node: int) -> None:
    """Launch node ``node`` unless it runs (its storage must be formatted: :func:`start_cluster` does it)."""
    if node_pid(node) is not None:
        return
    java = jvm.require_java()
    conf = _config_file(node).parent
    cmd = [java, f"-Xms{heap()}", f"-Xmx{heap()}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
           "-cp", str(fetch_jars() / "*"), "kafka.Kafka", str(_config_file(node))]
    with open(home(node) / "logs" / "stdout.log", "ab") as out:
        subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def start_cluster(timeout: float = 120.0) -> str:
    """Start the three nodes (memory checked first) and wait until all serve; return the bootstrap servers.

    Raises:
        MemoryError: not enough free memory for three JVMs (the message says what to do).
        RuntimeError: a node exited while starting (the message holds its log's last lines).
        TimeoutError: the cluster did not have three live brokers within ``timeout``.
    """
    if all(node_pid(n) is not None for n in NODES) and len(live_brokers()) == len(NODES):
        return bootstrap_servers()
    ok, detail = check_memory()
    if not ok:
        raise MemoryError(detail)
    java = jvm.require_java()
    classpath = str(fetch_jars() / "*")
    with start_lock(home()):
        id_file = home() / "cluster.id"
        if not id_file.exists():  # what `kafka-storage.sh random-uuid` prints
            id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        for node in NODES:
            if node_pid(node) is None:
                _prepare(java, classpath, node, id_file.read_text().strip())
                start_node(node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in NODES:
            if node_pid(node) is None:
                raise RuntimeError(f"Kafka node {node} exited while starting; last lines of its log:\n"
                                   f"{tail(home(node) / 'logs' / 'server.log')}")
        if len(live_brokers()) == len(NODES):
            return bootstrap_servers()
        time.sleep(0.5)
    raise TimeoutError(f"the 3-node cluster did not have 3 live brokers within {timeout:.0f} s (live: "
                       f"{live_brokers()}); see {home()}/node*/logs/server.log")


def live_brokers(timeout_s: float = 3.0) -> list[int]:
    """Ids of the brokers the cluster's metadata lists now (empty when no node answers)."""
    from confluent_kafka.admin import AdminClient

    if not is_reachable(bootstrap_servers(), timeout_s=timeout_s):
        return []
    try:
        meta = AdminClient({"bootstrap.servers": bootstrap_servers(), "log_level": 0}).list_topics(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - "not answering" is the answer here
        return []
    return sorted(meta.brokers)


def kill_node(node: int) -> None:
    """SIGKILL node ``node`` (a crash: no controlled shutdown, no leadership handed over)."""
    pid = node_pid(node)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while node_pid(node) is not None and time.monotonic() < deadline:
            time.sleep(0.05)


def stop_cluster(timeout: float = 30.0) -> list[int]:
    """Stop every running node cleanly (SIGTERM, then SIGKILL); return the nodes that were running."""
    running = [n for n in NODES if node_pid(n) is not None]
    for node in running:
        pid = node_pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
    for node in running:
        stop_process(lambda n=node: node_pid(n), timeout)
    return running


def partitions(topic: str, bootstrap: str | None = None, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """``[{partition, leader, replicas, isr, under_replicated}]`` of ``topic``: who leads, who is in sync.

    A topic created a moment ago may not have reached the metadata of the node that answers yet (KRaft
    propagates it to each broker): asked again until ``timeout_s``, then LookupError.
    """
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap or bootstrap_servers(), "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while True:
        meta = admin.list_topics(topic, timeout=max(1.0, deadline - time.monotonic()))
        found = meta.topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            break
        if time.monotonic() >= deadline:
            raise LookupError(f"topic {topic!r} is not in the cluster's metadata after {timeout_s:.0f} s "
                              f"({found.error if found else 'missing'})")
        time.sleep(0.2)
    return [{"partition": p.id, "leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs),
             "under_replicated": len(p.isrs) < len(p.replicas)} for p in sorted(found.partitions.values(), key=lambda p: p.id)]


def cluster_status() -> dict[str, Any]:
    """Each node's pid, ports and whether it answers; and the brokers the metadata lists."""
    nodes = {n: {"pid": node_pid(n), "client_port": client_port(n), "controller_port": controller_port(n),
                 "reachable": is_reachable(f"127.0.0.1:{client_port(n)}", timeout_s=1.0)} for n in NODES}
    return {"bootstrap_servers": bootstrap_servers(), "nodes": nodes, "live_brokers": live_brokers(),
            "memory": check_memory()[1]}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Lab 05's 3-node Kafka cluster on 127.0.0.1.")
    group = parser.add_mutually_exclusive_group(required=True)
    for flag in ("--start", "--stop", "--status"):
        group.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    if args.start:
        print(start_cluster())
    elif args.stop:
        print(f"stopped nodes {stop_cluster()}")
    else:
        print(json.dumps(cluster_status(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
