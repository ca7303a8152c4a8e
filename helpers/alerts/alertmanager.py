"""Alertmanager's webhook into the course's alert sink: every firing and resolved alert becomes a row.

Alertmanager POSTs its webhook payload (version 4: ``{"status", "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "fingerprint"}], ...}``) to ``/alertmanager``; each alert in it is
recorded with :func:`helpers.alerts.sink.send_alert` as source ``alertmanager.<alertname>``, so Lab 01's
failure callbacks, Lab 04's quality gate and Lab 05's Prometheus rules share one table.
:func:`alert_timeline` reads them back as fired/resolved pairs.

The embedded receiver runs in the background (started by :mod:`helpers.platform.monitoring_services`):
``python -m helpers.alerts.alertmanager --serve --home <folder> --port <port>``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from helpers.alerts.sink import SEVERITIES, Alert, read_alerts, send_alert

T = TypeVar("T")

SOURCE_PREFIX = "alertmanager."


def record_notification(payload: dict[str, Any]) -> list[Alert]:
    """Store each alert of one Alertmanager webhook payload in the sink; return the stored rows.

    Raises:
        ValueError: the payload is not an Alertmanager notification (no ``alerts`` list).
    """
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    if not isinstance(alerts, list):
        raise ValueError("expected Alertmanager's webhook payload (a JSON object with an 'alerts' list), "
                         f"got {str(payload)[:200]!r}")
    stored = []
    for item in alerts:
        labels = dict(item.get("labels") or {})
        annotations = dict(item.get("annotations") or {})
        name = labels.get("alertname", "unnamed")
        status = item.get("status", payload.get("status", "firing"))
        severity = labels.get("severity", "warning")
        severity = severity if severity in SEVERITIES else "warning"
        summary = annotations.get("summary") or annotations.get("description") or name
        message = f"{'RESOLVED' if status == 'resolved' else 'FIRING'}: {summary}"
        details = {"status": status, "alertname": name, "labels": labels, "annotations": annotations,
                   "starts_at": item.get("startsAt"), "ends_at": item.get("endsAt"),
                   "fingerprint": item.get("fingerprint"), "receiver": payload.get("receiver")}
        stored.append(send_alert(SOURCE_PREFIX + name, message, severity=severity, details=details))
    return stored


def alert_timeline(alertname: str | None = None, since_id: int = 0) -> list[dict[str, Any]]:
    """Return one row per alert instance (by fingerprint): when it fired, when it resolved (None if still firing).

    Args:
        alertname: only this rule's alerts.
        since_id: only sink rows after this id (:func:`helpers.alerts.sink.last_alert_id`).
    """
    source = SOURCE_PREFIX + alertname if alertname else SOURCE_PREFIX
    rows: dict[str, dict[str, Any]] = {}
    for alert in read_alerts(source, since_id=since_id):
        if alertname and alert.details.get("alertname") != alertname:
            continue  # `source` is a prefix: QualityScoreLow must not match QualityScoreLowest
        key = f"{alert.details.get('fingerprint')}@{alert.details.get('starts_at')}"
        row = rows.setdefault(key, {"alertname": alert.details.get("alertname"),
                                    "labels": alert.details.get("labels", {}), "fired_at": None,
                                    "resolved_at": None, "summary": alert.message.split(": ", 1)[-1]})
        if alert.details.get("status") == "resolved":
            row["resolved_at"] = alert.details.get("ends_at")
        row["fired_at"] = row["fired_at"] or alert.details.get("starts_at")
    return list(rows.values())


def wait_until(predicate: Callable[[], T], timeout_s: float, every_s: float = 1.0) -> T | None:
    """Call ``predicate`` every ``every_s`` until it returns something truthy (returned) or ``timeout_s`` passes (None).

    For waits on live services, e.g. ``wait_until(lambda: alert_timeline("QualityScoreLow", since), 60)``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every_s)
    return None


def reply_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Answer the request ``handler`` serves with ``status`` and ``body`` as JSON (the webhooks' replies)."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _handler() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            reply_json(self, status, body)

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self.path == "/health":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"error": f"no page {self.path}; POST Alertmanager's webhook to /alertmanager"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/alertmanager":
                self._reply(404, {"error": f"POST to /alertmanager, not {self.path}"})
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            try:
                stored = record_notification(json.loads(raw or b"null"))
            except ValueError as err:  # JSONDecodeError is a ValueError too
                self._reply(400, {"error": str(err)})
                return
            self._reply(200, {"stored": [a.id for a in stored]})

        def log_message(self, fmt: str, *args: Any) -> None:
            print(f"{self.address_string()} {fmt % args}", flush=True)

    return Handler


def serve(port: int, home: Path, host: str = "127.0.0.1") -> None:
    """Serve the receiver on ``<host>:<port>`` until killed (``0.0.0.0`` only inside a compose container)."""
    home.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), _handler())
    print(f"alert receiver on http://{host}:{port}/alertmanager", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alertmanager webhook -> the course's alert sink.")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 only in a container (docker-compose)")
    parser.add_argument("--alerts-db", type=Path, help="the alert sink's SQLite file (WORKBOOK_ALERTS_DB)")
    args = parser.parse_args(argv)
    if args.alerts_db:
        os.environ["WORKBOOK_ALERTS_DB"] = str(args.alerts_db)
    serve(args.port, args.home, args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
