"""Manual scores into ``grades.csv``: ``python -m autograder.grades [--out DIR]`` (``make grades``).

Scores typed in the formgrader (``python -m autograder.formgrader``) are stored in nbgrader's gradebook
(``.state/course/gradebook.db``), not in the ``grades.csv`` that ``python -m autograder.grade`` wrote.
This command reads the gradebook and rewrites ``DIR/grades.csv`` (default: the course folder) with
four more columns per student and notebook:

| column | meaning |
|--------|---------|
| ``manual_score`` | points given by hand so far to the manually graded answers |
| ``max_manual_score`` | the manually graded answers' total |
| ``score`` | the notebook's total: test cells (or the score a grader typed over one) + manual + extra credit |
| ``max_score`` | the notebook's total points |

``needs_manual_grading`` is refreshed (``False`` once every manual answer has a score). The other
columns of the rows already in ``grades.csv`` (status, message, feedback, seconds) are kept; a
submission graded elsewhere (e.g. from the formgrader) gets a new row. Run it again after each
grading session: it only reads the gradebook. ``--feedback`` also regenerates each learner's feedback
HTML, so that it shows the manual scores and your comments.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python autograder/grades.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from traitlets.config import Config

from autograder.course import course_dir, load_config, open_api, step_dir

MANUAL_COLUMNS = ["manual_score", "max_manual_score", "score", "max_score"]


def _base_columns() -> list[str]:
    from autograder.grade import COLUMNS  # the autograder's columns, in its order

    return list(COLUMNS)


def gradebook_rows(config: Config) -> dict[tuple[str, str, str], dict]:
    """Return ``{(student, assignment, notebook): scores}`` for every submitted notebook in the gradebook.

    A manually graded answer is a grade cell that is also a solution cell (nbgrader's "Manually graded
    answer"); its points count in ``manual_score`` once a person gave them (an answer left as released
    is scored 0 by nbgrader itself), and the notebook still ``needs_manual_grading`` while any cell waits.
    """
    from nbgrader.api import Gradebook

    rows: dict[tuple[str, str, str], dict] = {}
    with Gradebook(config.CourseDirectory.db_url) as gb:
        for assignment in gb.assignments:
            for notebook in assignment.notebooks:
                manual_cells = {c.name for c in notebook.grade_cells} & {c.name for c in notebook.solution_cells}
                max_manual = sum(c.max_score for c in notebook.grade_cells if c.name in manual_cells)
                for submitted in notebook.submissions:
                    manual = [g for g in submitted.grades if g.name in manual_cells]
                    waiting = any(g.needs_manual_grade for g in submitted.grades)
                    given = sum((g.manual_score if g.manual_score is not None else g.auto_score or 0.0)
                                + (g.extra_credit or 0.0) for g in manual)
                    auto = sum(g.auto_score or 0.0 for g in submitted.grades if g.name not in manual_cells)
                    rows[(submitted.student.id, assignment.name, notebook.name)] = {
                        "auto_score": float(auto),
                        "max_auto_score": float(sum(c.max_score for c in notebook.grade_cells
                                                    if c.name not in manual_cells)),
                        "needs_manual_grading": bool(waiting),
                        "manual_score": float(given),
                        "max_manual_score": float(max_manual),
                        "score": float(submitted.score),
                        "max_score": float(submitted.max_score),
                    }
    return rows


def export(out_dir: Path | str | None = None, config: Config | None = None, feedback: bool = False) -> Path:
    """Merge the gradebook's scores into ``grades.csv`` (see the module docstring).

    Args:
        out_dir: the folder of ``grades.csv`` (default: the course folder, where ``autograder.grade`` writes it).
        config: course configuration (default :func:`autograder.course.load_config`).
        feedback: also regenerate the feedback HTML of every graded submission.

    Returns:
        The path of ``grades.csv``.
    """
    config = config if config is not None else load_config()
    out = Path(out_dir).resolve() if out_dir is not None else course_dir(config)
    path = out / "grades.csv"
    existing: list[dict] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as handle:
            existing = list(csv.DictReader(handle))
    scores = gradebook_rows(config)
    rows, seen = [], set()
    for row in existing:
        key = (row.get("student", ""), row.get("assignment", ""), row.get("notebook", ""))
        seen.add(key)
        found = scores.get(key, {})  # the autograder's own columns stay as it wrote them
        rows.append({**row, **dict.fromkeys(MANUAL_COLUMNS, ""),
                     **{k: v for k, v in found.items() if k in MANUAL_COLUMNS or k == "needs_manual_grading"}})
    for (student, assignment, notebook), values in sorted(scores.items()):
        if (student, assignment, notebook) not in seen:
            rows.append({"student": student, "assignment": assignment, "notebook": notebook,
                         "status": "graded", "message": "graded outside autograder.grade", **values})
    if feedback:
        _regenerate_feedback(config, rows)
    columns = _base_columns() + MANUAL_COLUMNS
    out.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _regenerate_feedback(config: Config, rows: list[dict]) -> None:
    """Rebuild each graded submission's feedback HTML (manual scores and comments included)."""
    api = open_api(config)
    for student, assignment in sorted({(r["student"], r["assignment"]) for r in rows if r.get("score") != ""
                                       and r.get("status") == "graded"}):
        result = api.generate_feedback(assignment, student, force=True)
        if not result["success"]:
            print(f"{student}/{assignment}: feedback failed: {result.get('error') or result.get('log')}",
                  file=sys.stderr)
            continue
        for row in [r for r in rows if r["student"] == student and r["assignment"] == assignment]:
            html = step_dir(config, "feedback", assignment, student) / f"{row['notebook']}.html"
            if not html.exists():
                continue
            if row.get("feedback_html") and Path(row["feedback_html"]) != html:  # a copy in --out: refresh it
                Path(row["feedback_html"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(html, row["feedback_html"])
            else:
                row["feedback_html"] = str(html)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m autograder.grades", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder of grades.csv (default: the course folder)")
    parser.add_argument("--feedback", action="store_true", help="also regenerate the learners' feedback HTML")
    args = parser.parse_args(argv)
    config = load_config()
    if not (course_dir(config) / "gradebook.db").exists():
        print(f"No gradebook in {course_dir(config)}: grade the submissions first (`make grade`).", file=sys.stderr)
        return 1
    path = export(args.out, config, feedback=args.feedback)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    waiting = [f"{r['student']}/{r['assignment']}/{r['notebook']}" for r in rows if r["needs_manual_grading"] == "True"]
    print(f"wrote {path}: {len(rows)} row(s); waiting for manual grading: {', '.join(waiting) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
