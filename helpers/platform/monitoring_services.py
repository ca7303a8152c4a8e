"""Lab 05's embedded monitoring services: Prometheus, Alertmanager, the Pushgateway and the alert receiver.

Real binaries from the OS packages (Debian: ``prometheus``, ``prometheus-alertmanager``,
``prometheus-pushgateway``; Homebrew: ``prometheus alertmanager pushgateway``), started in the background
like the Kafka broker: own generated configuration and storage under ``<state>/<service>``, bound to
127.0.0.1, own ports (:func:`helpers.platform.config.monitoring_port`), found again by their command line.
The packages' own system services are never used. The alert receiver is a small Python process that turns
Alertmanager's webhook calls into rows of the course's alert sink (:mod:`helpers.alerts.alertmanager`).
With ``PROMETHEUS_URL`` & co. set (docker-compose), nothing is started.

``python -m helpers.platform.monitoring_services --start | --stop | --status``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from helpers.alerts.sink import alerts_db
from helpers.platform import monitoring_config as mc
from helpers.platform.config import (
    REPO_ROOT,
    external_monitoring_url,
    monitoring_port,
    monitoring_state_dir,
    monitoring_url,
)
from helpers.platform.processes import find_process, start_lock, stop_process, tail

APT_PACKAGES = "prometheus prometheus-alertmanager prometheus-pushgateway"
INSTALL_HINT = (f"install them (Debian/Ubuntu: `sudo apt-get install {APT_PACKAGES}`; "
                "macOS: `brew install prometheus alertmanager pushgateway`), or run `make system` as root")
RECEIVER_MODULE = "helpers.alerts.alertmanager"


@dataclass(frozen=True)
class Service:
    """One embedded monitoring service: how to find its program, start it and ask it whether it is ready."""

    name: str
    programs: tuple[str, ...]  # Debian's name first, then the upstream/Homebrew one
    ready_path: str = "/-/ready"

    @property
    def home(self) -> Path:
        return monitoring_state_dir() / self.name

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def port(self) -> int:
        return monitoring_port(self.name)

    @property
    def url(self) -> str:
        return monitoring_url(self.name)

    @property
    def external(self) -> bool:
        return external_monitoring_url(self.name) is not None


PROMETHEUS = Service("prometheus", ("prometheus",))
ALERTMANAGER = Service("alertmanager", ("prometheus-alertmanager", "alertmanager"))
PUSHGATEWAY = Service("pushgateway", ("prometheus-pushgateway", "pushgateway"))
RECEIVER = Service("alert_receiver", (), ready_path="/health")
SERVICES: dict[str, Service] = {s.name: s for s in (PROMETHEUS, ALERTMANAGER, PUSHGATEWAY, RECEIVER)}
START_ORDER = ("alert_receiver", "alertmanager", "pushgateway", "prometheus")  # what each one sends to first


def program(service: Service) -> str | None:
    """Return the path of ``service``'s program on PATH (``promtool`` for the rule tests too), or None."""
    if service is RECEIVER:
        return sys.executable
    return next((found for name in service.programs if (found := shutil.which(name))), None)


def promtool() -> str:
    """Return ``promtool`` (shipped with the ``prometheus`` package) or raise with the install line."""
    found = shutil.which("promtool")
    if not found:
        raise RuntimeError(f"promtool is missing (it comes with Prometheus): {INSTALL_HINT}")
    return found


