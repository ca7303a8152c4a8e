"""Lab 05's training DAG end to end against the live events API, Spark, GX, MLflow (SQLite) and DVC.

One capstone folder for the module's successful runs (a run with a transient API fault, a second run
that trains on two days, a retrain of the first version from its data version, a registry that does
not answer); a fresh folder for each bad-input run (API down, a malformed page, an empty day, a bad
batch, a DVC remote gone). The suite's API serves 30,000 events over 2026-01-01..03 (conftest.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers.airflow.results import DagRunResult
from helpers.alerts.sink import last_alert_id, read_alerts
from helpers.api import server
from helpers.api.extract import COLUMNS, snapshot_path, write_snapshot

DAG_FILE = Path(__file__).resolve().parents[1] / "notebooks" / "lab05" / "dags" / "reference_training_pipeline.py"
TASKS = ["extract_data", "validate_raw_data", "transform_features", "validate_features", "train_model",
         "register_model"]
MODEL = "purchase_next_1h"
SOURCE = "lab05.training_pipeline"

pytestmark = pytest.mark.slow  # a few minutes of Spark + MLflow + DVC runs: not part of the fast tier


def _use_capstone(mp: pytest.MonkeyPatch, folder: Path) -> None:
    mp.setenv("WORKBOOK_CAPSTONE", str(folder))
    mp.setenv("WORKBOOK_DVC_REMOTE", str(folder / "dvc-remote"))
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")


def _run(day: str, **conf) -> DagRunResult:
    from helpers.airflow.runner import run_dag

    result = run_dag(DAG_FILE, logical_date=day, conf=conf)
    print(result.summary())
    return result


def _champion() -> str | None:
    from helpers.registry.models import champion_version

    return champion_version(MODEL)


def _versions() -> list[str]:
    from mlflow import MlflowClient

    from helpers.registry.tracking import connect

    connect()
    return sorted(v.version for v in MlflowClient().search_model_versions(f"name='{MODEL}'"))


def _not_run(result: DagRunResult, after: str) -> list[str]:
    """The tasks after ``after`` that did something (they should not have)."""
    later = TASKS[TASKS.index(after) + 1:]
    return [t for t in later if result.tasks[t].state not in ("upstream_failed", "skipped", "removed", "none")]


@pytest.fixture(scope="module")
def capstone(tmp_path_factory, events_api):
    """The module's capstone folder (snapshots, features, DVC remote, MLflow registry)."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("capstone")
        _use_capstone(mp, folder)
        yield folder


@pytest.fixture(scope="module")
def first_run(capstone, events_api) -> DagRunResult:
    """2026-01-02 (one day); the API fails the extract's first 3 requests (2 attempts per task try)."""
    client = "lab05-dag-first"
    server.set_faults(client, fail_next=3, status=503)
    try:
        return _run("2026-01-02", client_id=client, max_attempts=2, backoff_s=0.1)
    finally:
        server.clear_faults(client)


@pytest.fixture
def fresh(tmp_path, monkeypatch, events_api) -> Path:
    """A capstone folder of this test's own."""
    _use_capstone(monkeypatch, tmp_path / "capstone")
    return tmp_path / "capstone"


def test_run_survives_a_transient_api_fault_and_runs_every_task(first_run):
    """Check that the DAG retries the extract through 503s, then every task succeeds in the seed's order."""
    assert first_run.ok, f"expected the run to succeed, got:\n{first_run.summary()}"
    assert list(first_run.tasks) == TASKS, f"expected the tasks {TASKS}, got {list(first_run.tasks)}"
    extract = first_run.tasks["extract_data"]
    assert extract.try_number == 2, (
        f"expected try 1 to give up after 2 attempts on 503 and try 2 to succeed, got try {extract.try_number}")
    assert first_run.xcom("extract_data")["retries"] >= 1, "expected the second try to retry one more 503"
    for task in TASKS:
        size = len(json.dumps(first_run.xcom(task)))
        assert size < 4_000, f"expected a small XCom (paths, hashes, metrics) from {task}, got {size} bytes"


