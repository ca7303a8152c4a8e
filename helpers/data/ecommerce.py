"""Seeded, offline generator for the module's e-commerce dataset (users, products, sessions, events).

:func:`generate_ecommerce` builds the tables in memory (vectorized numpy: about a second per million
events). ``drift`` and ``dirty_fraction`` make a shifted "new batch" and data-quality problems for the
quality labs. Schema and regeneration: ``data/README.md``; files on disk: :mod:`helpers.data.files`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

GENERATOR_VERSION = 1


"""Bumped when the generator's output changes, so cached datasets are rebuilt."""


EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")


CATEGORIES = ("electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery")


CATEGORY_MIX = np.array([0.22, 0.20, 0.15, 0.10, 0.09, 0.09, 0.07, 0.08])


DRIFTED_CATEGORY_MIX = np.array([0.14, 0.14, 0.12, 0.22, 0.12, 0.06, 0.08, 0.12])


CATEGORY_MEDIAN_PRICE = np.array([180.0, 45.0, 60.0, 25.0, 55.0, 15.0, 30.0, 8.0])


DEVICES = ("mobile", "desktop", "tablet")


DEVICE_MIX = np.array([0.55, 0.35, 0.10])


DRIFTED_DEVICE_MIX = np.array([0.75, 0.18, 0.07])


COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "ES", "NL", "PL")


COUNTRY_MIX = np.array([0.30, 0.12, 0.11, 0.09, 0.10, 0.08, 0.06, 0.05, 0.05, 0.04])


SEGMENTS = ("new", "regular", "loyal", "vip")


SEGMENT_MIX = np.array([0.30, 0.45, 0.18, 0.07])


CHANNELS = ("direct", "organic", "paid", "email", "social")


CHANNEL_MIX = np.array([0.25, 0.30, 0.20, 0.10, 0.15])


AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")


AGE_MIX = np.array([0.18, 0.32, 0.24, 0.15, 0.11])


# Share of sessions per UTC hour: quiet at night, a lunch bump, an evening peak (19-21h).
HOURLY_MIX = np.array([2, 1.2, .8, .6, .6, .8, 1.5, 2.5, 3.5, 4, 4.3, 4.8,
                       5.3, 5, 4.6, 4.5, 4.7, 5.2, 6, 6.8, 7.2, 6.6, 5, 3.3])


HOURLY_MIX = HOURLY_MIX / HOURLY_MIX.sum()


PRODUCTS_PER_CATEGORY = 500


EVENTS_PER_USER = 20  # users table size = rows // EVENTS_PER_USER


class EcommerceData(NamedTuple):
    """The four tables; ``._asdict()`` gives ``{"events": df, "users": df, ...}``."""

    events: pd.DataFrame
    users: pd.DataFrame
    sessions: pd.DataFrame
    products: pd.DataFrame


def _pick(rng: np.random.Generator, mix: np.ndarray, n: int) -> np.ndarray:
    """Return ``n`` integer codes in ``[0, len(mix))`` drawn with probabilities ``mix``."""
    return np.searchsorted(np.cumsum(mix / mix.sum()), rng.random(n), side="right").clip(0, len(mix) - 1)


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """Map integer codes to an object array of strings (cheap: one pointer per row)."""
    return np.array(labels, dtype=object)[codes]


def _utc(start_ns: int, seconds: np.ndarray) -> pd.Series:
    """Turn seconds after ``start_ns`` into a ``datetime64[ns, UTC]`` Series."""
    ns = start_ns + seconds.astype(np.int64) * 1_000_000_000
    return pd.Series(ns.view("datetime64[ns]")).dt.tz_localize("UTC")