def _command(service: Service, exe: str) -> list[str]:
    listen = f"127.0.0.1:{service.port}"
    home = service.home
    if service is PROMETHEUS:
        config = mc.write_yaml(home / "prometheus.yml", mc.prometheus_config(home / "targets"))
        (home / "targets").mkdir(parents=True, exist_ok=True)
        return [exe, f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address={listen}", "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=2d", f"--web.external-url=http://{listen}/",
                # a reload (a notebook installing rules) re-discovers Alertmanager for a few seconds, and an
                # alert sent meanwhile is dropped; resend every 2 s rather than after the default minute
                "--rules.alert.resend-delay=2s"]
    if service is ALERTMANAGER:
        hook = f"http://127.0.0.1:{RECEIVER.port}/alertmanager"
        config = mc.write_yaml(home / "alertmanager.yml", mc.alertmanager_config(hook, _responders()))
        # an empty cluster address turns off the gossip port, which would listen on every interface
        return [exe, f"--config.file={config}", f"--storage.path={home / 'data'}",
                f"--web.listen-address={listen}", "--cluster.listen-address=",
                f"--web.external-url=http://{listen}/"]
    if service is PUSHGATEWAY:
        return [exe, f"--web.listen-address={listen}", f"--persistence.file={home / 'pushgateway.db'}"]
    return [exe, "-m", RECEIVER_MODULE, "--serve", "--home", str(home), "--port", str(service.port),
            "--alerts-db", str(alerts_db())]


def service_pid(name: str) -> int | None:
    """Return the pid of our running ``name`` (found by the ``<state>/<name>`` path in its command line)."""
    service = SERVICES[name]
    if service is RECEIVER:  # ours writes to this process's alert sink (a test worker has its own)
        return find_process(RECEIVER_MODULE, "--serve", str(service.home), str(alerts_db()))
    markers = {"prometheus": f"--config.file={service.home / 'prometheus.yml'}",
               "alertmanager": f"--config.file={service.home / 'alertmanager.yml'}",
               "pushgateway": f"--persistence.file={service.home / 'pushgateway.db'}"}
    return find_process(markers[name])


def _any_pid(name: str) -> int | None:
    """Like :func:`service_pid`, but the alert receiver is found whichever alert sink it writes to."""
    if name == RECEIVER.name:
        return find_process(RECEIVER_MODULE, "--serve", str(RECEIVER.home))
    return service_pid(name)


