"""The capstone's parts and its machine-readable summary (``<capstone>/summary.json``).

A part is ``(name, run, report)``: ``run(options) -> dict`` does the work and returns its section
(small, JSON-ready: counts, scores, versions, metrics, hashes, timings, and ``ok``); ``report(section)
-> list[str]`` turns it into a few lines for people. :func:`run_parts` runs the chosen parts in order
and writes the summary even when a part fails (its section then says what failed), so a broken run
leaves evidence behind. A part sees the sections of the parts before it in ``options["sections"]``
(``{name: section}``: the streaming part serves the model the training part registered).
"""

from __future__ import annotations

import json
import platform
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers.platform import config

SUMMARY_VERSION = 1


@dataclass(frozen=True)
class Part:
    """One piece of the capstone."""

    name: str
    run: Callable[[Mapping[str, Any]], dict[str, Any]]
    report: Callable[[Mapping[str, Any]], list[str]]


PARTS: list[Part] = []
"""The capstone's parts, in run order (each part's module appends itself through :func:`register_part`)."""


def register_part(part: Part) -> Part:
    """Add (or replace, by name) a part of the capstone."""
    PARTS[:] = [p for p in PARTS if p.name != part.name] + [part]
    return part


def summary_path() -> Path:
    """``<capstone>/summary.json``."""
    return config.capstone_dir() / "summary.json"


def run_parts(names: list[str] | None, options: Mapping[str, Any], out: Path | None = None) -> dict[str, Any]:
    """Run the parts named (all when None), write the summary, return it.

    Raises:
        ValueError: an unknown part name (the known ones are listed).
    """
    known = {p.name: p for p in PARTS}
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"unknown capstone part(s) {unknown}: choose from {list(known)}")
    chosen = [p for p in PARTS if names is None or p.name in names]
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine()}, "parts": {}}
    t0 = time.perf_counter()
    for part in chosen:
        started = time.perf_counter()
        try:
            section = part.run({**options, "sections": dict(summary["parts"])})
        except Exception as err:  # noqa: BLE001 (the summary records any failure of a part, then the run stops)
            section = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        section.setdefault("seconds", round(time.perf_counter() - started, 2))
        summary["parts"][part.name] = section
        if not section.get("ok"):
            break
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["ok"] = bool(chosen) and all(s.get("ok") for s in summary["parts"].values()) and \
        len(summary["parts"]) == len(chosen)
    path = out or summary_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tmp.replace(path)
    summary["path"] = str(path)
    return summary


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """The short human report of a summary: one block per part."""
    lines = [f"Capstone {'OK' if summary['ok'] else 'FAILED'} in {summary['seconds']:.0f} s"]
    known = {p.name: p for p in PARTS}
    for name, section in summary["parts"].items():
        lines.append(f"[{name}] {'ok' if section.get('ok') else 'FAILED'} ({section.get('seconds', 0):.0f} s)")
        if section.get("error"):
            lines.append(f"  error: {section['error']}")
        elif name in known:
            lines += [f"  {line}" for line in known[name].report(section)]
    return lines
