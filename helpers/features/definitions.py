"""The features and the label of Lab 05, defined once as data; both implementations interpret them.

Each feature of an event at time ``t`` for user ``u`` is computed from ``u``'s events with
``t - window_s <= event_time < t``: strictly earlier (an event at the same second is not "earlier").
Times are whole seconds. Amounts are summed in integer cents, so both implementations agree exactly.
The label ``purchase_next_1h`` is 1 when ``u`` purchases at a time ``s`` with ``t < s <= t + 3600``.

Why these? The generator (``helpers.data.ecommerce``) converts a session with a probability that rises
with the session's length and the user's segment (loyal and VIP users shop more often: more events
and more past spend), with the evening hours and on desktop; a converting session ends with an
add-to-cart followed by the purchase. So recent activity, carts, past spend, the hour, the device and
"this event is an add-to-cart" carry signal, and a model can beat the prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOUR_S = 3_600
DAY_S = 86_400
LABEL = "purchase_next_1h"
LABEL_HORIZON_S = HOUR_S
KEY_COLUMNS = ("event_id", "user_id", "event_time")


@dataclass(frozen=True)
class WindowFeature:
    """An aggregate over the user's events in ``[t - window_s, t + ahead_s)`` (``ahead_s`` is 0 unless leaky).

    ``agg``: ``count`` events, ``sum_cents`` of ``column`` (returned in currency units, 2 decimals),
    ``distinct`` values of ``column``, or ``recency``: seconds since the latest such event
    (``window_s`` when there is none). ``event_type`` restricts the events counted.
    """

    name: str
    agg: Literal["count", "sum_cents", "distinct", "recency"]
    window_s: int
    event_type: str | None = None
    column: str | None = None
    ahead_s: int = 0
    description: str = ""


@dataclass(frozen=True)
class CurrentFeature:
    """A value of the event itself: ``hour`` (UTC hour of ``event_time``) or ``column == equals`` as 0/1."""

    name: str
    kind: Literal["hour", "equals"]
    column: str | None = None
    equals: str | None = None
    description: str = ""


Feature = WindowFeature | CurrentFeature

FEATURES: tuple[Feature, ...] = (
    WindowFeature("n_events_1h", "count", HOUR_S, description="the user's events in the last hour"),
    WindowFeature("n_events_24h", "count", DAY_S, description="the user's events in the last 24 h"),
    WindowFeature("n_carts_1h", "count", HOUR_S, "add_to_cart", description="add-to-carts in the last hour"),
    WindowFeature("n_carts_24h", "count", DAY_S, "add_to_cart", description="add-to-carts in the last 24 h"),
    WindowFeature("n_purchases_24h", "count", DAY_S, "purchase", description="purchases in the last 24 h"),
    WindowFeature("spend_24h", "sum_cents", DAY_S, "purchase", "amount", description="purchase amount, last 24 h"),
    WindowFeature("n_categories_24h", "distinct", DAY_S, None, "category",
                  description="distinct categories seen in the last 24 h"),
    WindowFeature("recency_s", "recency", DAY_S, description="seconds since the user's previous event (cap 24 h)"),
    CurrentFeature("hour", "hour", description="UTC hour of the event"),
    CurrentFeature("is_cart", "equals", "event_type", "add_to_cart", description="this event is an add-to-cart"),
    CurrentFeature("is_desktop", "equals", "device", "desktop", description="this event comes from a desktop"),
)
"""The model's inputs, in column order."""

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

LEAKY_FEATURE = WindowFeature(
    "n_purchases_around_1h", "count", HOUR_S, "purchase", ahead_s=HOUR_S + 1,
    description="LEAKY on purpose: counts purchases in the hour before AND after the event, so it "
                "contains the label; a model would look perfect offline and fail in production")
"""A deliberately leaky feature: :func:`helpers.features.leakage.find_leaks` must catch it."""

MAX_LOOKBACK_S = max(f.window_s for f in FEATURES if isinstance(f, WindowFeature))
"""How much history the streaming implementation keeps per user."""