def is_ready(name: str, timeout_s: float = 2.0) -> bool:
    """Return True if ``name`` answers its readiness endpoint with 200."""
    service = SERVICES[name]
    try:
        return httpx.get(service.url + service.ready_path, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def start_service(name: str, timeout: float = 30.0) -> str:
    """Start one embedded service (``prometheus``, ``alertmanager``, ``pushgateway``, ``alert_receiver``).

    Safe to call again: a running one is reused. With ``<NAME>_URL`` set nothing is started.

    Returns:
        Its base URL.
    """
    service = SERVICES[name]
    if service.external or (service_pid(name) is not None and is_ready(name)):
        return service.url
    exe = program(service)
    if exe is None:
        raise RuntimeError(f"{name} is not installed ({' or '.join(service.programs)} not on PATH): {INSTALL_HINT}")
    from helpers.platform.ports import port_owner

    if service is RECEIVER:  # a receiver writing to another alert sink (another test worker's) gives way
        stop_process(lambda: _any_pid(name), 10, poll_s=0.1)
    owner = port_owner(service.port)
    if owner and service_pid(name) is None:
        raise RuntimeError(f"Port {service.port} (for {name}) is already taken by {owner}: stop that process, "
                           f"or set WORKBOOK_{name.upper()}_PORT to a free port.")
    with start_lock(service.home):  # two notebooks starting at once get one
        if service_pid(name) is None:
            cmd = _command(service, exe)
            with open(service.log, "ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=REPO_ROOT, start_new_session=True)
            del proc  # found again by its command line: see service_pid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service_pid(name) is None:
            raise RuntimeError(f"{name} exited while starting. Last lines of {service.log}:\n{tail(service.log)}")
        if is_ready(name, timeout_s=1.0):
            return service.url
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not answer {service.url}{service.ready_path} within {timeout:.0f} s. "
                       f"Last lines of {service.log}:\n{tail(service.log)}")


def start_monitoring(timeout: float = 30.0) -> dict[str, float]:
    """Start the alert receiver, Alertmanager, the Pushgateway and Prometheus; return seconds each took."""
    timings = {}
    for name in START_ORDER:
        t0 = time.perf_counter()
        start_service(name, timeout)
        timings[name] = time.perf_counter() - t0
    return timings


def stop_monitoring(timeout: float = 15.0) -> dict[str, bool]:
    """Stop every embedded monitoring service (SIGTERM, then SIGKILL); ``{name: was running}``."""
    return {name: stop_process(lambda n=name: _any_pid(n), timeout, poll_s=0.1)
            for name in reversed(START_ORDER)}


def reload_prometheus() -> None:
    """Make the running Prometheus re-read its configuration and rule files (``POST /-/reload``)."""
    reply = httpx.post(f"{PROMETHEUS.url}/-/reload", timeout=10)
    if reply.status_code != 200:
        raise RuntimeError(f"Prometheus refused to reload ({reply.status_code}): {reply.text.strip()}; "
                           f"check the rule files with `promtool check rules {mc.RULES_DIR}/*.rules.yml`")


def register_target(name: str, port: int, labels: dict[str, str] | None = None) -> Path:
    """Have the embedded Prometheus scrape ``http://127.0.0.1:<port>/metrics`` as component ``name``.

    Prometheus picks the file up within 2 s; :func:`unregister_target` removes it.
    """
    return mc.target_file(PROMETHEUS.home / "targets", name, port, labels)


def unregister_target(name: str) -> bool:
    """Stop scraping component ``name``; False if it was not registered."""
    path = PROMETHEUS.home / "targets" / f"{name}.json"
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _responders() -> dict[str, dict[str, Any]]:
    path = ALERTMANAGER.home / "responders.json"
    return json.loads(path.read_text()) if path.exists() else {}


def route_alerts(name: str, url: str | None, alertnames: list[str] | None = None) -> None:
    """Send ``alertnames`` also to the webhook ``url`` (an incident responder), or stop (``url=None``).

    Rewrites the embedded Alertmanager's configuration (kept in ``<alertmanager>/responders.json`` for its
    next start) and reloads it; the alert sink still gets every alert.
    """
    if ALERTMANAGER.external:
        raise RuntimeError(f"Alertmanager is external ({ALERTMANAGER.url}): add a webhook receiver for {alertnames} "
                           f"to its configuration (docker/alertmanager) instead")
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise ValueError(f"responder name must be letters, digits, '-' or '_', not {name!r}")
    responders = _responders()
    if url is None:
        responders.pop(name, None)
    else:
        if not alertnames or not all(a.replace("_", "").isalnum() for a in alertnames):
            raise ValueError(f"alertnames must be rule names (letters, digits, '_'), got {alertnames!r}")
        responders[name] = {"url": url, "alertnames": list(alertnames)}
    ALERTMANAGER.home.mkdir(parents=True, exist_ok=True)
    (ALERTMANAGER.home / "responders.json").write_text(json.dumps(responders, indent=1))
    hook = f"http://127.0.0.1:{RECEIVER.port}/alertmanager"
    mc.write_yaml(ALERTMANAGER.home / "alertmanager.yml", mc.alertmanager_config(hook, responders))
    if service_pid("alertmanager") is not None:
        reply = httpx.post(f"{ALERTMANAGER.url}/-/reload", timeout=10)
        if reply.status_code != 200:
            raise RuntimeError(f"Alertmanager refused to reload ({reply.status_code}): {reply.text.strip()}")


def monitoring_status() -> dict[str, dict[str, Any]]:
    """Return, per service: mode, URL, pid, whether it answers, its log."""
    return {name: {"mode": "external" if s.external else "embedded", "url": s.url,
                   "pid": None if s.external else service_pid(name), "ready": is_ready(name),
                   "log": None if s.external else str(s.log)}
            for name, s in SERVICES.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.platform.monitoring_services --start | --stop | --status``."""
    import argparse

    parser = argparse.ArgumentParser(description="Lab 05's embedded monitoring services.")
    group = parser.add_mutually_exclusive_group(required=True)
    for flag in ("--start", "--stop", "--status"):
        group.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    if args.start:
        print(json.dumps({k: round(v, 2) for k, v in start_monitoring().items()}))
    elif args.stop:
        print(json.dumps(stop_monitoring()))
    else:
        print(json.dumps(monitoring_status(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
