"""Lab 05a's answers never ship: not in the learners' copy, not in the lab05 release; and 05a works on the copy.

The copy and the release are built once (about 10 s: nbgrader releases every lab). Checked by name: no
``reference_*`` file, no ``autograder/``, no ``helpers/capstone`` (it runs the reference DAG), no function of
the copy's ``helpers`` named like a graded task's answer or its former shipped twin. Checked by behaviour:
the shipped pipeline steps and the registry's promotion take the learner's function as a required parameter
and use what it returns (a score, a split, a decision). Checked on the copy: every import of the released
05a notebook resolves against the copy's own ``helpers`` (with ``autograder`` not importable).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.platform.config import REPO_ROOT

ANSWER_NAMES = ("extract_snapshot", "extract_day", "data_quality_score", "check_score", "quality_score",
                "split_by_time", "time_split", "should_promote", "build_training_dag")
"""Lab 05a's graded functions (Tasks 1, 2, 4, 5.1, 6) and the shipped functions that used to solve them."""
REFERENCE_DAG_ID = "lab05_training_pipeline"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    from autograder.course import load_config
    from autograder.release import release
    from autograder.student_copy import build

    work = tmp_path_factory.mktemp("lab05a-integrity")
    copy = work / "learners"
    build(copy, echo=False)
    released = release(["lab05"], config=load_config(course_dir=work / "course"))["lab05"]
    return {"copy": copy, "release": released}


def _texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(errors="replace") for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".ipynb", ".md", ".txt", ".cfg")}


def test_no_reference_file_or_instructor_package_ships(built):
    """Check that neither the copy nor the lab05 release holds a reference file, autograder/ or helpers/capstone."""
    for where, root in built.items():
        found = sorted(p.relative_to(root).as_posix() for p in root.rglob("reference_*"))
        assert not found, (f"expected no instructor-only reference_* file in the {where}, found {found}: name "
                           f"reference files reference_* (nbgrader_config.py ignores them) and rebuild")
    assert (built["release"] / "05a_training_pipeline.ipynb").is_file(), f"expected 05a in {built['release']}"
    assert not (built["copy"] / "autograder").exists(), "expected no autograder/ (graders, references) in the copy"
    assert not (built["copy"] / "helpers" / "capstone").exists(), (
        "expected no helpers/capstone in the copy: it runs the reference DAG; see student_copy.NOT_SHIPPED")
    assert (built["copy"] / "helpers" / "pipeline" / "steps.py").is_file(), "the copy still needs the pipeline steps"


def test_no_answer_is_defined_or_the_reference_dag_named_in_what_ships(built):
    """Check by name: no def of a graded answer in the copy's helpers; the reference DAG's id appears nowhere."""
    defined = []
    for path in sorted((built["copy"] / "helpers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ANSWER_NAMES:
                defined.append(f"{path.relative_to(built['copy'])}:{node.lineno} def {node.name}")
    assert not defined, (f"expected no shipped function that solves a graded 05a task, found {defined}: move it "
                         f"to autograder/reference/lab05a.py and take it as a parameter where helpers need it")
    named = sorted(f"{where}:{rel}" for where, root in built.items() for rel, text in _texts(root).items()
                   if REFERENCE_DAG_ID in text)
    assert not named, f"expected the reference DAG ({REFERENCE_DAG_ID}) nowhere in what ships, found it in {named}"


def test_shipped_steps_require_and_use_the_learners_functions(tmp_path):
    """Check by behaviour: the steps and the promotion take the learner's function and use what it returns."""
    import inspect

    import pandas as pd

    from helpers.api.extract import COLUMNS
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.features.definitions import FEATURE_NAMES, LABEL
    from helpers.pipeline import steps
    from helpers.pipeline.training import train_and_evaluate
    from helpers.registry.promotion import promote_if_better

    required = {"steps.extract": (steps.extract, "snapshot"), "steps.check_raw": (steps.check_raw, "score"),
                "steps.check_features": (steps.check_features, "score"), "steps.train": (steps.train, "split"),
                "steps.register": (steps.register, "rule"), "train_and_evaluate": (train_and_evaluate, "split"),
                "promote_if_better": (promote_if_better, "rule")}
    for name, (func, param) in required.items():
        found = inspect.signature(func).parameters.get(param)
        assert found is not None and found.default is inspect.Parameter.empty, (
            f"expected {name} to take the learner's function as the required parameter {param!r}, got "
            f"{inspect.signature(func)}")

    day = "2026-01-02"
    events = generate_ecommerce(2_000, 7, day, 1, progress=False).events
    path = tmp_path / "events.parquet"
    events[COLUMNS].to_parquet(path)
    extracted = {"rows": len(events), "days": [day], "snapshots": [{"path": str(path)}]}
    raw = steps.check_raw(extracted, lambda result: 42.5)
    assert raw["score"] == 42.5, f"expected check_raw to report the score the learner's function gives (42.5), got {raw}"

    rows = 400
    frame = pd.DataFrame({name: [float(i % 7) for i in range(rows)] for name in FEATURE_NAMES})
    frame["event_time"] = pd.date_range("2026-01-02", periods=rows, freq="min", tz="UTC")
    frame[LABEL] = [int(i % 5 == 0) for i in range(rows)]

    def half(f: pd.DataFrame, share: float):
        return f.iloc[: len(f) // 2], f.iloc[len(f) // 2:]

    _, metrics, (train, holdout) = train_and_evaluate(frame, half, {"max_iter": 5})
    assert (len(train), len(holdout), metrics["holdout_rows"]) == (200, 200, 200.0), (
        f"expected train_and_evaluate to use the split it is given (200 / 200 rows), got {len(train)} / "
        f"{len(holdout)}")


def _imports(cells: list[str]) -> list[tuple[str, list[str]]]:
    found = []
    for source in cells:
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                found += [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_every_import_of_the_released_05a_resolves_against_the_copys_helpers(built):
    """Check that the learner's 05a (released, in the copy) imports only what the copy's own helpers hold."""
    notebook = json.loads((built["copy"] / "notebooks" / "lab05" / "05a_training_pipeline.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    wanted = _imports(cells)
    assert any(module == "helpers.pipeline" and "steps" in names for module, names in wanted), (
        f"expected the released 05a to import the pipeline steps, got {wanted}")
    probe = textwrap.dedent("""
        import importlib, importlib.util, json, sys
        copy = sys.argv[1]
        problems = []
        if importlib.util.find_spec("autograder") is not None:
            problems.append("autograder is importable from the copy")
        for module, names in json.loads(sys.argv[2]):
            try:
                loaded = importlib.import_module(module)
            except Exception as err:
                problems.append(f"import {module}: {type(err).__name__}: {err}")
                continue
            if module.split(".")[0] == "helpers" and not str(getattr(loaded, "__file__", "")).startswith(copy):
                problems.append(f"{module} came from {loaded.__file__}, not the copy")
            for name in names:
                if not hasattr(loaded, name):
                    try:
                        importlib.import_module(f"{module}.{name}")
                    except ImportError:
                        problems.append(f"from {module} import {name}: no such name")
        print(json.dumps(problems))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(built["copy"])}
    done = subprocess.run([sys.executable, "-c", probe, str(built["copy"]), json.dumps(wanted)], cwd=built["copy"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"expected the import probe to run, got exit {done.returncode}:\n{done.stderr[-3000:]}"
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    assert not problems, (f"expected every import of the released 05a to resolve against the copy's helpers, "
                          f"got {problems}: ship what the notebook imports (student_copy.SHIPPED)")
    assert REPO_ROOT not in Path(built["copy"]).parents, "the copy must be built outside the workbook"