def generate_ecommerce(rows: int = 1_000_000, seed: int = 42, start: str = "2026-01-01", days: int = 30,
                       drift: float = 0.0, dirty_fraction: float = 0.0, progress: bool = True) -> EcommerceData:
    """Generate the e-commerce tables: same arguments, identical frames.

    Args:
        rows: number of event rows (exact).
        seed: random seed; a different seed gives different data.
        start: first UTC day of the window (``YYYY-MM-DD``); events fall in ``[start, start + days)``.
        days: length of the window in days.
        drift: 0 (baseline) to 1: shifts the category mix toward beauty, raises prices by up to
            50 %, moves traffic to mobile and lowers conversion, for a "new batch" to compare.
        dirty_fraction: share of event rows given exactly one quality problem (nulls, negative
            amount, unknown category/event type, impossible timestamp, price outlier, duplicate
            row). 0 (default) is clean; the other rows equal the clean data for the same seed.
        progress: show a tqdm bar over the generation steps.

    Returns:
        ``EcommerceData(events, users, sessions, products)``; events are sorted by ``event_time``.
    """
    if rows < 1 or days < 1 or not 0 <= drift <= 1 or not 0 <= dirty_fraction <= 1:
        raise ValueError("need rows >= 1, days >= 1, 0 <= drift <= 1, 0 <= dirty_fraction <= 1")
    catalog_rng, users_rng, sessions_rng, events_rng, dirty_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    start_ns, window_s = pd.Timestamp(start, tz="UTC").value, days * 86_400
    cat_mix = (1 - drift) * CATEGORY_MIX + drift * DRIFTED_CATEGORY_MIX
    device_mix = (1 - drift) * DEVICE_MIX + drift * DRIFTED_DEVICE_MIX
    bar = tqdm(total=5, desc=f"generating {rows:,} events", unit="step", disable=not progress)

    # Products: a fixed catalog per category; popularity within a category is Zipf-like.
    n_cat = len(CATEGORIES)
    prod_cat = np.repeat(np.arange(n_cat), PRODUCTS_PER_CATEGORY)
    base_price = CATEGORY_MEDIAN_PRICE[prod_cat] * catalog_rng.lognormal(0, 0.6, prod_cat.size)
    prod_price = np.round(np.maximum(base_price * (1 + 0.5 * drift), 0.5), 2)
    products = pd.DataFrame({"product_id": 100_000 + np.arange(prod_cat.size),
                             "category": _labels(CATEGORIES, prod_cat), "price": prod_price})
    bar.update()

    # Users: heavy-tailed activity (a few users make many sessions), signup before or during the window.
    n_users = max(10, rows // EVENTS_PER_USER)
    segment = _pick(users_rng, SEGMENT_MIX, n_users)
    activity = users_rng.lognormal(0, 1.0, n_users) * np.array([0.6, 1.0, 2.5, 6.0])[segment]
    lo_days, hi_days = np.array([1 - days, 30, 180, 365]), np.array([30, 730, 1460, 1825])
    signup_ago = np.floor(lo_days[segment] + users_rng.random(n_users) * (hi_days - lo_days)[segment])
    signup_ago = signup_ago.astype(np.int64)  # days before `start`; negative for new users joining during it
    user_country = _pick(users_rng, COUNTRY_MIX, n_users)
    user_device = _pick(users_rng, DEVICE_MIX, n_users)
    user_cat = _pick(users_rng, CATEGORY_MIX, n_users)
    users = pd.DataFrame({
        "user_id": np.arange(1, n_users + 1),
        "signup_date": _utc(start_ns, -signup_ago * 86_400).dt.tz_localize(None),
        "country": _labels(COUNTRIES, user_country), "segment": _labels(SEGMENTS, segment),
        "age_group": _labels(AGE_GROUPS, _pick(users_rng, AGE_MIX, n_users)),
        "marketing_opt_in": users_rng.random(n_users) < 0.4})
    bar.update()

    # Sessions: 1 + geometric length (mean ~4.5, capped), trimmed so the lengths add up to `rows`.
    srng = sessions_rng
    lengths = np.minimum(srng.geometric(0.22, int(rows / 4.5 * 1.3) + 20), 40)
    while lengths.sum() < rows:
        lengths = np.concatenate([lengths, np.minimum(srng.geometric(0.22, rows // 4 + 20), 40)])
    n_sess = int(np.searchsorted(np.cumsum(lengths), rows) + 1)
    lengths = lengths[:n_sess]
    lengths[-1] -= lengths.sum() - rows
    s_user = _pick(srng, activity, n_sess)
    first_day = np.clip(-signup_ago[s_user], 0, days - 1)  # a session never precedes the signup day
    day_w = np.where(((pd.Timestamp(start).dayofweek + np.arange(days)) % 7) >= 5, 1.2, 1.0)  # busier weekends
    day_cdf = np.concatenate([[0.0], np.cumsum(day_w / day_w.sum())])
    u = day_cdf[first_day] + srng.random(n_sess) * (1 - day_cdf[first_day])
    s_day = np.searchsorted(day_cdf, u, side="right") - 1
    s_start = s_day * 86_400 + _pick(srng, HOURLY_MIX, n_sess) * 3_600 + srng.integers(0, 3_600, n_sess)
    loyal_device = srng.random(n_sess) < 0.75 * (1 - drift)
    s_device = np.where(loyal_device, user_device[s_user], _pick(srng, device_mix, n_sess))
    s_channel = _pick(srng, CHANNEL_MIX, n_sess)
    s_cat = np.where(srng.random(n_sess) < 0.6, user_cat[s_user], _pick(srng, cat_mix, n_sess))
    hour = (s_start // 3_600) % 24
    # The conversion label: it depends on segment, device, channel, session length and hour.
    logit = (-3.2 + np.array([-0.5, 0.0, 0.6, 1.2])[segment[s_user]] + np.array([-0.3, 0.3, 0.0])[s_device]
             + np.array([0.1, 0.0, 0.2, 0.6, -0.4])[s_channel] + 0.5 * np.log(lengths)
             + 0.3 * (hour >= 18) - 0.6 * drift)
    converted = (lengths >= 2) & (srng.random(n_sess) < 1 / (1 + np.exp(-logit)))
    bar.update()

    # Events: view / add_to_cart within the session's favourite category; converting sessions end in
    # add_to_cart -> purchase of the same product.
    erng = events_rng
    sess = np.repeat(np.arange(n_sess), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(rows) - first[sess]
    last = pos == lengths[sess] - 1
    gap = np.where(pos == 0, 0, 1 + np.minimum(erng.exponential(45, rows), 300).astype(np.int64))
    offset = np.cumsum(gap) - np.cumsum(gap)[first][sess]
    duration = offset[first + lengths - 1]
    s_start = np.maximum(np.minimum(s_start, window_s - duration - 1), first_day * 86_400)
    e_cat = np.where(erng.random(rows) < 0.75, s_cat[sess], _pick(erng, cat_mix, rows))
    rank = (PRODUCTS_PER_CATEGORY * erng.random(rows) ** 3).astype(np.int64)
    prod = e_cat * PRODUCTS_PER_CATEGORY + rank
    qty = np.array([1, 2, 3, 4, 5])[_pick(erng, np.array([.72, .16, .07, .03, .02]), rows)]
    etype = np.where(erng.random(rows) < 0.13, 1, 0)
    remove = (np.roll(etype, 1) == 1) & (pos > 0) & (erng.random(rows) < 0.25)
    etype[remove] = 2
    prod[remove], qty[remove] = np.roll(prod, 1)[remove], np.roll(qty, 1)[remove]
    buy = last & converted[sess]
    etype[buy], etype[np.roll(buy, -1)] = 3, 1
    prod[np.roll(buy, -1)] = prod[buy]
    qty[np.roll(buy, -1)] = qty[buy]
    qty[etype == 0] = 1
    e_cat = prod // PRODUCTS_PER_CATEGORY
    price = prod_price[prod]
    # Sessions numbered by start time; events sorted by time (stable: session order is kept on ties).
    s_rank = np.empty(n_sess, dtype=np.int64)
    s_rank[np.argsort(s_start, kind="stable")] = np.arange(n_sess)
    t = s_start[sess] + offset
    order = np.lexsort((pos, s_rank[sess], t))
    events = pd.DataFrame({
        "event_id": np.arange(1, rows + 1), "event_time": _utc(start_ns, t[order]),
        "user_id": s_user[sess][order] + 1, "session_id": s_rank[sess][order] + 1,
        "event_type": _labels(EVENT_TYPES, etype[order]), "product_id": 100_000 + prod[order],
        "category": _labels(CATEGORIES, e_cat[order]), "price": price[order], "quantity": qty[order],
        "amount": np.round(price * qty, 2)[order], "device": _labels(DEVICES, s_device[sess][order]),
        "country": _labels(COUNTRIES, user_country[s_user][sess][order])})
    bar.update()

    revenue = np.bincount(sess[buy], weights=(price * qty)[buy], minlength=n_sess)
    by_start = np.argsort(s_rank)
    sessions = pd.DataFrame({
        "session_id": np.arange(1, n_sess + 1), "user_id": s_user[by_start] + 1,
        "start_time": _utc(start_ns, s_start[by_start]),
        "end_time": _utc(start_ns, (s_start + duration)[by_start]),
        "device": _labels(DEVICES, s_device[by_start]), "channel": _labels(CHANNELS, s_channel[by_start]),
        "country": _labels(COUNTRIES, user_country[s_user][by_start]),
        "n_events": lengths[by_start].astype(np.int64),
        "converted": converted[by_start], "revenue": np.round(revenue[by_start], 2)})
    if dirty_fraction > 0:
        events = _make_dirty(events, dirty_fraction, dirty_rng, start_ns + window_s * 1_000_000_000)
    bar.update()
    bar.close()
    return EcommerceData(events, users, sessions, products)


DIRTY_KINDS = ("null", "negative_amount", "unknown_category", "unknown_event_type", "bad_timestamp",
               "price_outlier", "duplicate")


def _make_dirty(events: pd.DataFrame, fraction: float, rng: np.random.Generator, end_ns: int) -> pd.DataFrame:
    """Give ``fraction`` of the rows one problem each, spread evenly over :data:`DIRTY_KINDS`."""
    events = events.copy()
    n_bad = int(round(fraction * len(events)))
    rows = rng.permutation(len(events))[:n_bad]
    for kind, idx in zip(DIRTY_KINDS[:-1], np.array_split(rows, len(DIRTY_KINDS))):
        if kind == "null":
            for col, part in zip(("category", "price", "country", "device", "event_time"), np.array_split(idx, 5)):
                events.loc[part, col] = None
        elif kind == "negative_amount":
            events.loc[idx, "amount"] = -events.loc[idx, "amount"]
        elif kind == "unknown_category":
            events.loc[idx, "category"] = rng.choice(["unknown", "Electronics", "misc"], idx.size)
        elif kind == "unknown_event_type":
            events.loc[idx, "event_type"] = rng.choice(["click", "VIEW", "purchase "], idx.size)
        elif kind == "bad_timestamp":  # one year in the future, or the 1970 epoch of a broken clock
            bad = np.where(rng.random(idx.size) < 0.5, end_ns + 365 * 86_400 * 10**9, 0)
            events.loc[idx, "event_time"] = pd.to_datetime(bad, utc=True)
        else:  # price_outlier
            events.loc[idx, "price"] = events.loc[idx, "price"] * 1000
    # Duplicates last: a re-sent copy of the previous row (same event_id), never of another copy.
    dup = np.array_split(rows, len(DIRTY_KINDS))[-1]
    dup = dup[(dup > 0) & ~np.isin(dup - 1, dup)]
    take = np.arange(len(events))
    take[dup] = dup - 1
    return events.iloc[take].reset_index(drop=True)
