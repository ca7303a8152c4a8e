"""``python -m helpers.quality gate DATA --suite SUITE.json [--threshold PCT]``: the quality gate CLI."""

from helpers.quality.gate import main

if __name__ == "__main__":
    raise SystemExit(main())
