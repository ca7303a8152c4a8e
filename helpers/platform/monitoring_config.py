"""The embedded monitoring services' generated configuration: Prometheus and Alertmanager YAML.

Short intervals (2 s scrape and rule evaluation, 1 s Alertmanager group wait) so a fault injected in a
notebook fires an alert within seconds; every address is 127.0.0.1. The alert rules are the committed
``helpers/monitoring/rules/*.rules.yml``, loaded from the repository, so an edited rule file is picked up by
:func:`helpers.platform.monitoring_services.reload_prometheus` without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from helpers.platform.config import REPO_ROOT, metrics_hosts, monitoring_port

RULES_DIR = REPO_ROOT / "helpers" / "monitoring" / "rules"
SCRAPE_INTERVAL = "2s"
EVALUATION_INTERVAL = "2s"


def rule_files() -> list[Path]:
    """Return the committed alert rule files (``helpers/monitoring/rules/*.rules.yml``)."""
    return sorted(RULES_DIR.glob("*.rules.yml"))


def learner_rules_dir(prometheus_home: Path) -> Path:
    """Return the folder of rule files a notebook adds (``<state>/prometheus/rules``); Prometheus loads its ``*.rules.yml``."""
    return prometheus_home / "rules"


def prometheus_config(targets_dir: Path) -> dict[str, Any]:
    """Return Prometheus's configuration: itself, the Pushgateway, and file-discovered targets.

    Args:
        targets_dir: folder of ``*.json`` target files (:func:`register_target` writes them), so a
            streaming component started later is scraped without a restart.
    """
    local = "127.0.0.1"
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL,
                   "external_labels": {"workbook": "module05"}},
        # the committed rules, then a notebook's own (Lab 05c: the learner's file, installed and reloaded live)
        "rule_files": [*(str(path) for path in rule_files()), str(learner_rules_dir(targets_dir.parent) / "*.rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"{local}:{monitoring_port('alertmanager')}"]}]}]},
        "scrape_configs": [
            {"job_name": "prometheus",
             "static_configs": [{"targets": [f"{local}:{monitoring_port('prometheus')}"]}]},
            # honor_labels: a pushed series keeps its own job/instance (the batch job's name), the pattern
            # the Pushgateway's documentation asks for.
            {"job_name": "pushgateway", "honor_labels": True,
             "static_configs": [{"targets": [f"{local}:{monitoring_port('pushgateway')}"]}]},
            {"job_name": "workbook",
             "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "2s"}]},
        ],
    }


def alertmanager_config(webhook_url: str, responders: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return Alertmanager's configuration: every alert to one webhook (the course's alert sink).

    ``send_resolved`` makes the sink record the end of an alert as well as its start.

    Args:
        webhook_url: the alert sink's receiver.
        responders: ``{name: {"url": webhook, "alertnames": [...]}}``: those alerts also go to that webhook
            (an automated incident response, :mod:`helpers.monitoring.response`), and still to the sink.
    """
    config: dict[str, Any] = {
        "route": {"receiver": "alert-sink", "group_by": ["alertname"],
                  "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"},
        "receivers": [{"name": "alert-sink",
                       "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }
    if responders:  # one child route per responder (continue: the next routes see the alert too), then the sink
        names = sorted(responders)
        config["route"]["routes"] = [
            {"receiver": f"respond-{n}", "continue": True,
             "matchers": [f'alertname=~"{"|".join(responders[n]["alertnames"])}"']} for n in names
        ] + [{"receiver": "alert-sink"}]
        config["receivers"] += [{"name": f"respond-{n}", "webhook_configs": [
            {"url": responders[n]["url"], "send_resolved": True}]} for n in names]
    return config


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    """Write ``config`` as YAML to ``path`` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def target_file(targets_dir: Path, name: str, port: int, labels: dict[str, str] | None = None) -> Path:
    """Write the file-discovery entry that makes Prometheus scrape ``127.0.0.1:<port>/metrics``.

    Args:
        targets_dir: the folder Prometheus watches (``<state>/prometheus/targets``).
        name: the component's name (``model-server``), also its ``component`` label; letters, digits, ``-_``.
        port: where the component serves ``/metrics``.
        labels: extra labels on every series scraped from it.
    """
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise ValueError(f"target name must be letters, digits, '-' or '_' (it names a file), not {name!r}")
    targets_dir.mkdir(parents=True, exist_ok=True)
    host = metrics_hosts()[1]  # 127.0.0.1, or the notebook container's name under docker-compose
    entry = [{"targets": [f"{host}:{int(port)}"], "labels": {"component": name, **(labels or {})}}]
    path = targets_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")  # Prometheus must never read a half-written file
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path
