"""Lab 04 helpers: the batches with known problems and drift, the quality gate (command, exit codes,
Airflow task, alert) and the CI example, on real files and a real Airflow run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import ks_2samp

from helpers.data.quality_batches import (
    CATEGORICAL,
    LAB_BATCHES,
    NUMERIC,
    expected_failures,
    load_manifest,
    make_batch,
    read_batch,
    write_batch,
)
from helpers.platform.config import REPO_ROOT
from helpers.quality.gate import EXIT_ERROR, gate_main, main, run_gate
from helpers.quality.suites import active_context, save_suite
from helpers.viz import plot_drift

LAB = REPO_ROOT / "notebooks" / "lab04"


def small_suite(as_of: pd.Timestamp):
    """A few expectations (not the lab's answer): enough to catch some problems and miss others."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    active_context()
    suite = gx.ExpectationSuite(name="test_suite")
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="revenue"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="device", value_set=["mobile", "desktop", "tablet"]))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="start_time", min_value=(as_of - pd.Timedelta(days=30)).to_pydatetime(), max_value=as_of.to_pydatetime()))
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=100))
    return suite


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict[str, Path]:
    """A bad and a clean February batch (CSV and Parquet) and the small suite saved as JSON."""
    folder = tmp_path_factory.mktemp("lab04")
    bad, manifest = make_batch(rows=4_000, seed=7, start="2026-01-31",
                               problems={"revenue:not_null": 12, "device:category": 9, "start_time:freshness": 5,
                                         "n_events:range": 4}, drift={"avg_price": 1.8})
    clean, _ = make_batch(rows=4_000, seed=8, start="2026-01-31")
    out = {"bad": write_batch(bad, folder / "bad.csv", manifest), "clean": write_batch(clean, folder / "clean.csv"),
           "bad_parquet": write_batch(bad, folder / "bad.parquet", manifest)}
    out["suite"] = save_suite(small_suite(pd.Timestamp(manifest["as_of"])), folder / "suite.json")
    return out


def gate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers.quality", "gate", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


# ----------------------------------------------------------------------------------- the data
def test_batches_are_reproducible_and_problems_land_exactly_where_the_manifest_says():
    problems = {"user_id:not_null": 5, "segment:category": 7, "duration_s:range": 3, "start_time:freshness": 6}
    df, manifest = make_batch(rows=2_000, seed=11, problems=problems)
    again, _ = make_batch(rows=2_000, seed=11, problems=problems)
    pd.testing.assert_frame_equal(df, again)
    assert expected_failures(manifest) == {("user_id", "not_null"): 5, ("segment", "category"): 7,
                                           ("duration_s", "range"): 3, ("start_time", "freshness"): 6}
    assert df["user_id"].isna().sum() == 5 and df.drop(columns="user_id").notna().all().all()
    assert (~df["segment"].isin(["new", "regular", "loyal", "vip"])).sum() == 7
    assert ((df["duration_s"] < 0) | (df["duration_s"] > 14_400)).sum() == 3
    as_of = pd.Timestamp(manifest["as_of"])
    assert ((df["start_time"] < as_of - pd.Timedelta(days=30)) | (df["start_time"] > as_of)).sum() == 6
    assert df["session_id"].is_unique


def test_drift_is_where_the_manifest_says_and_nowhere_else():
    reference, _ = make_batch(rows=5_000, seed=1)
    drifted, manifest = make_batch(rows=5_000, seed=2, start="2026-01-31", **{
        k: v for k, v in LAB_BATCHES["new_batch"].items() if k == "drift"})
    assert manifest["drifted_columns"] == ["avg_price", "device"]
    d = {c: ks_2samp(reference[c], drifted[c]).statistic for c in NUMERIC}
    assert d["avg_price"] > 0.2 and max(v for c, v in d.items() if c != "avg_price") < 0.05, d
    share = drifted["device"].value_counts(normalize=True)
    assert abs(share["mobile"] - 0.80) < 0.02, share
    for column in CATEGORICAL[1:]:
        gap = (reference[column].value_counts(normalize=True) - drifted[column].value_counts(normalize=True)).abs().max()
        assert gap < 0.03, (column, gap)


def test_make_batch_rejects_a_rule_that_does_not_exist():
    with pytest.raises(ValueError, match="no rule"):
        make_batch(rows=100, problems={"revenue:category": 1})
    with pytest.raises(ValueError, match="drift only"):
        make_batch(rows=100, drift={"session_id": 2.0})


def test_csv_round_trip_keeps_types(batches):
    df = read_batch(batches["bad"])
    assert str(df["start_time"].dtype) == "datetime64[ns, UTC]"
    assert df["start_time"].isna().sum() == 0 and df["revenue"].isna().sum() == 12
    assert load_manifest(batches["bad"])["file"] == "bad.csv"


