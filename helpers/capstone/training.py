"""The capstone's ``training`` part: one headless run of the training DAG against the live services.

By default it trains on every day the events API serves (:func:`helpers.api.app.dataset_args`:
200,000 events over 2026-01-01..07 for learners), so the run processes the whole dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.capstone.summary import Part, register_part
from helpers.platform.config import REPO_ROOT

DAG_FILE = REPO_ROOT / "notebooks" / "lab05" / "dags" / "reference_training_pipeline.py"
"""The reference DAG (instructor-only: it imports :mod:`autograder.reference`; so does this part)."""


def default_window() -> tuple[str, int]:
    """``(last day, number of days)`` of the dataset the API serves."""
    from helpers.api.app import dataset_args

    args = dataset_args()
    last = pd.Timestamp(args["start"]) + pd.Timedelta(days=int(args["days"]) - 1)
    return last.date().isoformat(), int(args["days"])


def run_training(options: Mapping[str, Any]) -> dict[str, Any]:
    """Start the API if needed, run the DAG for ``options['date']`` over ``options['days']``; the section.

    Options: ``date``, ``days`` (default: the API's whole dataset), ``conf`` (more DAG settings),
    ``dag_file`` (default: the reference DAG).
    """
    from helpers.airflow.runner import run_dag
    from helpers.api.server import start_api
    from helpers.versioning.datarepo import status

    last, days = default_window()
    day, days = options.get("date") or last, int(options.get("days") or days)
    start_api()
    result = run_dag(Path(options.get("dag_file") or DAG_FILE), logical_date=day,
                     conf={"days": days, **dict(options.get("conf") or {})})
    xcoms = {task: values.get("return_value") for task, values in result.xcoms.items()}
    section: dict[str, Any] = {
        "ok": result.ok, "dag_id": result.dag_id, "run_id": result.run_id, "logical_date": day, "days": days,
        "tasks": {t: {"state": r.state, "try": r.try_number, "seconds": r.duration_s} for t, r in result.tasks.items()},
    }
    extracted, built = xcoms.get("extract_data") or {}, xcoms.get("transform_features") or {}
    raw, checked = xcoms.get("validate_raw_data") or {}, xcoms.get("validate_features") or {}
    trained, registered = xcoms.get("train_model") or {}, xcoms.get("register_model") or {}
    section["records"] = {"raw_events": extracted.get("rows"), "feature_rows": built.get("rows"),
                          "train_rows": trained.get("train_rows"), "holdout_rows": trained.get("holdout_rows")}
    section["quality"] = {"score": checked.get("quality_score"), "raw_suite": raw.get("score"),
                          "features_suite": checked.get("score"), "goal": 95.0}
    metrics = trained.get("metrics") or {}
    section["model"] = {**{k: registered.get(k) for k in ("name", "version", "promoted", "champion", "reason")},
                        "metrics": {k: metrics.get(k) for k in ("roc_auc", "pr_auc", "brier", "log_loss")},
                        "baseline": {k.removeprefix("baseline_"): metrics.get(k)
                                     for k in ("baseline_roc_auc", "baseline_pr_auc", "baseline_brier")}}
    section["data"] = {"raw": [{k: s[k] for k in ("day", "rows", "sha256", "md5")}
                               for s in extracted.get("snapshots", [])],
                       "features": {k: built.get(k) for k in ("rel_path", "rows", "sha256", "md5")}}
    if result.ok and not registered:
        skipped = [t for t, r in result.tasks.items() if r.state == "skipped"]
        section.update(ok=False, error=f"no model was trained: {skipped} skipped (no events for {day}?)")
    elif result.ok:
        found = status()
        section["data"]["dvc_status_clean"] = found.clean
        section["ok"] = found.clean
    else:
        failed = [t for t, r in result.tasks.items() if r.state == "failed"]
        section["error"] = f"the DAG run {result.state}: failed task(s) {failed}; see the task logs / alert sink"
    return section


def report_training(section: Mapping[str, Any]) -> list[str]:
    """A few lines: records, quality, model vs baseline, data versions, task times."""
    rec, quality, model = section["records"], section["quality"], section["model"]
    m, base = model["metrics"], model["baseline"]
    times = ", ".join(f"{t} {v['seconds']:.1f}s" for t, v in section["tasks"].items() if v["seconds"] is not None)
    return [f"records: {rec['raw_events']:,} raw events over {section['days']} day(s), {rec['feature_rows']:,} "
            f"feature rows (train {rec['train_rows']:,} / holdout {rec['holdout_rows']:,})",
            f"data quality score: {quality['score']:.2f} % (goal > {quality['goal']:g} %)",
            f"model {model['name']} v{model['version']}: ROC AUC {m['roc_auc']:.3f} (baseline {base['roc_auc']:.2f}), "
            f"PR AUC {m['pr_auc']:.3f} (baseline {base['pr_auc']:.3f}), Brier {m['brier']:.4f} "
            f"(baseline {base['brier']:.4f})",
            f"champion: v{model['champion']} ({model['reason']})",
            f"data: features {section['data']['features']['md5']}, raw "
            + ", ".join(f"{r['day']} {r['md5'][:8]}" for r in section["data"]["raw"])
            + f"; dvc status clean: {section['data'].get('dvc_status_clean')}",
            f"task times: {times}"]


PART = register_part(Part("training", run_training, report_training))
