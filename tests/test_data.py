"""The e-commerce generator (helpers/data/ecommerce.py): deterministic, consistent, realistic, and its files cached."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.generation import benchmark_generation
from helpers.data.ecommerce import CATEGORIES, COUNTRIES, DEVICES, EVENT_TYPES, EcommerceData, generate_ecommerce
from helpers.data.files import TABLES, ensure_dataset
from helpers.data.fixtures import write_fixtures
from helpers.data.malformed import event_records
from helpers.data.tables import write_table
from helpers.platform import config

ROWS = 10_000
START, DAYS = pd.Timestamp("2026-01-01", tz="UTC"), 30


@pytest.fixture(scope="module")
def clean() -> EcommerceData:
    return generate_ecommerce(ROWS, seed=1, progress=False)


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config.data_dir() at a temp folder so tests never touch data/generated."""
    monkeypatch.setenv("WORKBOOK_DATA", str(tmp_path))
    return tmp_path


# ------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_tables(clean):
    again = generate_ecommerce(ROWS, seed=1, progress=False)
    for name in EcommerceData._fields:
        pd.testing.assert_frame_equal(getattr(clean, name), getattr(again, name), obj=name)


def test_different_seed_gives_different_data(clean):
    other = generate_ecommerce(ROWS, seed=2, progress=False)
    assert not clean.events.equals(other.events), "seed 2 produced the same events as seed 1"
    assert not clean.users.equals(other.users)


@pytest.mark.parametrize("rows", [1, 7, 999, 12_345])
def test_exactly_the_requested_number_of_events(rows):
    assert len(generate_ecommerce(rows, seed=3, progress=False).events) == rows


