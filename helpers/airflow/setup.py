"""Embedded Airflow 3.3, set up once: environment, metadata DB (SQLite under ``AIRFLOW_HOME``), migration.

Call :func:`setup_airflow` before anything imports ``airflow`` (the locked setup cell does): Airflow
reads ``AIRFLOW_HOME`` and its database address once, when it is first imported. This module does
not import ``airflow`` itself until one of its functions needs it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as _dist_version
from pathlib import Path

from helpers.platform import config

DAG_BUNDLE = "dags-folder"


"""The bundle that DAGs run from a notebook or a stray file are registered in."""


class AirflowSetupError(RuntimeError):
    """Airflow cannot be used as configured (imported too early, or the migration failed)."""


def configure_airflow_env(dags_folder: str | Path | None = None) -> dict[str, str]:
    """Put the workbook's Airflow settings in ``os.environ``; values the user set are kept.

    Touches neither the disk nor the network, so a test ``conftest.py`` may call it early.

    Args:
        dags_folder: folder the ``dags-folder`` bundle scans; overrides
            ``AIRFLOW__CORE__DAGS_FOLDER``. Default: the variable, else ``<AIRFLOW_HOME>/dags``.

    Returns:
        The Airflow variables now in effect, by name.
    """
    home = config.airflow_home()
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: 32 workers would only thrash
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # task print()s and errors still show
        # Re-serialize an edited DAG at once (default: not within 30 s of the last write).
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
    }
    if dags_folder is not None:
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(dags_folder).resolve())
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in defaults}


def setup_airflow(migrate: bool = True, dags_folder: str | Path | None = None) -> Path:
    """Configure Airflow for this process and create its metadata database once.

    The first call runs ``airflow db migrate`` (about 10 s); later calls, from any process,
    find a marker file and return at once. A file lock makes concurrent first calls safe.

    Args:
        migrate: create or upgrade the metadata database if needed.
        dags_folder: see :func:`configure_airflow_env`.

    Returns:
        ``AIRFLOW_HOME``.

    Raises:
        AirflowSetupError: ``airflow`` was already imported with another home or database
            (restart the kernel), or the migration failed.
    """
    env = configure_airflow_env(dags_folder)
    home = Path(env["AIRFLOW_HOME"])
    _check_not_imported_elsewhere(home, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    home.mkdir(parents=True, exist_ok=True)
    Path(env["AIRFLOW__CORE__DAGS_FOLDER"]).mkdir(parents=True, exist_ok=True)
    if migrate:
        _migrate_once(home, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    return home


def _check_not_imported_elsewhere(home: Path, sql_conn: str) -> None:
    """Raise if ``airflow`` was imported before setup with a different home or database."""
    cfg = sys.modules.get("airflow.configuration")
    if cfg is None:
        return
    imported_home = Path(cfg.AIRFLOW_HOME).expanduser().resolve()
    imported_conn = getattr(sys.modules.get("airflow.settings"), "SQL_ALCHEMY_CONN", None)
    if imported_home != home or (imported_conn and imported_conn != sql_conn):
        raise AirflowSetupError(
            f"Airflow was imported before setup_airflow() and uses AIRFLOW_HOME={imported_home} "
            f"(database {imported_conn}), not {home}. Restart the kernel (Kernel > Restart) and "
            "run the setup cell before any cell that imports airflow."
        )


def _migrate_once(home: Path, sql_conn: str) -> None:
    """Run ``airflow db migrate`` unless a marker says this version already migrated this DB."""
    marker = home / ".db-migrated"
    stamp = f"apache-airflow-core {_dist_version('apache-airflow-core')} {sql_conn}"

    def done() -> bool:
        db_file = sql_conn.removeprefix("sqlite:///") if sql_conn.startswith("sqlite:///") else None
        return (marker.exists() and marker.read_text() == stamp
                and (db_file is None or Path(db_file).exists()))

    if done():
        return
    with _file_lock(home / ".db-migrate.lock"):
        if done():  # another process migrated while we waited for the lock
            return
        proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                              env=dict(os.environ), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise AirflowSetupError(f"`airflow db migrate` failed ({proc.returncode}):\n{tail}")
        marker.write_text(stamp)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
