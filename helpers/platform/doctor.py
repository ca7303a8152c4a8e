"""The environment check: one line per item, and for each problem a hint a learner can act on.

Run it as ``make doctor`` or ``python -m helpers.platform.doctor``; every lab's first cell calls
:func:`doctor`. It never raises: a problem is a line with a hint, not a traceback.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from helpers.platform.config import external_kafka, kafka_bootstrap_servers, kafka_port, spark_master

MIN_PYTHON = (3, 10)
MIN_FREE_GIB = 3.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        mark = "OK  " if self.ok else "FAIL"
        text = f"[{mark}] {self.name:<14} {self.detail}"
        return text + (f"\n       -> {self.hint}" if self.hint else "")


def check_python() -> Check:
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("python", ok, f"{platform.python_version()} ({sys.executable})",
                 "" if ok else "use Python 3.11: `make lab` creates .venv with it")


def check_java() -> Check:
    from helpers.platform import jvm

    java = jvm.java_executable()
    found = jvm.java_version(java) if java else None
    if not found:
        return Check("java", False, "not found", jvm.JAVA_HINT)
    ok = found[0] >= jvm.MIN_JAVA
    return Check("java", ok, f"{found[1]} ({java})",
                 "" if ok else f"Kafka 4 and Spark 4 need Java {jvm.MIN_JAVA}+: {jvm.JAVA_HINT}")


def check_maven() -> Check:
    """Maven is needed once, to fetch the broker's and the connector's jars from Maven Central."""
    import shutil

    from helpers.platform.config import jars_dir

    cached = sorted(p.parent.name for p in jars_dir().glob("*/.complete"))
    mvn = shutil.which("mvn")
    if mvn:
        return Check("maven", True, f"{mvn}; jars cached: {', '.join(cached) or 'none yet'}")
    if len(cached) >= 2:
        return Check("maven", True, f"not installed, not needed: jars cached ({', '.join(cached)})")
    return Check("maven", False, "not installed and the jars are not cached yet",
                 "install Maven once (Debian/Ubuntu: `sudo apt-get install maven`; "
                 "macOS: `brew install maven`), or use docker-compose")


def check_memory() -> Check:
    import psutil

    free = psutil.virtual_memory().available / 2**30
    ok = free >= MIN_FREE_GIB
    return Check("memory", ok, f"{free:.1f} GiB available",
                 "" if ok else f"close other programs: Spark + Kafka + Airflow want ~{MIN_FREE_GIB:.0f} GiB")


def check_ports() -> Check:
    """The embedded broker's ports must be free or held by our own broker."""
    from helpers.platform.kafka_broker import broker_pid
    from helpers.platform.ports import port_owner

    if external_kafka():
        return Check("ports", True, "external Kafka: no local port needed")
    ours = broker_pid()
    taken = [(p, port_owner(p)) for p in (kafka_port(), kafka_port() + 1)]
    foreign = [(p, who) for p, who in taken if who and ours is None]
    if foreign:
        port, who = foreign[0]
        return Check("ports", False, f"port {port} is taken by {who}",
                     "stop that process, or set WORKBOOK_KAFKA_PORT to a free port")
    state = "used by our broker" if ours else "free"
    return Check("ports", True, f"{kafka_port()}/{kafka_port() + 1} {state}")


def check_kafka() -> Check:
    from helpers.kafka.clients import is_reachable
    from helpers.platform.kafka_broker import kafka_version

    servers = kafka_bootstrap_servers()
    if is_reachable(servers, timeout_s=3.0):
        where = "external" if external_kafka() else f"embedded Kafka {kafka_version()}"
        return Check("kafka", True, f"{servers} answers ({where})")
    if external_kafka():
        return Check("kafka", False, f"KAFKA_BOOTSTRAP_SERVERS={servers} does not answer",
                     "is the container up (`docker compose ps`)? From the host use "
                     "localhost:19092; inside compose use kafka:9092; unset it to use the embedded broker")
    return Check("kafka", False, f"no broker on {servers}",
                 "run `make services` (or helpers.platform.kafka_broker.start_broker() in a cell); "
                 "or set KAFKA_BOOTSTRAP_SERVERS to your own broker")


def check_spark() -> Check:
    from helpers.spark import session as spark

    try:
        import pyspark
    except ImportError:
        return Check("spark", False, "pyspark not installed", "run `make install`")
    try:
        jars = spark.connector_jars()
    except RuntimeError as err:
        return Check("spark", False, f"pyspark {pyspark.__version__}", str(err).splitlines()[0])
    return Check("spark", True, f"pyspark {pyspark.__version__}, master {spark_master()}, "
                 f"Kafka connector {spark.connector_version()} ({len(jars)} jars)")


def check_airflow() -> Check:
    try:
        from importlib.metadata import version

        airflow_version = version("apache-airflow")
    except Exception:  # PackageNotFoundError, or a broken install
        return Check("airflow", False, "not installed", "run `make install`")
    from helpers.platform.config import airflow_home

    db = airflow_home() / "airflow.db"
    ok = db.exists()
    return Check("airflow", ok, f"{airflow_version}, AIRFLOW_HOME={airflow_home()}",
                 "" if ok else "metadata DB not migrated yet: run `make services` "
                 "(or helpers.airflow.setup.setup_airflow() in a cell)")


