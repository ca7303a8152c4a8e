"""Alertmanager's webhook payloads into the alert sink: firing and resolved rows, paired into a timeline."""

from __future__ import annotations

import uuid

import pytest

from helpers.alerts.alertmanager import alert_timeline, record_notification
from helpers.alerts.sink import last_alert_id


def _payload(status: str, name: str, fingerprint: str, severity: str = "error") -> dict:
    return {"version": "4", "status": status, "receiver": "alert-sink", "alerts": [{
        "status": status, "labels": {"alertname": name, "severity": severity, "job": "daily_etl"},
        "annotations": {"summary": "the daily_etl run's data quality score is 90%, under 95 %"},
        "startsAt": "2026-12-02T02:30:14.817Z",
        "endsAt": "2026-12-02T02:30:18.817Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint}]}


def test_firing_then_resolved_pair_into_one_timeline_row():
    """Check a firing and a resolved notification become one row with both times; prefixes don't mix names."""
    name, since = f"Probe{uuid.uuid4().hex[:6]}", last_alert_id()
    fired = record_notification(_payload("firing", name, "abc"))
    assert [a.message for a in fired] == ["FIRING: the daily_etl run's data quality score is 90%, under 95 %"], (
        f"expected one FIRING row with the summary, got {[a.message for a in fired]}")
    assert fired[0].source == f"alertmanager.{name}" and fired[0].severity == "error", f"got {fired[0]}"
    record_notification(_payload("firing", name + "Longer", "def"))  # a name that starts with ours
    assert alert_timeline(name, since)[0]["resolved_at"] is None, "expected the alert still firing before resolution"
    record_notification(_payload("resolved", name, "abc"))
    timeline = alert_timeline(name, since)
    assert len(timeline) == 1, f"expected one alert instance for {name} (not {name}Longer), got {timeline}"
    assert (timeline[0]["fired_at"], timeline[0]["resolved_at"]) == ("2026-12-02T02:30:14.817Z", "2026-12-02T02:30:18.817Z"), (
        f"expected the fired and resolved times from Alertmanager, got {timeline[0]}")


def test_unknown_severity_becomes_warning_and_bad_payloads_are_refused():
    """Check a severity the sink does not know is stored as warning; a payload without alerts is a clear error."""
    stored = record_notification(_payload("firing", f"Probe{uuid.uuid4().hex[:6]}", "x", severity="page"))
    assert stored[0].severity == "warning", f"expected an unknown severity stored as warning, got {stored[0].severity}"
    for bad in (None, [], {"status": "firing"}, {"alerts": "nope"}):
        with pytest.raises(ValueError, match="Alertmanager's webhook payload"):
            record_notification(bad)
