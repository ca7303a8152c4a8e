"""The embedded OpenSearch: a real single node (Lab 05's log store, the "E" of ELK), started like the broker.

Jars come from Maven Central once (``helpers/platform/poms/opensearch.pom.xml``); a small launcher,
``helpers/platform/java/EmbeddedOpenSearch.java`` (a ``Node`` subclass that loads the Netty4 plugin), is
compiled against them with the JDK's ``javac`` on first start. The node listens on 127.0.0.1 only (HTTP and
transport on their own ports, :func:`helpers.platform.config.monitoring_port`), keeps its data under
``<state>/opensearch`` and runs with a 256-512 MB heap. No scripting or ingest pipelines are used. On start
the index templates are installed (0 replicas, so a single node is green; the log mapping shared with
docker-compose's Elasticsearch: ``helpers/monitoring/logs_index_template.json``). With ``OPENSEARCH_URL`` set,
nothing is started.

``python -m helpers.platform.opensearch_node --fetch-jars | --start | --stop | --status``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from helpers.platform import jvm
from helpers.platform.config import (
    REPO_ROOT,
    external_monitoring_url,
    monitoring_port,
    monitoring_state_dir,
    monitoring_url,
)
from helpers.platform.processes import find_process, start_lock, stop_process, tail

POM = "opensearch.pom.xml"
LAUNCHER = Path(__file__).resolve().parent / "java" / "EmbeddedOpenSearch.java"
LOGS_TEMPLATE = REPO_ROOT / "helpers" / "monitoring" / "logs_index_template.json"
JDK_HINT = ("the embedded OpenSearch compiles a small launcher once and needs the JDK's `javac` "
            "(Debian/Ubuntu: `sudo apt-get install openjdk-17-jdk-headless`; macOS: `brew install openjdk@17`), "
            "or set OPENSEARCH_URL to a running OpenSearch / Elasticsearch")


def opensearch_version() -> str:
    """Return the OpenSearch version pinned in the pom."""
    return jvm.pom_property(POM, "opensearch.version")


def home() -> Path:
    """Return the node's folder: ``<state>/opensearch`` (data, logs, the launcher's log)."""
    return monitoring_state_dir() / "opensearch"


def log_file() -> Path:
    """Return the node's log (stdout and stderr: what to read when it will not start)."""
    return home() / "opensearch.log"


def url() -> str:
    """Return the base URL of OpenSearch: ``OPENSEARCH_URL`` or the embedded node on 127.0.0.1."""
    return monitoring_url("opensearch")


def fetch_jars() -> Path:
    """Resolve the node's jars from Maven Central once and return their folder."""
    return jvm.resolve_jars(POM, f"opensearch-{opensearch_version()}")


def compile_launcher(jars: Path) -> Path:
    """Compile ``EmbeddedOpenSearch.java`` against ``jars`` (again only when the source changed); return its folder."""
    classes = jars.parent / f"opensearch-launcher-{opensearch_version()}"
    compiled = classes / "EmbeddedOpenSearch.class"
    if compiled.exists() and compiled.stat().st_mtime >= LAUNCHER.stat().st_mtime:
        return classes
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError(f"javac not found: {JDK_HINT}.")
    classes.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([javac, "-d", str(classes), "-cp", str(jars / "*"), str(LAUNCHER)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"Compiling {LAUNCHER.name} failed:\n{done.stdout}{done.stderr}")
    return classes


def node_pid() -> int | None:
    """Return the pid of our running node (found by its home folder in the command line), or None."""
    return find_process("EmbeddedOpenSearch", str(home()))


def health(timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Return ``GET /_cluster/health`` (``status``: green, yellow, red), or None if nothing answers."""
    try:
        reply = httpx.get(f"{url()}/_cluster/health", timeout=timeout_s)
        return reply.json() if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def install_templates() -> None:
    """Install the index templates: the log mapping, and 0 replicas for every other index (green on one node)."""
    defaults = {"index_patterns": ["*"], "priority": 0,
                "template": {"settings": {"number_of_replicas": 0, "number_of_shards": 1}}}
    for name, body in (("workbook-defaults", defaults), ("workbook-logs", json.loads(LOGS_TEMPLATE.read_text()))):
        reply = httpx.put(f"{url()}/_index_template/{name}", json=body, timeout=30)
        if reply.status_code != 200:
            raise RuntimeError(f"OpenSearch refused the index template {name} ({reply.status_code}): {reply.text}")


def start_opensearch(timeout: float = 120.0) -> str:
    """Start the embedded node if it is not running, wait until it is healthy, install the templates.

    Safe to call again: a running node is reused. With ``OPENSEARCH_URL`` set nothing is started.

    Returns:
        OpenSearch's base URL.
    """
    if external_monitoring_url("opensearch"):
        return url()
    if node_pid() is not None and health():
        return url()
    from helpers.platform.ports import port_owner

    ports = (monitoring_port("opensearch"), monitoring_port("opensearch_transport"))
    for port in ports:
        owner = port_owner(port)
        if owner and node_pid() is None:
            raise RuntimeError(f"Port {port} is already taken by {owner}: stop that process, or set "
                               "WORKBOOK_OPENSEARCH_PORT (and WORKBOOK_OPENSEARCH_TRANSPORT_PORT) to free ports.")
    java = jvm.require_java()
    jars = fetch_jars()
    classes = compile_launcher(jars)
    with start_lock(home()):  # two notebooks starting at once get one node
        if node_pid() is None:
            cmd = [java, "-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                   "-Dlog4j2.formatMsgNoLookups=true", "-cp", f"{jars / '*'}:{classes}",
                   "EmbeddedOpenSearch", str(home()), str(ports[0]), str(ports[1])]
            with open(log_file(), "ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=home(), start_new_session=True)
            del proc  # found again by its command line: see node_pid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node_pid() is None:
            raise RuntimeError(f"OpenSearch exited while starting. Last lines of {log_file()}:\n{tail(log_file())}")
        state = health(timeout_s=2.0)
        if state and state.get("status") in ("green", "yellow"):
            install_templates()
            return url()
        time.sleep(0.3)
    raise TimeoutError(f"OpenSearch did not answer within {timeout:.0f} s. Last lines of "
                       f"{log_file()}:\n{tail(log_file())}")


def stop_opensearch(timeout: float = 30.0) -> bool:
    """Stop the embedded node (SIGTERM: it closes its indices; SIGKILL after ``timeout``); False if none ran."""
    return stop_process(node_pid, timeout)


def opensearch_status() -> dict[str, Any]:
    """Return the mode, URL, pid, cluster health and log of OpenSearch."""
    external = external_monitoring_url("opensearch") is not None
    state = health()
    return {"mode": "external" if external else "embedded", "url": url(),
            "pid": None if external else node_pid(), "health": state.get("status") if state else None,
            "version": None if external else opensearch_version(), "log": None if external else str(log_file())}


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.platform.opensearch_node --fetch-jars | --start | --stop | --status``."""
    import argparse

    parser = argparse.ArgumentParser(description="The embedded OpenSearch node.")
    group = parser.add_mutually_exclusive_group(required=True)
    for flag in ("--fetch-jars", "--start", "--stop", "--status"):
        group.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    if args.fetch_jars:
        print(compile_launcher(fetch_jars()))
    elif args.start:
        print(start_opensearch())
    elif args.stop:
        print("stopped" if stop_opensearch() else "was not running")
    else:
        print(json.dumps(opensearch_status(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
