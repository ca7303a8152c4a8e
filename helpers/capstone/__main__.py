"""``python -m helpers.capstone [--parts training] [--date D] [--days N] [--stream-seconds S] [--incident]`` (``make capstone``)."""

from __future__ import annotations

import argparse
import importlib
import sys

PART_MODULES = ("helpers.capstone.training", "helpers.capstone.streaming", "helpers.capstone.monitoring",
                "helpers.capstone.incident")
"""Modules that register a part when imported, in run order."""
OPT_IN = ("incident",)
"""Parts run only when named in ``--parts`` or asked for (``--incident``): they take minutes."""


def main(argv: list[str] | None = None) -> int:
    from helpers.capstone.summary import PARTS, report_lines, run_parts

    for name in PART_MODULES:
        importlib.import_module(name)
    parser = argparse.ArgumentParser(prog="python -m helpers.capstone", description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="", help=f"comma-separated, default all: {','.join(p.name for p in PARTS)}")
    parser.add_argument("--date", help="the training run's logical date (default: the API dataset's last day)")
    parser.add_argument("--days", type=int, help="days to train on, ending at --date (default: all the API serves)")
    parser.add_argument("--model", help="the model the streaming part serves (default: the training part's)")
    parser.add_argument("--stream-rate", type=float, default=1000.0, help="streaming: events/s (default 1000)")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="streaming: seconds at that rate (10; 60)")
    parser.add_argument("--incident", action="store_true",
                        help="also run the incident part: drift alert -> retrain -> new champion served (~2 min)")
    args = parser.parse_args(argv)
    names = [p.strip() for p in args.parts.split(",") if p.strip()] or None
    if names is None:
        names = [p.name for p in PARTS if p.name not in OPT_IN or (args.incident and p.name == "incident")]
    try:
        summary = run_parts(names, {"date": args.date, "days": args.days, "model": args.model,
                                    "stream_rate": args.stream_rate, "stream_seconds": args.stream_seconds})
    except ValueError as err:
        parser.error(str(err))
    print("\n".join(report_lines(summary)))
    print(f"summary: {summary['path']}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
