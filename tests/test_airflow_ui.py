"""The optional Airflow UI: `airflow standalone` on 127.0.0.1, stopped with nothing left behind."""

from __future__ import annotations

import json
import urllib.request

import psutil

from helpers.platform import airflow_ui


def test_ui_starts_answers_and_stops_completely(free_port):
    port = free_port
    url = airflow_ui.start_standalone(port=port)
    pid = airflow_ui.standalone_pid()
    try:
        assert pid is not None
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=10) as response:
            health = json.load(response)
        assert health["metadatabase"]["status"] == "healthy", health
        assert airflow_ui.start_standalone(port=port) == url and airflow_ui.standalone_pid() == pid
        members = airflow_ui.group_processes(pid)
        assert len(members) > 1, "standalone runs its parts as child processes"
        listening = {c.laddr.ip for m in members for c in psutil.Process(m).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening <= {"127.0.0.1"}, f"the UI must listen on 127.0.0.1 only: {listening}"
    finally:
        airflow_ui.stop_standalone()  # what `make stop` runs for the UI; the suite's broker keeps running
    assert airflow_ui.standalone_pid() is None
    assert airflow_ui.group_processes(pid) == [], "make stop must leave no Airflow process behind"
