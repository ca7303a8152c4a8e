"""Lab 05's services from the command line: `services start monitoring` brings up Prometheus, Alertmanager,
the Pushgateway, the alert receiver and OpenSearch; `services stop` (what `make stop` runs) leaves nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psutil
import pytest

from helpers.platform.config import REPO_ROOT, state_dir

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="Prometheus is not installed")


def _services(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "helpers.platform.services", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO_ROOT, env=env)


def _ours() -> list[str]:
    """Processes whose command line names one of the monitoring services' folders in the suite's state."""
    folders = [str(state_dir() / name) for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver",
                                                    "opensearch")]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if any(folder in line for folder in folders):
            found.append(f"pid {proc.info['pid']}: {line[:120]}")
    return found


def test_start_monitoring_then_stop_leaves_no_process_behind():
    """Check the CLI: every service reports ready, status shows them up, stop ends every process."""
    started = _services("start", "monitoring")
    assert started.returncode == 0, f"expected `services start monitoring` to succeed, got:\n{started.stdout}{started.stderr}"
    for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver", "opensearch"):
        assert f"{name} " in started.stdout and "ready on http://127.0.0.1:" in started.stdout, (
            f"expected a ready line for {name}, got:\n{started.stdout}")
    status = _services("status")
    for name in ("prometheus", "alertmanager", "pushgateway", "alert_receiver"):
        assert any(line.startswith(f"{name} ") and " up " in line for line in status.stdout.splitlines()), (
            f"expected `{name} up` in the status, got:\n{status.stdout}")
    assert "opensearch green" in status.stdout, f"expected `opensearch green` in the status, got:\n{status.stdout}"
    stopped = _services("stop")
    assert stopped.returncode == 0, f"expected `services stop` to succeed, got:\n{stopped.stdout}{stopped.stderr}"
    left = [p for p in _ours() if "helpers.platform.services" not in p]
    assert not left, f"expected no monitoring process after `services stop`, found: {left}"