def check_api() -> Check:
    """Lab 05's events API: the embedded one (started by ``make services``) or ``WORKBOOK_API_URL``."""
    from helpers.api.server import api_status

    info = api_status()
    if info["reachable"]:
        rows = info.get("health", {}).get("rows", "?")
        return Check("api", True, f"{info['url']} answers ({info['mode']}, {rows:,} events)"
                     if isinstance(rows, int) else f"{info['url']} answers ({info['mode']})")
    if info["mode"] == "external":
        return Check("api", False, f"WORKBOOK_API_URL={info['url']} does not answer",
                     "is the container up (`docker compose ps api`)? Unset it to use the embedded API")
    return Check("api", False, f"no events API on {info['url']}",
                 "run `make services` (or helpers.api.server.start_api() in a cell); "
                 "WORKBOOK_API_PORT picks another port")


def check_monitoring() -> Check:
    """Lab 05's Prometheus, Alertmanager and Pushgateway: installed (OS packages) and whether they run."""
    import re
    import subprocess

    from helpers.platform import monitoring_services as ms

    found, missing = [], []
    for name in ("prometheus", "alertmanager", "pushgateway"):
        exe = ms.program(ms.SERVICES[name])
        if exe is None:
            missing.append(name)
            continue
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        version = re.search(r"version (\S+)", out.stdout + out.stderr)
        found.append(f"{name} {version.group(1) if version else '?'}")
    if missing:
        return Check("monitoring", False, f"missing: {', '.join(missing)}", ms.INSTALL_HINT)
    import shutil

    from helpers.platform import opensearch_node

    if shutil.which("javac") is None:  # the embedded OpenSearch compiles its launcher once
        return Check("monitoring", False, f"{', '.join(found)}; javac missing (OpenSearch)", opensearch_node.JDK_HINT)
    up = [name for name, info in ms.monitoring_status().items() if info["ready"]]
    state = f"running: {', '.join(up)}" if up else "not running (Lab 05: `make monitoring`, or `python -m helpers.platform.services start monitoring`)"
    return Check("monitoring", True, f"{', '.join(found)}; {state}")


def check_cluster() -> Check:
    """Lab 05's 3-node Kafka cluster (optional): its nodes' state, and whether the memory for it is there."""
    from helpers.platform import kafka_cluster

    info = kafka_cluster.cluster_status()
    up = [n for n, node in info["nodes"].items() if node["pid"] is not None]
    if not up:
        return Check("kafka-cluster", True, f"not running (Lab 05, optional: `python -m helpers.platform.kafka_cluster "
                                            f"--start`); {info['memory']}")
    if len(up) < len(info["nodes"]):
        return Check("kafka-cluster", False, f"only nodes {up} of {list(info['nodes'])} run; brokers in the metadata "
                                             f"{info['live_brokers']} ({info['bootstrap_servers']})",
                     "a node died or was killed: `python -m helpers.platform.kafka_cluster --start` starts the "
                     "missing ones (or --stop, then --start)")
    return Check("kafka-cluster", True, f"nodes {up} running, brokers {info['live_brokers']} answer "
                                        f"({info['bootstrap_servers']})")


CHECKS: dict[str, Callable[[], Check]] = {
    "python": check_python, "java": check_java, "maven": check_maven, "memory": check_memory, "ports": check_ports,
    "kafka": check_kafka, "spark": check_spark, "airflow": check_airflow, "api": check_api,
    "monitoring": check_monitoring, "kafka-cluster": check_cluster,
}


def doctor(services: Iterable[str] = ("kafka", "spark", "airflow"), quiet: bool = False) -> list[Check]:
    """Check the machine and the given services; print one line per check.

    Args:
        services: which of ``kafka``, ``spark``, ``airflow``, ``api``, ``monitoring``, ``kafka-cluster`` to check
            (the base checks always run).
        quiet: return the results without printing.

    Returns:
        The checks, in order. ``all(c.ok for c in result)`` means ready.
    """
    names = ["python", "java", "maven", "memory"] + (["ports"] if "kafka" in services else [])
    names += [s for s in ("kafka", "spark", "airflow", "api", "monitoring", "kafka-cluster") if s in services]
    results = []
    for name in names:
        try:
            result = CHECKS[name]()
        except Exception as err:  # the doctor reports, it never crashes a notebook
            result = Check(name, False, f"check crashed: {type(err).__name__}: {err}",
                           "please report this with the line above")
        results.append(result)
        if not quiet:
            print(result.line(), flush=True)
    if not quiet:
        bad = [r.name for r in results if not r.ok]
        print("Ready." if not bad else f"{len(bad)} problem(s): {', '.join(bad)} (hints above).")
    return results


def main() -> int:
    results = doctor(("kafka", "spark", "airflow", "monitoring", "kafka-cluster"))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
