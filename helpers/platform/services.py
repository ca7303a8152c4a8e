"""Start, stop and show the embedded services: ``python -m helpers.platform.services start|stop|status``.

``start`` brings up the Kafka broker, resolves Spark's Kafka connector and migrates Airflow's
metadata DB (Airflow and Spark then run inside the notebook's own process). The Makefile's
``services``, ``stop`` and ``status`` targets call this.
"""

from __future__ import annotations

import argparse
import time


def start(what: str = "all") -> dict[str, float]:
    """Start the services named by ``what`` (``kafka``, ``api``, ``airflow``, ``spark``, ``all``, or
    ``airflow-ui``, which is never part of ``all``: it costs ~2 GB for a UI the labs don't need, or
    ``monitoring``, Lab 05's Prometheus, Alertmanager, Pushgateway, alert receiver and OpenSearch, also never in
    ``all``).

    Returns:
        Seconds each step took, for the figures in ``make bench`` and the README.
    """
    from helpers.platform.kafka_broker import start_broker
    from helpers.spark import session as spark

    timings: dict[str, float] = {}
    if what in ("kafka", "all"):
        t0 = time.perf_counter()
        servers = start_broker()
        timings["kafka"] = time.perf_counter() - t0
        print(f"kafka    ready on {servers} in {timings['kafka']:.1f} s", flush=True)
    if what in ("api", "all"):
        from helpers.api.server import start_api

        t0 = time.perf_counter()
        url = start_api()
        timings["api"] = time.perf_counter() - t0
        print(f"api      events API ready on {url} in {timings['api']:.1f} s", flush=True)
    if what in ("spark", "all"):
        t0 = time.perf_counter()
        jars = spark.connector_jars()
        timings["spark"] = time.perf_counter() - t0
        print(f"spark    Kafka connector {spark.connector_version()} ({len(jars)} jars) "
              f"in {timings['spark']:.1f} s", flush=True)
    if what == "airflow-ui":
        from helpers.platform import airflow_ui

        t0 = time.perf_counter()
        url = airflow_ui.start_standalone()
        timings["airflow-ui"] = time.perf_counter() - t0
        print(f"airflow  UI on {url} in {timings['airflow-ui']:.1f} s (no login; `make stop` stops it)")
    if what == "monitoring":  # Lab 05 only, never part of `all`: Labs 00-04 don't pay for it
        from helpers.platform.monitoring_services import SERVICES, start_monitoring

        for name, seconds in start_monitoring().items():
            timings[name] = seconds
            print(f"{name:<8} ready on {SERVICES[name].url} in {seconds:.1f} s", flush=True)
        from helpers.platform.opensearch_node import start_opensearch

        t0 = time.perf_counter()
        url = start_opensearch()
        timings["opensearch"] = time.perf_counter() - t0
        print(f"opensearch ready on {url} in {timings['opensearch']:.1f} s (logs)", flush=True)
    if what in ("airflow", "all"):
        from helpers.airflow.setup import setup_airflow
        t0 = time.perf_counter()
        home = setup_airflow()
        timings["airflow"] = time.perf_counter() - t0
        print(f"airflow  metadata DB ready in {home} in {timings['airflow']:.1f} s", flush=True)
    return timings


def stop(what: str = "all") -> None:
    """Stop the embedded background services: all of them, or one group (``kafka``, ``api``, ``airflow-ui``,
    ``monitoring`` = Prometheus & co. and OpenSearch), leaving the others running."""
    from helpers.api.server import stop_api
    from helpers.platform import airflow_ui
    from helpers.platform.kafka_broker import stop_broker

    if what in ("kafka", "all"):
        print("kafka    stopped" if stop_broker() else "kafka    was not running")
    if what in ("api", "all"):
        print("api      stopped" if stop_api() else "api      was not running")
    if what in ("airflow-ui", "all") and airflow_ui.stop_standalone():
        print("airflow  UI stopped")
    if what not in ("monitoring", "all"):
        return
    from helpers.platform.monitoring_services import stop_monitoring

    for name, was_running in stop_monitoring().items():  # Lab 05's Prometheus & co.
        if was_running:
            print(f"{name:<8} stopped")
    from helpers.platform.opensearch_node import stop_opensearch

    if stop_opensearch():
        print("opensearch stopped")


def status() -> int:
    """Print each service's state; return 0 if Kafka answers."""
    from helpers.platform.config import airflow_home, spark_master
    from helpers.platform.kafka_broker import broker_status

    info = broker_status()
    state = "up" if info["reachable"] else "down"
    pid = f" pid {info['pid']}" if info["pid"] else ""
    print(f"kafka    {state} ({info['mode']}, {info['bootstrap_servers']}{pid})")
    from helpers.api.server import api_status

    api = api_status()
    api_pid = f" pid {api['pid']}" if api["pid"] else ""
    print(f"api      {'up' if api['reachable'] else 'down'} ({api['mode']}, {api['url']}{api_pid})")
    print(f"spark    in-process, master {spark_master()}")
    from helpers.platform.airflow_ui import standalone_pid

    ui = f", UI up (pid {standalone_pid()})" if standalone_pid() else ""
    print(f"airflow  in-process, AIRFLOW_HOME={airflow_home()}{ui}")
    from helpers.platform.monitoring_services import monitoring_status

    for name, mon in monitoring_status().items():  # Lab 05: started by `services start monitoring`
        mon_pid = f" pid {mon['pid']}" if mon["pid"] else ""
        print(f"{name:<8} {'up' if mon['ready'] else 'down'} ({mon['mode']}, {mon['url']}{mon_pid})")
    from helpers.platform.opensearch_node import opensearch_status

    node = opensearch_status()
    node_pid = f" pid {node['pid']}" if node["pid"] else ""
    print(f"opensearch {node['health'] or 'down'} ({node['mode']}, {node['url']}{node_pid})")
    from helpers.platform.kafka_cluster import cluster_status

    cluster = cluster_status()  # Lab 05's 3-node cluster: started by `python -m helpers.platform.kafka_cluster --start`
    for n, kn in cluster["nodes"].items():
        kn_pid = f" pid {kn['pid']}" if kn["pid"] else ""
        print(f"kafka-cluster node {n} {'up' if kn['reachable'] else 'down'} (127.0.0.1:{kn['client_port']}{kn_pid})")
    return 0 if info["reachable"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "kafka", "api", "spark", "airflow", "airflow-ui", "monitoring"])
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args.what)
        return 0
    if args.command == "stop":
        stop(args.what)
        return 0
    return status()


if __name__ == "__main__":
    raise SystemExit(main())