def test_quality_score_and_metrics_beat_the_prior(first_run):
    """Check the run's data quality score (> 95 %) and that the model beats the base rate on ROC and PR AUC."""
    assert first_run.xcom("validate_features")["quality_score"] > 95.0
    metrics = first_run.xcom("train_model")["metrics"]
    assert metrics["roc_auc"] > 0.58 and metrics["pr_auc"] > 1.2 * metrics["prior"], (
        f"expected the model to beat the prior clearly, got {metrics}")
    assert first_run.xcom("transform_features")["rows"] > 5_000, "expected thousands of training events per day"


def test_first_model_is_champion_tagged_with_its_data_and_dvc_is_clean(first_run):
    """Check the registry (version 1, champion, data + code tags) and that DVC's status is clean and pushed."""
    from mlflow import MlflowClient

    from helpers.versioning.datarepo import status

    registered = first_run.xcom("register_model")
    assert registered["promoted"] and _champion() == registered["version"] == "1", registered
    tags = MlflowClient().get_model_version(MODEL, "1").tags
    assert tags["data.features"] == first_run.xcom("transform_features")["md5"]
    assert tags["data.raw"] == first_run.xcom("extract_data")["snapshots"][0]["md5"]
    assert tags["code.git_commit"], "expected the code version on the model"
    found = status()
    assert found.clean, f"expected `dvc status` clean and everything pushed after a run, got {found}"


def test_second_run_is_idempotent_on_raw_data_and_an_old_version_reproduces(first_run):
    """Check that the day's snapshot is kept byte for byte, and that version 1 retrains to its own metrics."""
    from autograder.reference.lab05a import split_by_time
    from helpers.pipeline.training import reproduce

    second = _run("2026-01-02", days=2)
    assert second.ok, second.summary()
    kept = {s["day"]: s for s in second.xcom("extract_data")["snapshots"]}["2026-01-02"]
    first = first_run.xcom("extract_data")["snapshots"][0]
    assert not kept["written"] and kept["sha256"] == first["sha256"], (
        f"expected the re-run to keep the 2026-01-02 snapshot untouched, got {kept} vs {first}")
    assert second.xcom("transform_features")["md5"] != first_run.xcom("transform_features")["md5"]
    assert second.xcom("register_model")["version"] == "2"
    again = reproduce(MODEL, "1", split_by_time)
    logged = first_run.xcom("train_model")["metrics"]
    for name in ("roc_auc", "pr_auc", "brier"):
        assert again[name] == pytest.approx(logged[name], abs=1e-6), (
            f"expected version 1's {name} again from its data version, got {again[name]} vs {logged[name]}")


def test_registry_unreachable_fails_register_and_keeps_the_champion(first_run, free_port):
    """Check that a registry that does not answer fails register_model only, and no alias moves."""
    before, since = _champion(), last_alert_id()
    result = _run("2026-01-03", tracking_uri=f"http://127.0.0.1:{free_port}", registry_wait_s=1)
    assert result.tasks["train_model"].state == "success" and result.tasks["register_model"].state == "failed", (
        result.summary())
    alerts = read_alerts(f"{SOURCE}.register_model", since)
    assert alerts and "did not answer" in alerts[-1].details["error"], f"expected an alert naming the cause: {alerts}"
    assert _champion() == before, "the champion must not change when the registry is down"


