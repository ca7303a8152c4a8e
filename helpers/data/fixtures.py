"""The small committed fixtures in ``data/fixtures`` (regenerate with ``python -m helpers.data --fixtures``)."""

from __future__ import annotations

from pathlib import Path

from helpers.data.ecommerce import generate_ecommerce
from helpers.data.malformed import write_malformed_csv
from helpers.data.tables import write_table
from helpers.platform import config


def write_fixtures(out_dir: str | Path | None = None) -> dict[str, Path]:
    """(Re)write the small committed fixtures into ``out_dir`` (default ``data/fixtures``).

    Returns:
        ``{file name: Path}``. The recipe (seeds, sizes) is documented in ``data/README.md``.
    """
    out = Path(out_dir) if out_dir is not None else config.fixtures_dir()
    out.mkdir(parents=True, exist_ok=True)
    base = generate_ecommerce(rows=1_000, seed=7, start="2026-01-01", days=7, progress=False)
    new = generate_ecommerce(rows=1_000, seed=8, start="2026-01-08", days=7, drift=0.5, progress=False)
    paths = {name: write_table(df, out / name) for name, df in [
        ("events_small.csv", base.events), ("users_small.csv", base.users),
        ("sessions_small.csv", base.sessions), ("events_small_drift.csv", new.events)]}
    paths["events_malformed.csv"] = out / "events_malformed.csv"
    write_malformed_csv(base.events.head(200), paths["events_malformed.csv"], n_bad=10, seed=7)
    return paths