# ----------------------------------------------------------------------------------- the gate
def test_gate_command_exits_1_and_names_the_failing_expectations(batches):
    proc = gate_cli(str(batches["bad"]), "--suite", str(batches["suite"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "quality gate FAILED: 1/4 expectations" in proc.stdout
    for line in ("expect_column_values_to_not_be_null(column=revenue): 12 rows",
                 "expect_column_values_to_be_in_set(column=device): 9 rows",
                 "expect_column_values_to_be_between(column=start_time): 5 rows"):
        assert line in proc.stdout, proc.stdout


def test_gate_command_exits_0_on_a_clean_batch_and_writes_json(batches, tmp_path):
    out = tmp_path / "gate.json"
    proc = gate_cli(str(batches["clean"]), "--suite", str(batches["suite"]), "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "quality gate PASSED: 4/4" in proc.stdout
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["rows"] == 4_000 and report["failures"] == []


def test_gate_threshold_and_parquet(batches):
    result = run_gate(batches["bad_parquet"], batches["suite"], threshold=25.0)
    assert result.passed and result.success_percent == 25.0 and len(result.failing) == 3
    assert not run_gate(batches["bad_parquet"], batches["suite"], threshold=26.0).passed


def test_gate_exits_2_with_a_clear_message_on_unreadable_input(batches, tmp_path, capsys):
    assert gate_main(str(tmp_path / "missing.csv"), str(batches["suite"])) == EXIT_ERROR
    assert "missing.csv does not exist" in capsys.readouterr().err
    broken = tmp_path / "suite.json"
    broken.write_text("{not json")
    assert gate_main(str(batches["clean"]), str(broken)) == EXIT_ERROR
    assert "not an expectation suite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["gate", str(batches["clean"]), "--suite", str(batches["suite"]), "--threshold", "150"])


def test_ci_workflow_step_runs_the_real_gate_cli(batches, tmp_path):
    """The workflow's own shell step, run by bash in a checkout-like folder: the dirty batch fails the job."""
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((LAB / "ci" / "quality-gate.yml").read_text())
    job = workflow["jobs"]["quality-gate"]
    script = next(s["run"] for s in job["steps"] if "helpers.quality gate" in s.get("run", ""))
    incoming = tmp_path / "data" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "clean.csv").write_bytes(batches["clean"].read_bytes())
    (incoming / "dirty.csv").write_bytes(batches["bad"].read_bytes())
    suite = tmp_path / job["env"]["SUITE"]
    suite.parent.mkdir(parents=True)
    suite.write_bytes(batches["suite"].read_bytes())
    bin_dir = tmp_path / "bin"  # `python` on the runner is the workbook's environment
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, **{k: str(v) for k, v in job["env"].items()},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, (
        f"expected the step to exit 1 (the dirty batch fails the gate), got {proc.returncode}:\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    clean = json.loads((tmp_path / "gate-clean.json").read_text())
    dirty = json.loads((tmp_path / "gate-dirty.json").read_text())
    assert clean["passed"] and not dirty["passed"], (
        f"expected clean to pass and dirty to fail, got {clean['passed']} / {dirty['passed']}")
    assert "revenue" in proc.stdout + proc.stderr, "the job log should name the failing column"


def test_plot_drift_draws_one_titled_panel_per_feature():
    reference, _ = make_batch(rows=1_000, seed=1)
    current, _ = make_batch(rows=1_000, seed=2, drift={"avg_price": 2.0})
    drift = pd.DataFrame({"column": ["avg_price", "device"], "test": ["ks", "psi"], "statistic": [0.4, 0.001],
                          "threshold": [0.1, 0.2], "drifted": [True, False]})
    fig = plot_drift(reference, current, drift)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["avg_price: ks 0.400 DRIFT", "device: psi 0.001 ok"]


# ----------------------------------------------------------------------------------- Airflow + alert
def test_dag_fails_on_a_bad_batch_alerts_and_publishes_a_clean_one(batches, tmp_path, monkeypatch):
    from helpers.airflow.runner import run_dag
    from helpers.alerts.sink import read_alerts

    monkeypatch.setenv("WORKBOOK_ALERTS_DB", str(tmp_path / "alerts.db"))
    dag_file = LAB / "dags" / "quality_gate_dag.py"
    bad = run_dag(dag_file, conf={"data": str(batches["bad"]), "suite": str(batches["suite"])})
    assert bad.state == "failed"
    assert bad.tasks["quality_gate"].state == "failed" and bad.tasks["publish_batch"].state == "upstream_failed"
    (alert,) = read_alerts("lab04.dag.quality_gate")
    assert alert.details["task_id"] == "quality_gate" and "column=revenue" in alert.details["error"]
    good = run_dag(dag_file, conf={"data": str(batches["clean"]), "suite": str(batches["suite"])})
    assert good.state == "success"
    assert good.xcoms["publish_batch"]["return_value"].startswith("published 4,000 rows")
    assert len(read_alerts("lab04.dag.quality_gate")) == 1
