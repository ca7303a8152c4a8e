"""The optional Airflow UI: `airflow standalone` on 127.0.0.1, stopped with nothing left behind."""

from __future__ import annotations

import json
import urllib.request

import psutil

from helpers import airflow_ui, kafka, services


def test_ui_starts_answers_and_stops_completely(free_port):
    broker_was_up = kafka._pid() is not None
    port = free_port
    url = airflow_ui.start_standalone(port=port)
    pid = airflow_ui._standalone_pid()
    try:
        assert pid is not None
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=10) as response:
            health = json.load(response)
        assert health["metadatabase"]["status"] == "healthy", health
        assert airflow_ui.start_standalone(port=port) == url and airflow_ui._standalone_pid() == pid
        members = airflow_ui._group_members(pid)
        assert len(members) > 1, "standalone runs its parts as child processes"
        listening = {c.laddr.ip for m in members for c in psutil.Process(m).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening <= {"127.0.0.1"}, f"the UI must listen on 127.0.0.1 only: {listening}"
    finally:
        services.stop()  # what `make stop` runs: it stops the broker too
        if broker_was_up:
            kafka.start_broker()  # the other tests share the session's broker
    assert airflow_ui._standalone_pid() is None
    assert airflow_ui._group_members(pid) == [], "make stop must leave no Airflow process behind"