@pytest.mark.parametrize("kwargs", [{"rows": 0}, {"days": 0}, {"drift": 1.5}, {"dirty_fraction": -0.1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        generate_ecommerce(**{"rows": 100, **kwargs}, progress=False)


# ---------------------------------------------------------------------------------- schema
SCHEMA = {
    "events": {"event_id": "int64", "event_time": "datetime64[ns, UTC]", "user_id": "int64", "session_id": "int64",
               "event_type": "object", "product_id": "int64", "category": "object", "price": "float64",
               "quantity": "int64", "amount": "float64", "device": "object", "country": "object"},
    "users": {"user_id": "int64", "signup_date": "datetime64[ns]", "country": "object", "segment": "object",
              "age_group": "object", "marketing_opt_in": "bool"},
    "sessions": {"session_id": "int64", "user_id": "int64", "start_time": "datetime64[ns, UTC]",
                 "end_time": "datetime64[ns, UTC]", "device": "object", "channel": "object", "country": "object",
                 "n_events": "int64", "converted": "bool", "revenue": "float64"},
    "products": {"product_id": "int64", "category": "object", "price": "float64"},
}


@pytest.mark.parametrize("table", SCHEMA)
def test_columns_and_dtypes_match_the_documented_schema(clean, table):
    df = getattr(clean, table)
    assert {c: str(t) for c, t in df.dtypes.items()} == SCHEMA[table]
    assert not df.isna().any().any(), f"clean {table} has nulls"


def test_values_are_in_their_documented_ranges(clean):
    ev = clean.events
    assert ev["event_id"].tolist() == list(range(1, ROWS + 1))
    assert ev["event_time"].is_monotonic_increasing, "events should be sorted by time"
    assert ev["event_time"].min() >= START and ev["event_time"].max() < START + pd.Timedelta(days=DAYS)
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert set(ev["category"]) <= set(CATEGORIES)
    assert set(ev["device"]) <= set(DEVICES) and set(ev["country"]) <= set(COUNTRIES)
    assert (ev["price"] > 0).all() and ev["quantity"].between(1, 5).all()
    np.testing.assert_allclose(ev["amount"], (ev["price"] * ev["quantity"]).round(2))
    assert (ev.loc[ev["event_type"] == "view", "quantity"] == 1).all()


def test_tables_agree_with_each_other(clean):
    ev, users, sessions, products = clean
    catalog = ev.merge(products, on="product_id", suffixes=("", "_catalog"), validate="many_to_one")
    assert (catalog["category"] == catalog["category_catalog"]).all()
    assert (catalog["price"] == catalog["price_catalog"]).all()
    with_signup = ev.merge(users, on="user_id", validate="many_to_one")
    assert (with_signup["event_time"].dt.tz_localize(None) >= with_signup["signup_date"]).all(), \
        "an event happened before its user signed up"
    per_session = ev.groupby("session_id").agg(
        n=("event_id", "size"), first=("event_time", "min"), last=("event_time", "max"),
        bought=("event_type", lambda t: (t == "purchase").any()), user=("user_id", "first"))
    s = sessions.set_index("session_id")
    assert (per_session["n"] == s["n_events"]).all() and (per_session["user"] == s["user_id"]).all()
    assert (per_session["first"] == s["start_time"]).all() and (per_session["last"] == s["end_time"]).all()
    assert (per_session["bought"] == s["converted"]).all(), "converted must mean 'the session has a purchase'"
    revenue = ev[ev["event_type"] == "purchase"].groupby("session_id")["amount"].sum()
    np.testing.assert_allclose(s["revenue"], revenue.reindex(s.index, fill_value=0.0), atol=1e-6)


def test_every_purchase_follows_an_add_to_cart_of_the_same_product(clean):
    ev = clean.events.sort_values(["session_id", "event_time", "event_id"])
    prev = ev.groupby("session_id")[["event_type", "product_id"]].shift()
    buy = ev["event_type"] == "purchase"
    assert (prev.loc[buy, "event_type"] == "add_to_cart").all()
    assert (prev.loc[buy, "product_id"] == ev.loc[buy, "product_id"]).all()


def test_the_data_has_the_skew_that_makes_aggregations_interesting(clean):
    ev, sessions = clean.events, clean.sessions
    per_user = ev["user_id"].value_counts()
    assert per_user.head(len(per_user) // 10).sum() > 0.3 * ROWS, "the top 10% of users should be very active"
    hours = ev["event_time"].dt.hour.value_counts()
    assert hours[20] > 3 * hours[4], "evenings should be much busier than 4 am"
    assert 0.05 < sessions["converted"].mean() < 0.25
    by_channel = sessions.groupby("channel")["converted"].mean()
    assert by_channel["email"] > by_channel["social"], "the conversion label should depend on features"


# ----------------------------------------------------------------------------- drift, dirty
def test_drift_shifts_category_mix_prices_devices_and_conversion(clean):
    new = generate_ecommerce(ROWS, seed=1, drift=1.0, progress=False)
    mix = pd.concat([clean.events["category"].value_counts(normalize=True),
                     new.events["category"].value_counts(normalize=True)], axis=1).fillna(0)
    assert 0.5 * (mix.iloc[:, 0] - mix.iloc[:, 1]).abs().sum() > 0.1, "category mix barely moved"
    ratio = new.products["price"].median() / clean.products["price"].median()
    assert ratio == pytest.approx(1.5, rel=0.02)
    assert new.events["price"].mean() > 1.1 * clean.events["price"].mean()
    assert (new.events["device"] == "mobile").mean() > (clean.events["device"] == "mobile").mean() + 0.1
    assert new.sessions["converted"].mean() < clean.sessions["converted"].mean()


def test_dirty_fraction_breaks_that_share_of_rows_and_nothing_else(clean):
    dirty = generate_ecommerce(ROWS, seed=1, dirty_fraction=0.07, progress=False)
    ev, ref = dirty.events, clean.events
    assert ev.dtypes.equals(ref.dtypes)
    changed = ~((ev == ref) | (ev.isna() & ref.isna())).all(axis=1)
    assert changed.sum() == pytest.approx(0.07 * ROWS, abs=ROWS * 0.003)
    assert ev.isna().sum()[["category", "price", "country", "device", "event_time"]].gt(0).all()
    assert (ev["amount"] < 0).any()
    assert (~ev["category"].dropna().isin(CATEGORIES)).any()
    assert (~ev["event_type"].isin(EVENT_TYPES)).any()
    times = ev["event_time"].dropna()
    assert ((times < START) | (times >= START + pd.Timedelta(days=DAYS))).any()
    assert ev["event_id"].duplicated().any() and ev.duplicated().any()
    assert (ev["price"] > 10 * ref["price"].max()).any(), "no price outlier"
    for table in ("users", "sessions", "products"):
        assert getattr(dirty, table).equals(getattr(clean, table))


def test_event_records_are_json_and_some_are_malformed(clean):
    records = event_records(clean.events.head(200), malformed_fraction=0.1, seed=0)
    assert len(records) == 200
    json.dumps(records, allow_nan=False)
    assert records[0]["event_time"].endswith("Z")
    broken = [r for r in records if "user_id" not in r or r["price"] == "abc" or r["event_time"] == "not-a-time"
              or r["event_type"] is None]
    assert len(broken) == 20


# ----------------------------------------------------------------------------------- files
def test_ensure_dataset_writes_readable_files(data_dir):
    paths = ensure_dataset(2_000, seed=3, progress=False)
    assert set(paths) == {f"{t}.{f}" for t in TABLES for f in ("parquet", "csv")}
    assert all(p.parent == data_dir / "ecommerce_2000_3" for p in paths.values())
    expected = generate_ecommerce(2_000, seed=3, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["events.parquet"]), expected.events, check_dtype=False)
    from_csv = pd.read_csv(paths["events.csv"], parse_dates=["event_time"])
    pd.testing.assert_frame_equal(from_csv, expected.events)
    assert pd.read_csv(paths["users.csv"]).shape == expected.users.shape
    manifest = json.loads((data_dir / "ecommerce_2000_3" / "manifest.json").read_text())
    assert manifest["rows"]["events"] == 2_000
    assert not [p for p in (data_dir / "ecommerce_2000_3").iterdir() if p.name.endswith(".tmp")]


def test_second_call_is_cached_and_rewrites_nothing(data_dir, monkeypatch):
    paths = ensure_dataset(2_000, seed=3, progress=False)
    mtimes = {name: p.stat().st_mtime_ns for name, p in paths.items()}
    monkeypatch.setattr("helpers.data.files.generate_ecommerce", lambda *a, **k: pytest.fail("regenerated a cached dataset"))
    assert ensure_dataset(2_000, seed=3, progress=False) == paths
    assert {name: p.stat().st_mtime_ns for name, p in paths.items()} == mtimes


def test_asking_for_a_new_format_writes_only_that_format(data_dir):
    parquet = ensure_dataset(2_000, seed=3, formats=("parquet",), progress=False)
    before = parquet["events.parquet"].stat().st_mtime_ns
    both = ensure_dataset(2_000, seed=3, formats=("parquet", "csv"), progress=False)
    assert both["events.csv"].exists() and both["events.parquet"].stat().st_mtime_ns == before


def test_options_get_their_own_folder(data_dir):
    drifted = ensure_dataset(500, seed=3, formats=("csv",), drift=0.5, dirty_fraction=0.1, progress=False)
    assert drifted["events.csv"].parent.name == "ecommerce_500_3_drift0.5_dirty0.1"


def test_an_interrupted_write_leaves_no_file_and_is_redone(data_dir):
    class Interrupt:
        def update(self, n: int) -> None:
            raise KeyboardInterrupt

    events = generate_ecommerce(300, seed=3, progress=False).events
    target = data_dir / "events.csv"
    with pytest.raises(KeyboardInterrupt):
        write_table(events, target, bar=Interrupt())
    assert list(data_dir.iterdir()) == [], "a half-written file was left behind"

    paths = ensure_dataset(300, seed=3, formats=("csv",), progress=False)
    paths["events.csv"].unlink()  # as if the run died before this file was renamed into place
    (paths["events.csv"].parent / "manifest.json").unlink()
    assert ensure_dataset(300, seed=3, formats=("csv",), progress=False)["events.csv"].exists()


def test_a_manifest_from_another_generator_version_triggers_a_rebuild(data_dir):
    paths = ensure_dataset(300, seed=3, formats=("csv",), progress=False)
    manifest = paths["events.csv"].parent / "manifest.json"
    info = json.loads(manifest.read_text())
    info["params"]["version"] = -1
    manifest.write_text(json.dumps(info))
    os.utime(paths["events.csv"], ns=(0, 0))
    ensure_dataset(300, seed=3, formats=("csv",), progress=False)
    assert paths["events.csv"].stat().st_mtime_ns > 0


def test_cli_generates_a_dataset(data_dir):
    done = subprocess.run([sys.executable, "-m", "helpers.data", "--rows", "400", "--seed", "5", "--formats", "csv",
                           "--quiet"], cwd=config.REPO_ROOT, capture_output=True, text=True, check=True)
    assert "events.csv" in done.stdout
    assert len(pd.read_csv(data_dir / "ecommerce_400_5" / "events.csv")) == 400


def test_benchmark_generation_reports_consistent_figures():
    """The benchmark's figures agree with each other and with what was written (no speed is asserted)."""
    figures = benchmark_generation(2_000)
    assert figures["rows"] == 2_000
    for step in ("generate", "parquet", "csv"):
        seconds = figures[f"{step}_s" if step == "generate" else f"{step}_write_s"]
        rate = figures[f"{step}_rows_per_s"]
        assert abs(rate * seconds - 2_000) < 1e-6, f"{step}: expected rows/s x s = 2,000 rows, got {rate * seconds}"
    assert 0 < figures["parquet_mb"] < figures["csv_mb"], (
        f"expected compressed Parquet smaller than CSV, got {figures['parquet_mb']:.3f} vs {figures['csv_mb']:.3f} MB")


# -------------------------------------------------------------------------------- fixtures
def test_committed_fixtures_are_reproducible_from_the_generator(tmp_path):
    written = write_fixtures(tmp_path)
    committed = config.fixtures_dir()
    for name, path in written.items():
        assert (committed / name).exists(), f"{name} is missing: run `python -m helpers.data --fixtures`"
        assert path.read_bytes() == (committed / name).read_bytes(), \
            f"data/fixtures/{name} differs from the generator: run `python -m helpers.data --fixtures`"
    assert sum(p.stat().st_size for p in committed.iterdir()) < 300_000


def test_malformed_fixture_has_exactly_ten_bad_lines():
    def is_malformed(row: list[str], header: list[str]) -> bool:
        if len(row) != len(header):
            return True
        rec = dict(zip(header, row))
        try:
            float(rec["price"]), int(rec["quantity"]), float(rec["amount"]), int(rec["event_id"])
            pd.Timestamp(rec["event_time"])
        except ValueError:
            return True
        return False

    with open(config.fixtures_dir() / "events_malformed.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    bad = sum(is_malformed(r, header) for r in rows)
    assert (len(rows), bad) == (200, 10)
