"""The suite works in its own state folder: every path the helpers derive points into it."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.alerts.sink import alerts_db
from helpers.platform import config


def test_every_derived_path_is_in_the_suite_state_not_the_learners(test_state: Path, repo_root: Path):
    learner = repo_root / ".state"
    paths = {"state": config.state_dir(), "airflow home": config.airflow_home(), "course": config.course_dir(),
             "jars": config.jars_dir(), "data cache": config.data_dir(), "alerts db": alerts_db(),
             "capstone": config.capstone_dir(), "DVC remote": config.dvc_remote_dir(),
             "MLflow registry": Path(config.mlflow_tracking_uri().removeprefix("sqlite:///"))}
    for name, path in paths.items():
        assert path.is_relative_to(test_state), f"{name}: expected a path under {test_state}, got {path}"
        assert not path.is_relative_to(learner), f"{name}: {path} is inside the learner's {learner}"
    assert config.kafka_port() != config.DEFAULT_KAFKA_PORT or config.external_kafka(), (
        f"the suite's broker should not take the learner's port {config.DEFAULT_KAFKA_PORT}")


def test_learner_state_check_sees_a_change(monkeypatch, tmp_path: Path):
    """The end-of-run check (conftest.learner_files) notices a file written into the learner's folder."""
    import conftest

    monkeypatch.setattr(conftest, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(conftest, "LEARNER_STATE", tmp_path / ".state")
    monkeypatch.setattr(conftest, "LEARNER_DATA", tmp_path / "data" / "generated")
    before = conftest.learner_files()
    (tmp_path / ".state" / "alerts").mkdir(parents=True)
    (tmp_path / ".state" / "alerts" / "alerts.db").write_bytes(b"x")
    (tmp_path / ".state" / "kafka" / "logs").mkdir(parents=True)
    (tmp_path / ".state" / "kafka" / "logs" / "server.log").write_text("the learner's own broker")
    after = conftest.learner_files()
    assert before == {} and list(after) == [".state/alerts/alerts.db"], (
        f"expected only the alert DB to count as a change (the learner's broker log is theirs), got {after}")
    assert os.environ["WORKBOOK_STATE"] == str(config.state_dir())
