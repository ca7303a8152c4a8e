"""Optional: Airflow's web UI and scheduler, like ``airflow standalone`` but capped for a laptop.

``airflow standalone`` itself cannot be kept on 127.0.0.1: its scheduler and triggerer start log
servers bound to every interface. So the same four parts are started here, with those log servers
skipped (logs are read from local files anyway) and the API server bound to 127.0.0.1.

The labs run DAGs in the notebook's own process (:func:`helpers.airflow.runner.run_dag`); start the UI
to look at DAG runs in a browser: ``make airflow-ui`` (``make stop`` stops it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers.airflow.setup import AirflowSetupError, setup_airflow
from helpers.platform import config


def start_standalone(port: int = 8080, timeout_s: float = 180) -> str:
    """Start Airflow's API server (UI), scheduler, DAG processor and triggerer in the background.

    One process group, stopped together by :func:`stop_standalone`. Capped for a 2-core machine (one API worker, one parsing process, parallelism 4); no login
    (every user is admin). Output goes to ``<AIRFLOW_HOME>/standalone.log``. Not needed by
    :func:`run_dag`: use it to look at runs in the UI. Stop it with :func:`stop_standalone`.

    Args:
        port: the UI's port on 127.0.0.1.
        timeout_s: how long to wait for the UI to answer.

    Returns:
        The UI's URL.
    """
    home = setup_airflow()
    url = f"http://127.0.0.1:{port}"
    if standalone_pid() is not None:
        return url
    from helpers.platform.ports import port_owner

    if owner := port_owner(port):
        raise AirflowSetupError(f"Port {port} is taken by {owner}: pass another port=...")
    env = {**os.environ, "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
           "AIRFLOW__API__WORKERS": "1", "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           # standalone starts its parts as `airflow ...`: this environment's bin must be on PATH
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    airflow = f'"{sys.executable}" -m airflow'
    script = (f"{airflow} api-server --host 127.0.0.1 --port {port} --workers 1 & "
              f"{airflow} scheduler --skip-serve-logs & "
              f"{airflow} dag-processor & "
              f"{airflow} triggerer --skip-serve-logs & "
              "wait")
    with open(home / "standalone.log", "ab") as log:
        proc = subprocess.Popen(["bash", "-c", script], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    (home / "standalone.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AirflowSetupError(f"the Airflow UI exited ({proc.returncode}); "
                                    f"see {home / 'standalone.log'}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                return url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(2)
    stop_standalone()
    raise TimeoutError(f"The Airflow UI did not answer on {url} within {timeout_s:.0f} s")


def stop_standalone(timeout_s: float = 30) -> bool:
    """Stop the ``airflow standalone`` started by :func:`start_standalone` (its process group).

    Returns:
        True if one was running.
    """
    pid = standalone_pid()
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)  # start_new_session=True: the group id is its pid
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and group_processes(pid):
        time.sleep(0.5)
    if group_processes(pid):
        os.killpg(pid, signal.SIGKILL)
    (config.airflow_home() / "standalone.pid").unlink(missing_ok=True)
    return True


def standalone_pid() -> int | None:
    """Return the pid recorded by :func:`start_standalone` if that process still runs."""
    pid_file = config.airflow_home() / "standalone.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    """True if ``pid`` is our live launcher (not a zombie, not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "api-server" in " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return False


def group_processes(pgid: int) -> list[int]:
    """Return the live (non-zombie) processes of process group ``pgid``."""
    import psutil

    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members
