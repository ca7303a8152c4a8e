"""``python -m helpers.data``: generate and cache a dataset, or rewrite the committed fixtures."""

from __future__ import annotations

import argparse

from helpers.data.files import ensure_dataset
from helpers.data.fixtures import write_fixtures


def main(argv: list[str] | None = None) -> int:
    """Command line: generate and cache a dataset, rewrite the fixtures, or print a benchmark."""
    ap = argparse.ArgumentParser(prog="python -m helpers.data", description="Generate and cache the e-commerce dataset.")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", default="2026-01-01")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--drift", type=float, default=0.0)
    ap.add_argument("--dirty", type=float, default=0.0, help="dirty_fraction")
    ap.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    ap.add_argument("--force", action="store_true", help="regenerate even if cached")
    ap.add_argument("--fixtures", action="store_true", help="rewrite data/fixtures and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    if args.fixtures:
        for path in write_fixtures().values():
            print(f"{path}  ({path.stat().st_size / 1e3:.1f} kB)")
    else:
        paths = ensure_dataset(args.rows, args.seed, tuple(args.formats), start=args.start, days=args.days,
                               drift=args.drift, dirty_fraction=args.dirty, progress=not args.quiet,
                               force=args.force)
        for path in paths.values():
            print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
