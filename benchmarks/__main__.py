"""``python -m benchmarks [--rows N] [--only lab02,streaming]``: print the workbook's benchmark figures."""

from benchmarks.run import main

if __name__ == "__main__":
    raise SystemExit(main())
