"""Automated incident response: an Alertmanager webhook that runs an action when a trigger alert fires.

:class:`IncidentResponder` serves a webhook on 127.0.0.1, has the embedded Alertmanager route its trigger
alerts there too (:func:`helpers.platform.monitoring_services.route_alerts`; the alert sink still gets
every alert), and runs ``action(alert)`` in a thread for a firing trigger, at most once per ``cooldown_s``
(an alert storm, repeated notifications or several drifting series, runs it once) and never twice at once.
Every decision is recorded in the course's alert sink as source ``incident.<name>`` (``phase``:
``started``, ``finished``, ``failed``, ``cooldown``), so the incident's timeline sits beside the alerts::

    def retrain(alert):                      # e.g. run the training DAG; return a small dict
        ...
    with IncidentResponder(retrain, name="retrain", triggers=("PredictionScoreDrift",)) as responder:
        ...                                  # the drift alert fires -> retrain runs once
        responder.wait_idle(600)

The action is the caller's: the capstone retrains through the embedded runner
(:mod:`helpers.capstone.incident`); with compose, ``trigger_dag_run`` starts the DAG through Airflow's REST API.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from helpers.alerts.alertmanager import reply_json
from helpers.alerts.sink import send_alert

Action = Callable[[dict[str, Any]], dict[str, Any]]
"""``action(alert) -> result``: ``alert`` is one alert of Alertmanager's payload (labels, annotations, ...)."""


class IncidentResponder:
    """Run ``action`` when one of ``triggers`` fires (see the module docstring).

    Args:
        action: what to do; its (small, JSON-ready) result is recorded when it returns.
        name: the responder's name (its Alertmanager receiver is ``respond-<name>``).
        triggers: alert names that start the action.
        cooldown_s: the least time between two starts.
    """

    def __init__(self, action: Action, name: str = "retrain", triggers: Sequence[str] = ("PredictionScoreDrift",),
                 cooldown_s: float = 900.0) -> None:
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be 0 or more seconds, got {cooldown_s!r}")
        self.action, self.name, self.triggers, self.cooldown_s = action, name, tuple(triggers), cooldown_s
        self.source = f"incident.{name}"
        self.runs: list[dict[str, Any]] = []
        """One dict per started action: alertname, fingerprint, started_at, finished_at, result / error."""
        self._last_start: float | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self.url: str | None = None

    def handle(self, payload: dict[str, Any]) -> list[str]:
        """Act on one Alertmanager webhook payload; return the decision per alert (``started``, ``cooldown``...).

        Raises:
            ValueError: the payload is not an Alertmanager notification.
        """
        alerts = payload.get("alerts") if isinstance(payload, dict) else None
        if not isinstance(alerts, list):
            raise ValueError(f"expected Alertmanager's webhook payload with an 'alerts' list, got {str(payload)[:200]!r}")
        return [self._decide(alert) for alert in alerts]

    def _decide(self, alert: dict[str, Any]) -> str:
        labels = alert.get("labels") or {}
        alertname = labels.get("alertname", "")
        if alert.get("status") != "firing" or alertname not in self.triggers:
            return "ignored"
        details = {"alertname": alertname, "fingerprint": alert.get("fingerprint"), "labels": labels,
                   "action": self.name}
        with self._lock:
            now = time.monotonic()
            busy = self._worker is not None and self._worker.is_alive()
            if busy or (self._last_start is not None and now - self._last_start < self.cooldown_s):
                send_alert(self.source, f"{alertname} fired again: {self.name} not started (running or in its "
                                        f"{self.cooldown_s:.0f} s cool-down)", severity="info",
                           details={**details, "phase": "cooldown"})
                return "cooldown"
            self._last_start = now
            run = {"alertname": alertname, "fingerprint": alert.get("fingerprint"), "started_at": time.time(),
                   "finished_at": None, "result": None, "error": None}
            self.runs.append(run)
            send_alert(self.source, f"{alertname} fired: {self.name} started", severity="warning",
                       details={**details, "phase": "started"})
            self._worker = threading.Thread(target=self._run, args=(alert, run, details), daemon=True,
                                            name=f"incident-{self.name}")
            self._worker.start()
        return "started"

    def _run(self, alert: dict[str, Any], run: dict[str, Any], details: dict[str, Any]) -> None:
        try:
            run["result"] = self.action(alert)
            send_alert(self.source, f"{self.name} finished: {json.dumps(run['result'], default=str)[:300]}",
                       severity="info", details={**details, "phase": "finished", "result": run["result"]})
        except Exception as err:  # noqa: BLE001 - a failed response is recorded (and paged), never lost
            run["error"] = f"{type(err).__name__}: {err}"
            send_alert(self.source, f"{self.name} failed: {run['error']}", severity="error",
                       details={**details, "phase": "failed", "error": run["error"]})
        finally:
            run["finished_at"] = time.time()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no action runs (True), or ``timeout_s`` passed (False)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)
            return not worker.is_alive()
        return True

    def start(self, port: int = 0) -> IncidentResponder:
        """Serve the webhook (``POST /alertmanager`` on 127.0.0.1) and route the triggers to it."""
        from helpers.platform.monitoring_services import route_alerts

        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                try:
                    status, body = 200, {"decisions": responder.handle(json.loads(raw or b"null"))}
                except ValueError as err:
                    status, body = 400, {"error": str(err)}
                reply_json(self, status, body)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass  # the decisions are in the alert sink

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name=f"webhook-{self.name}").start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alertmanager"
        route_alerts(self.name, self.url, list(self.triggers))
        return self

    def stop(self) -> None:
        """Unroute the triggers and stop serving (a running action finishes in its thread)."""
        from helpers.platform.monitoring_services import route_alerts

        route_alerts(self.name, None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> IncidentResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def trigger_dag_run(dag_id: str, conf: dict[str, Any] | None = None, api_url: str | None = None,
                    token: str | None = None) -> dict[str, Any]:
    """Start a run of ``dag_id`` through Airflow's REST API (compose: ``AIRFLOW_API_URL``, ``AIRFLOW_API_TOKEN``).

    An action for :class:`IncidentResponder` when Airflow runs as a service: ``POST /api/v2/dags/<id>/dagRuns``.
    Returns Airflow's answer (``dag_run_id``, ``state``...).
    """
    import os
    from datetime import datetime, timezone

    import httpx

    url = (api_url or os.environ.get("AIRFLOW_API_URL", "")).rstrip("/")
    if not url:
        raise RuntimeError("set AIRFLOW_API_URL (compose: http://airflow-apiserver:8080) to trigger the DAG "
                           "through Airflow's API, or use the embedded runner (helpers.airflow.runner.run_dag)")
    token = token or os.environ.get("AIRFLOW_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = httpx.post(f"{url}/api/v2/dags/{dag_id}/dagRuns", headers=headers, timeout=30,
                       json={"logical_date": datetime.now(timezone.utc).isoformat(), "conf": conf or {}})
    if reply.status_code >= 300:
        raise RuntimeError(f"Airflow refused to start {dag_id} ({reply.status_code}): {reply.text[:500]}")
    return reply.json()