def test_bad_batch_stops_at_the_gate_naming_expectations(fresh):
    """Check that a dirty snapshot fails validate_raw_data with the expectations named and an alert; nothing runs after."""
    from helpers.data.ecommerce import generate_ecommerce

    dirty = generate_ecommerce(12_000, 42, "2026-01-02", 1, dirty_fraction=0.05, progress=False).events
    write_snapshot(dirty[COLUMNS], snapshot_path("2026-01-02", fresh / "data"))
    since = last_alert_id()
    result = _run("2026-01-02")
    assert result.tasks["validate_raw_data"].state == "failed", result.summary()
    assert not _not_run(result, "validate_raw_data"), f"nothing should run after the gate: {result.summary()}"
    alerts = read_alerts(f"{SOURCE}.validate_raw_data", since)
    assert alerts, "expected an alert in the course's alert sink"
    error = alerts[-1].details["error"]
    for name in ("expect_column_values_to_be_unique(column=event_id)", "expect_column_values_to_not_be_null"):
        assert name in error, f"expected the failure to name {name}, got {error[:600]}"
    assert not (fresh / "models").exists(), "no model may be trained on a batch that failed the gate"


def test_empty_day_trains_nothing_and_moves_no_alias(fresh):
    """Check that a day without events skips everything after the extract, with a warning alert."""
    since = last_alert_id()
    result = _run("2026-02-01")
    assert result.xcom("extract_data")["rows"] == 0
    assert result.tasks["validate_raw_data"].state == "skipped", result.summary()
    assert not _not_run(result, "validate_raw_data"), f"nothing should run on an empty day: {result.summary()}"
    assert [a.severity for a in read_alerts(f"{SOURCE}.validate_raw_data", since)] == ["warning"]
    assert _versions() == [] and _champion() is None, "an empty day must register nothing and move no alias"


def test_api_down_fails_the_extract_after_bounded_retries(fresh, free_port):
    """Check that an API nobody answers fails extract_data after its retries, saying where it looked."""
    since = last_alert_id()
    result = _run("2026-01-02", api_url=f"http://127.0.0.1:{free_port}", max_attempts=2, backoff_s=0.05)
    extract = result.tasks["extract_data"]
    assert extract.state == "failed" and extract.try_number == 3, (
        f"expected 3 tries (2 retries) then failure, got {extract.state} after try {extract.try_number}")
    error = read_alerts(f"{SOURCE}.extract_data", since)[-1].details["error"]
    assert f"127.0.0.1:{free_port}" in error and "after 2 attempts" in error, error


def test_malformed_page_fails_at_once_naming_the_page(fresh):
    """Check that a truncated page fails extract_data without retrying, naming the page, and writes nothing."""
    client = "lab05-dag-malformed"
    server.set_faults(client, malformed_next=1)
    since = last_alert_id()
    try:
        result = _run("2026-01-02", client_id=client)
    finally:
        server.clear_faults(client)
    extract = result.tasks["extract_data"]
    assert extract.state == "failed" and extract.try_number == 1, "a malformed page is not worth a retry"
    error = read_alerts(f"{SOURCE}.extract_data", since)[-1].details["error"]
    assert "page 1" in error and "malformed" in error, error
    assert not snapshot_path("2026-01-02", fresh / "data").exists(), "no snapshot may be written from a bad page"


def test_missing_dvc_remote_is_a_clear_error(fresh):
    """Check that a DVC remote folder that disappeared fails the extract, naming the folder."""
    from helpers.versioning.datarepo import setup_repo

    setup_repo(fresh / "data", fresh / "dvc-remote")
    shutil.rmtree(fresh / "dvc-remote")
    since = last_alert_id()
    result = _run("2026-01-02")
    assert result.tasks["extract_data"].state == "failed", result.summary()
    error = read_alerts(f"{SOURCE}.extract_data", since)[-1].details["error"]
    assert "dvc-remote" in error and "does not exist" in error, error
    assert not (fresh / "dvc-remote").exists(), "the pipeline must not quietly create a new, empty remote"


def test_features_file_is_point_in_time_per_logical_date(first_run):
    """Check the feature set's place and shape: one file per logical date, no event of the last hour."""
    built = first_run.xcom("transform_features")
    frame = pd.read_parquet(built["path"])
    assert built["rel_path"] == "features/date=2026-01-02/features.parquet"
    assert frame["event_time"].max() < pd.Timestamp("2026-01-02 23:00", tz="UTC"), (
        "events of the last hour have no observable label yet and must be left out")
