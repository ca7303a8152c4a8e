"""The course's alert sink: a SQLite table a learner can query, plus an optional webhook.

Failure callbacks (Lab 01) and quality gates (Lab 04) send their alerts here, so one
place shows every alert of the module. The table lives in ``<state>/alerts/alerts.db`` unless
``WORKBOOK_ALERTS_DB`` names another file. If ``WORKBOOK_ALERT_WEBHOOK`` is set (e.g. a Slack-style
incoming webhook, or a local HTTP server), each alert is also POSTed there as JSON; a webhook that
fails is recorded in the alert's ``delivery`` column, never raised, so an alert can't fail a task.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers.platform.config import state_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL,
    delivery TEXT NOT NULL
)
"""
SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class Alert:
    """One row of the alerts table."""

    id: int
    created_at: str
    source: str
    severity: str
    message: str
    details: dict[str, Any]
    delivery: str


def alerts_db() -> Path:
    """Return the SQLite file of the alert sink (``WORKBOOK_ALERTS_DB`` or ``<state>/alerts/alerts.db``)."""
    value = os.environ.get("WORKBOOK_ALERTS_DB", "").strip()
    return Path(value).resolve() if value else state_dir() / "alerts" / "alerts.db"


def _connect() -> sqlite3.Connection:
    path = alerts_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.execute(SCHEMA)
    return conn


def _post(url: str, payload: dict[str, Any], timeout_s: float = 5.0) -> str:
    """POST ``payload`` as JSON; return what happened (a failure is a result here, never raised)."""
    try:
        request = urllib.request.Request(url, data=json.dumps(payload, default=str).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return f"webhook {response.status}"
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, refused, "unknown url type"
        return f"webhook failed: {type(exc).__name__}: {exc}"


def send_alert(source: str, message: str, *, severity: str = "error",
               details: dict[str, Any] | None = None) -> Alert:
    """Record an alert (and POST it to ``WORKBOOK_ALERT_WEBHOOK`` if set).

    Args:
        source: who raises it, e.g. ``"lab01.etl_orders.load"`` or ``"quality_gate"``.
        message: one human-readable line.
        severity: one of ``SEVERITIES``.
        details: context (dag id, run id, failing expectations...); values JSON cannot hold are stored
            as their ``str()``.

    Returns:
        The stored alert.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    details = json.loads(json.dumps(details or {}, default=str))  # what the table keeps, e.g. str(datetime)
    created_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    webhook = os.environ.get("WORKBOOK_ALERT_WEBHOOK", "").strip()
    delivery = "table"
    if webhook:
        delivery += ", " + _post(webhook, {"created_at": created_at, "source": source, "severity": severity,
                                           "message": message, "details": details})
    with closing(_connect()) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO alerts (created_at, source, severity, message, details, delivery) VALUES (?,?,?,?,?,?)",
            (created_at, source, severity, message, json.dumps(details), delivery))
        alert_id = int(cursor.lastrowid or 0)
    return Alert(alert_id, created_at, source, severity, message, details, delivery)


def read_alerts(source: str | None = None, since_id: int = 0) -> list[Alert]:
    """Return stored alerts, oldest first, optionally only those whose source starts with ``source``."""
    query, args = "SELECT * FROM alerts WHERE id > ?", [since_id]
    if source:
        query += " AND source LIKE ? ESCAPE '\\'"
        args.append(source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    with closing(_connect()) as conn:
        rows = conn.execute(query + " ORDER BY id", args).fetchall()
    return [Alert(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]


def last_alert_id() -> int:
    """Return the id of the newest alert (0 if none): read alerts after it to see only new ones."""
    with closing(_connect()) as conn:
        (value,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()
    return int(value)
