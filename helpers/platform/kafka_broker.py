"""The embedded Kafka broker: a real Apache Kafka 4.x in KRaft combined mode, started and stopped here.

Jars come from Maven Central once (``helpers/platform/poms/kafka-broker.pom.xml``). The broker listens
on 127.0.0.1 only, keeps its data and log under ``<state>/kafka`` and survives notebook restarts; stop
it with ``make stop``. When ``KAFKA_BOOTSTRAP_SERVERS`` is set (docker-compose), nothing is started
and every helper talks to that broker instead. The clients are in :mod:`helpers.kafka`.

``python -m helpers.platform.kafka_broker --fetch-jars | --start | --stop | --status``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from helpers.kafka.clients import is_reachable
from helpers.platform import jvm
from helpers.platform.config import external_kafka, kafka_bootstrap_servers, kafka_port, state_dir
from helpers.platform.processes import find_process, start_lock, stop_process, tail

POM = "kafka-broker.pom.xml"


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def kafka_version() -> str:
    """Return the Kafka version pinned in the broker's pom."""
    return jvm.pom_property(POM, "kafka.version")


def home() -> Path:
    """Return the embedded broker's folder: ``<state>/kafka`` (config, data, logs, pid)."""
    return state_dir() / "kafka"


def log_file() -> Path:
    """Return the broker's log file (what to read when it will not start)."""
    return home() / "logs" / "server.log"


def fetch_jars() -> Path:
    """Resolve the broker's jars from Maven Central once and return their folder."""
    return jvm.resolve_jars(POM, f"kafka-{kafka_version()}")


def _write_config() -> Path:
    port = kafka_port()
    data = home() / "data"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{port + 1}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "48",
        # a laptop, not a data centre: fewer threads start faster and leave cores to Spark
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
    }
    conf = home() / "config"
    conf.mkdir(parents=True, exist_ok=True)
    (home() / "logs").mkdir(parents=True, exist_ok=True)
    (conf / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (conf / "log4j2.properties").write_text(LOG4J2.format(log=log_file()))
    return conf


def broker_pid() -> int | None:
    """Return the pid of our running broker (found by its command line, which names our ``server.properties``)."""
    return find_process("kafka.Kafka", str(home() / "config" / "server.properties"))


def _format_storage(java: str, classpath: str, conf: Path) -> None:
    if (home() / "data" / "meta.properties").exists():
        return
    # What `kafka-storage.sh random-uuid` prints: a random UUID, URL-safe base64 without padding.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    cmd = [java, "-cp", classpath, f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
           "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",  # an id may start with "-"
           "-c", str(conf / "server.properties")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"Formatting Kafka storage failed:\n{done.stdout}{done.stderr}")


def start_broker(timeout: float = 60.0) -> str:
    """Start the embedded broker if it is not running, and wait until it serves metadata.

    Safe to call again: a running broker is reused. With ``KAFKA_BOOTSTRAP_SERVERS`` set, nothing
    is started: the external broker's address is returned.

    Args:
        timeout: seconds to wait for the broker to answer before giving up.

    Returns:
        The bootstrap servers string clients should use.
    """
    if external_kafka():
        return kafka_bootstrap_servers()
    bootstrap = kafka_bootstrap_servers()
    if broker_pid() is not None and is_reachable(bootstrap):
        return bootstrap
    from helpers.platform.ports import port_owner

    for port in (kafka_port(), kafka_port() + 1):
        owner = port_owner(port)
        if owner and broker_pid() is None:
            raise RuntimeError(
                f"Port {port} is already taken by {owner}: stop that process, or set "
                f"WORKBOOK_KAFKA_PORT to another port (the controller uses port + 1)."
            )
    java = jvm.require_java()
    classpath = str(fetch_jars() / "*")
    with start_lock(home()):  # two notebooks starting at once get one broker
        _launch_once(java, classpath)
    return _wait_until_ready(bootstrap, timeout)


def _launch_once(java: str, classpath: str) -> None:
    """Format storage on first use and launch the broker JVM unless one runs already."""
    conf = _write_config()
    if broker_pid() is None:
        _format_storage(java, classpath, conf)
        heap = os.environ.get("WORKBOOK_KAFKA_HEAP", "512m")
        cmd = [java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
               "-cp", classpath, "kafka.Kafka", str(conf / "server.properties")]
        with open(home() / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        del proc  # found again by its command line: see broker_pid()
        time.sleep(0.5)


def _wait_until_ready(bootstrap: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker_pid() is None:
            raise RuntimeError(f"The Kafka broker exited while starting. Last lines of "
                               f"{log_file()}:\n{tail(log_file())}")
        if is_reachable(bootstrap, timeout_s=2.0):
            return bootstrap
        time.sleep(0.3)
    raise TimeoutError(f"The Kafka broker did not answer within {timeout:.0f} s. "
                       f"Last lines of {log_file()}:\n{tail(log_file())}")


def stop_broker(timeout: float = 30.0) -> bool:
    """Stop the embedded broker cleanly (SIGTERM, then SIGKILL after ``timeout``).

    Returns:
        True if a broker was running and is now stopped, False if none was running.
    """
    return stop_process(broker_pid, timeout)


def broker_status() -> dict[str, Any]:
    """Return what is known about the broker: mode, address, pid and whether it answers."""
    external = external_kafka()
    bootstrap = kafka_bootstrap_servers()
    return {
        "mode": "external" if external else "embedded",
        "bootstrap_servers": bootstrap,
        "pid": None if external else broker_pid(),
        "reachable": is_reachable(bootstrap, timeout_s=2.0),
        "version": None if external else kafka_version(),
        "log": None if external else str(log_file()),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.platform.kafka_broker --fetch-jars | --start | --stop | --status`` (Binder's build uses it)."""
    import argparse

    parser = argparse.ArgumentParser(description="The embedded Kafka broker.")
    group = parser.add_mutually_exclusive_group(required=True)
    for flag in ("--fetch-jars", "--start", "--stop", "--status"):
        group.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    if args.fetch_jars:
        print(fetch_jars())
    elif args.start:
        print(start_broker())
    elif args.stop:
        print("stopped" if stop_broker() else "was not running")
    else:
        print(json.dumps(broker_status(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
