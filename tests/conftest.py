"""Shared fixtures: the live services, started once per test session and reused by every test."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from helpers import ports
from helpers.airflow import configure_airflow_env
from helpers.config import REPO_ROOT

# Airflow reads its configuration when first imported: set it before any test module imports airflow.
configure_airflow_env()

# The labs that read a dataset size (Lab 01's ETL input, Lab 02's Spark dataset) use 200,000 rows
# under test instead of the learners' default (100k / 1M): every lab notebook runs about three times
# in the suite (testbook, full and blank autograde), and nbgrader's kernels inherit this environment.
os.environ.setdefault("WORKBOOK_LAB_ROWS", "200000")

# nbgrader shells out to `alembic` and Jupyter to kernels: the environment's bin must be on PATH.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The workbook's root folder."""
    return REPO_ROOT

@pytest.fixture(scope="session")
def kafka_broker() -> str:
    """The live broker's bootstrap servers: the embedded one (started if needed) or the external one.

    The broker is left running after the session, like `make services` leaves it: `make stop` ends it.
    """
    from helpers.kafka import start_broker

    return start_broker()

@pytest.fixture(scope="session")
def spark():
    """This process's one SparkSession (local[*] unless SPARK_MASTER is set)."""
    from helpers.spark import get_spark, stop_spark

    session = get_spark("module05-tests")
    yield session
    stop_spark()

@pytest.fixture(scope="session")
def lock() -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of requirements.txt."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins

@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return ports.free_port()
