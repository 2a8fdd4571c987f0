"""One chunk of SKUs over the whole window: prices, promotions, competitors, demand and inventory.

Each chunk draws from its own stream, so a chunk's SKUs come out the same whatever the tier's
other chunks hold. The result, a :class:`SkuChunk`, is everything the contract tables and the
ground truth of those SKUs are cut from (:mod:`pipelines.data.simulation.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.data import world as w
from pipelines.data.simulation.signals import WorldSignals

__all__ = ["ACTIONS", "Records", "SkuChunk", "simulate_chunk"]

CASE_SIZE = 6  # suppliers ship in cases
SAFETY_FACTOR, COVER_DAYS, REVIEW_DAYS = 1.3, 12, 2

# The merchant's own pricing, reviewed once a week per SKU. Cover is stock over the planner's
# daily demand; normal stock is the planner's order-up-to level plus a case.
PRICE_REVIEW_DAYS = 7
OVERSTOCK_FACTOR = 1.5  # stock above this multiple of normal: mark down until back to normal
MARKDOWN_PCT = (10, 20)
# A markdown that has not cleared the overstock after this many weeks is cut by another step,
# down to at most MAX_MARKDOWN off the base shelf price (clearance).
MARKDOWN_STEP_WEEKS, MAX_MARKDOWN = 4, 0.4
SCARCE_COVER_DAYS = 2.0  # cover under this many days: mark up until the next delivery
MARKUP_PCT = (5, 10)
ACTIONS = ("none", "markdown", "markup")
NONE, MARKDOWN, MARKUP = range(len(ACTIONS))

# Events appended day by day as parallel arrays, one tuple per day with any (see SkuChunk).
Records = list[tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class SkuChunk:
    """A chunk of SKUs simulated over the whole window.

    Arrays are (sku, day), or (sku, day, channel) where noted, with ``sku`` the row in the chunk.

    Attributes:
        sku: The chunk's rows of :attr:`WorldSignals.sku` (parameters and attributes).
        sku_id: (sku,) contract ids.
        active: On sale (launched).
        shelf: Shelf price.
        price_change: A new shelf price takes effect (own_prices rows).
        discount: Promotion discount in percent, 0 outside promotions.
        price: Price paid, the shelf price less the discount.
        promotions: Per day with a start: (sku, start day, duration, type, discount percent).
        competitor_paths: Per competitor, its price (inf where it does not carry the SKU).
        competitor_changes: Per competitor, a new price observed (competitor_prices rows).
        competitor_min: The cheapest rival's price (inf where no rival carries the SKU).
        expected: (sku, day, channel) expected demand, the truth behind the draws.
        demand: (sku, day, channel) demand drawn, before stock-outs.
        units: (sku, day, channel) units sold: demand censored by stock.
        on_hand: Units in stock at the end of the day.
        on_order: Units ordered and not yet received.
        purchase_orders: Per day with an order: (sku, order day, lead time, arrival day, quantity).
        action: The merchant's pricing state, an index into :data:`ACTIONS` (0 where not on sale).
    """

    sku: dict[str, np.ndarray]
    sku_id: np.ndarray
    active: np.ndarray
    shelf: np.ndarray
    price_change: np.ndarray
    discount: np.ndarray
    price: np.ndarray
    promotions: Records
    competitor_paths: list[np.ndarray]
    competitor_changes: list[np.ndarray]
    competitor_min: np.ndarray
    expected: np.ndarray
    demand: np.ndarray
    units: np.ndarray
    on_hand: np.ndarray
    on_order: np.ndarray
    purchase_orders: Records
    action: np.ndarray


def simulate_chunk(g: WorldSignals, idx: np.ndarray, rng: np.random.Generator) -> SkuChunk:
    """Simulate the SKUs ``idx`` (indices into ``g.sku``) over the whole window with ``rng``.

    What does not depend on the merchant's decisions (base shelf prices, competitors, demand noise)
    is drawn up front; prices, demand and stock then run day by day together, because the
    merchant prices each day from the stock left the evening before.
    """
    s = {k: v[idx] for k, v in g.sku.items()}
    n, n_days = len(idx), g.n_days
    days = np.arange(n_days)
    sku_id = idx.astype(np.int64) + 1
    launch, list_price = s["launch_t"], s["list_price"]
    first = np.clip(launch, 0, n_days - 1)
    active = days[None, :] >= launch[:, None]

    # Base shelf price: list price adjusted now and then (every ~45 days); the merchant's
    # markdowns and markups come on top of it in the day loop.
    levels = np.round(list_price[:, None] * rng.uniform(0.88, 1.04, (n, n_days)), 1)
    base_shelf = _piecewise(rng, levels, 1 / 45, first)

    # Competitors: their own level per SKU, price moves every ~2 weeks, deeper on peak days.
    comp_paths, comp_obs = [], []
    for k in range(len(w.COMPETITORS)):
        noise = rng.normal(0, 0.04, (n, n_days))
        base = list_price[:, None] * np.exp(s["competitor_level"][:, k][:, None] + noise)
        path = np.round(_piecewise(rng, base, 1 / 14, first) * g.competitor_event[None, :], 1)
        carried = s["competitor_carries"][:, k][:, None] & active
        comp_paths.append(np.where(carried, path, np.inf))
        comp_obs.append(carried & _changed(path, first))
    competitor_min = np.min(comp_paths, axis=0)

    age = days[None, :] - launch[:, None]
    ramp = w.ramp_up(age, s["ramp_days"][:, None])
    growth = np.exp(s["trend_per_year"][:, None] * days[None, :] / 365.25)
    k = s["dispersion"][None, :, None]
    noise = rng.gamma(k, 1 / k, (n_days, n, len(w.CHANNELS)))  # negative-binomial mixing, day-major
    market = _Market(
        context=g.context[s["leaf"]] * ramp * growth,
        planned=s["base_demand"][:, None] * g.planner[s["leaf"]] * ramp * growth,
        competitor_min=competitor_min,
        noise=noise,
    )
    day = _simulate_days(g, rng, s, market, base_shelf, first, active)
    units = _split_channels(rng, day.demand, day.sold)
    return SkuChunk(
        sku=s,
        sku_id=sku_id,
        active=active,
        shelf=day.shelf,
        price_change=active & _changed(day.shelf, first),
        discount=day.discount,
        price=day.price,
        promotions=day.promotions,
        competitor_paths=comp_paths,
        competitor_changes=comp_obs,
        competitor_min=competitor_min,
        expected=day.expected,
        demand=day.demand,
        units=units,
        on_hand=day.on_hand,
        on_order=day.on_order,
        purchase_orders=day.purchase_orders,
        action=day.action,
    )


@dataclass(frozen=True)
class _Market:
    """What the SKUs face whatever the merchant does: (sku, day) arrays, noise day-major."""

    context: np.ndarray  # demand multiplier: seasonality, calendar, weather, social, ramp-up, trend
    planned: np.ndarray  # the replenishment planner's daily demand forecast
    competitor_min: np.ndarray  # cheapest rival price (inf where none carries the SKU)
    noise: np.ndarray  # (day, sku, channel) gamma mixing of the negative-binomial draws


@dataclass(frozen=True)
class _Days:
    """The outcome of the day loop (see :class:`SkuChunk` for the meaning of each array)."""

    shelf: np.ndarray
    discount: np.ndarray
    price: np.ndarray
    promotions: Records
    expected: np.ndarray
    demand: np.ndarray
    sold: np.ndarray
    on_hand: np.ndarray
    on_order: np.ndarray
    purchase_orders: Records
    action: np.ndarray


def _simulate_days(
    g: WorldSignals,
    rng: np.random.Generator,
    s: dict[str, np.ndarray],
    market: _Market,
    base_shelf: np.ndarray,
    first: np.ndarray,
    active: np.ndarray,
) -> _Days:
    """Price, promote, sell and replenish day by day, vectorised over the chunk's SKUs.

    Each morning the merchant reviews the prices of the SKUs whose weekly review falls that day:
    stock far above the planner's order-up-to level is marked down until its cover is back to
    normal (deeper every few weeks while it stays far above); cover of only a few days is marked
    up until the next delivery arrives. Promotions start at random, more often when the leaf's
    demand is high, never on SKUs already short of stock.
    Sales are demand censored by stock; a daily (s, S) rule orders against the planner's forecast.
    """
    n, n_days = active.shape
    lead = s["lead_time_days"]
    reorder_point, order_up_to = _replenishment_levels(market.planned, lead)
    # Day-major copies: the loop reads and writes one day of every SKU at a time.
    on_sale, planned, reorder_point, order_up_to, base_shelf, rival, context = (
        np.ascontiguousarray(x.T)
        for x in (
            active,
            market.planned,
            reorder_point,
            order_up_to,
            base_shelf,
            market.competitor_min,
            market.context,
        )
    )
    normal_stock = order_up_to + CASE_SIZE  # what the planner orders up to, rounded up to a case
    promo_rate = np.ascontiguousarray(g.promo_start_rate[s["leaf"]].T)
    review_day = rng.integers(0, PRICE_REVIEW_DAYS, n)
    reviewing = review_day[None, :] == np.arange(PRICE_REVIEW_DAYS)[:, None]  # (weekday slot, sku)
    promo_u = rng.random((n_days, n))
    share = np.stack([s["app_share"], 1 - s["app_share"]], axis=1)
    demand_args = dict(
        base=s["base_demand"],
        reference_price=s["list_price"],
        elasticity=s["elasticity"],
        cross_elasticity=s["cross_elasticity"],
        promo_uplift=s["promo_uplift"],
    )

    shelf = np.zeros((n_days, n))
    discount = np.zeros((n_days, n))
    price = np.zeros((n_days, n))
    expected = np.zeros((n_days, n, len(w.CHANNELS)))
    demand = np.zeros((n_days, n, len(w.CHANNELS)), np.int64)
    sold = np.zeros((n_days, n), np.int64)
    on_hand = np.zeros((n_days, n), np.int64)
    on_order = np.zeros((n_days, n), np.int64)
    action = np.zeros((n_days, n), np.int8)
    promotions: Records = []
    orders: Records = []

    arrivals = np.zeros((n_days + int(lead.max()) + 40, n), np.int64)
    stock = np.zeros(n, np.int64)
    open_units = np.zeros(n, np.int64)
    state = np.zeros(n, np.int8)  # index into ACTIONS
    adjust = np.ones(n)  # the merchant's multiplier on the base shelf price
    changed_at = np.zeros(n, np.int64)  # day the current markdown was last cut
    promo_left = np.zeros(n, np.int64)
    promo_pct = np.zeros(n)
    for t in range(n_days):
        on = on_sale[t]
        opening = first == t
        stock[opening] = CASE_SIZE * np.ceil(order_up_to[t, opening] / CASE_SIZE).astype(np.int64) + CASE_SIZE
        arrived = arrivals[t]

        # Price review on last night's stock; a delivery ends a markup at once.
        cover = stock / np.maximum(planned[t], 1e-9)
        review = on & reviewing[t % PRICE_REVIEW_DAYS]
        state[(state == MARKUP) & (arrived > 0)] = NONE
        state[review & (state == MARKDOWN) & (stock <= normal_stock[t])] = NONE
        state[review & (state == MARKUP) & (cover >= SCARCE_COVER_DAYS)] = NONE
        deepen = (
            review
            & (state == MARKDOWN)
            & (t - changed_at >= MARKDOWN_STEP_WEEKS * PRICE_REVIEW_DAYS)
            & (stock > OVERSTOCK_FACTOR * normal_stock[t])
        )
        if deepen.any():
            cut = adjust[deepen] - _percent(rng, MARKDOWN_PCT, int(deepen.sum()))
            adjust[deepen] = np.maximum(cut, 1 - MAX_MARKDOWN)
            changed_at[deepen] = t
        idle = review & (state == NONE)
        start_down = idle & (stock > OVERSTOCK_FACTOR * normal_stock[t])
        start_up = idle & (stock > 0) & (cover < SCARCE_COVER_DAYS) & ~opening
        state[start_down], state[start_up] = MARKDOWN, MARKUP
        changed_at[start_down] = t
        if start_down.any():
            adjust[start_down] = 1 - _percent(rng, MARKDOWN_PCT, int(start_down.sum()))
        if start_up.any():
            adjust[start_up] = 1 + _percent(rng, MARKUP_PCT, int(start_up.sum()))
        adjust[state == NONE] = 1.0
        shelf[t] = np.round(base_shelf[t] * adjust, 1)
        action[t] = np.where(on, state, NONE)

        # Promotions: at most one at a time; none on stock the merchant is already rationing.
        starts = np.flatnonzero((promo_left == 0) & on & (state != MARKUP) & (promo_u[t] < promo_rate[t]))
        if len(starts):
            kind, dur, pct = _draw_promotions(rng, len(starts), int(g.festival_len[t]))
            dur = np.minimum(dur, n_days - t)
            promo_left[starts], promo_pct[starts] = dur, pct
            promotions.append((starts, np.full(len(starts), t), dur, kind, pct))
        promo = promo_left > 0
        discount[t] = np.where(promo, promo_pct, 0.0)
        promo_left[promo] -= 1
        price[t] = np.round(shelf[t] * (1 - discount[t] / 100), 2)

        # Demand from the causal model at today's prices, censored by the stock available.
        lam = w.expected_demand(
            **demand_args, price=price[t], competitor_price=rival[t], promo_active=promo, context=context[t]
        )
        expected[t] = np.where(on, lam, 0.0)[:, None] * share
        demand[t] = rng.poisson(expected[t] * market.noise[t])
        available = stock + arrived
        open_units -= arrived
        sold[t] = np.minimum(demand[t].sum(1), available)
        stock = available - sold[t]

        position = stock + open_units
        k = np.flatnonzero(on & (position <= reorder_point[t]))
        if len(k):
            qty = CASE_SIZE * np.maximum(np.ceil((order_up_to[t, k] - position[k]) / CASE_SIZE), 1).astype(
                np.int64
            )
            # Suppliers are late by a day or so, and now and then by a week or two.
            delay = rng.poisson(1.0, len(k)) + (rng.random(len(k)) < 0.05) * rng.integers(5, 15, len(k))
            arrive = t + lead[k] + delay
            arrivals[np.minimum(arrive, arrivals.shape[0] - 1), k] += qty
            open_units[k] += qty
            orders.append((k, np.full(len(k), t), lead[k], arrive, qty))
        on_hand[t] = stock
        on_order[t] = open_units

    def sku_major(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.swapaxes(x, 0, 1))

    return _Days(
        shelf=sku_major(shelf),
        discount=sku_major(discount),
        price=sku_major(price),
        promotions=promotions,
        expected=sku_major(expected),
        demand=sku_major(demand),
        sold=sku_major(sold),
        on_hand=sku_major(on_hand),
        on_order=sku_major(on_order),
        purchase_orders=orders,
        action=sku_major(action),
    )


def _replenishment_levels(planned: np.ndarray, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder point and order-up-to level per (sku, day), in units, from the planner's forecast."""
    n, n_days = planned.shape
    horizon = int(lead.max()) + REVIEW_DAYS + 1
    padded = np.concatenate([planned, np.repeat(planned[:, -1:], horizon, axis=1)], axis=1)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(padded, axis=1)], axis=1)
    days = np.arange(n_days)[None, :]
    window = (lead + REVIEW_DAYS)[:, None]
    reorder_point = SAFETY_FACTOR * (
        np.take_along_axis(cum, days + 1 + window, 1) - np.take_along_axis(cum, days + 1, 1)
    )
    return reorder_point, reorder_point + COVER_DAYS * planned


def _percent(rng: np.random.Generator, bounds: tuple[int, int], m: int) -> np.ndarray:
    """``m`` whole percentages drawn uniformly between ``bounds`` (inclusive), as fractions."""
    return rng.integers(bounds[0], bounds[1] + 1, m) / 100


def _draw_promotions(rng: np.random.Generator, m: int, festival_len: int) -> tuple[np.ndarray, ...]:
    """Type, duration and discount of ``m`` promotions starting on a day (festival or not)."""
    if festival_len:
        return np.full(m, 2), np.full(m, festival_len), rng.integers(10, 41, m).astype(float)
    flash = rng.random(m) < 0.25
    dur = np.where(flash, rng.integers(1, 3, m), rng.integers(3, 11, m))
    pct = np.where(flash, rng.integers(20, 51, m), rng.integers(5, 31, m)).astype(float)
    return flash.astype(np.int64), dur, pct


def _split_channels(rng: np.random.Generator, demand: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """Share censored sales between channels as if the last units went to random buyers."""
    units = demand.copy()
    short = sold < demand.sum(2)
    app = (
        rng.hypergeometric(np.maximum(demand[..., 0][short], 0), demand[..., 1][short], sold[short])
        if short.any()
        else np.zeros(0, np.int64)
    )
    units[..., 0][short] = app
    units[..., 1][short] = sold[short] - app
    return units


def _forward_fill_index(change: np.ndarray) -> np.ndarray:
    """For each cell, the column of the latest True at or before it (0 where there is none)."""
    cols = np.where(change, np.arange(change.shape[1])[None, :], 0)
    return np.maximum.accumulate(cols, axis=1)


def _changed(path: np.ndarray, first: np.ndarray) -> np.ndarray:
    """True where a series differs from the day before, and on each row's first day."""
    moved = np.concatenate([np.ones((path.shape[0], 1), bool), path[:, 1:] != path[:, :-1]], axis=1)
    moved[np.arange(path.shape[0]), first] = True
    return moved


def _piecewise(rng: np.random.Generator, values: np.ndarray, rate: float, first: np.ndarray) -> np.ndarray:
    """Hold ``values`` constant between random change days (about one per ``1/rate`` days)."""
    n = values.shape[0]
    change = rng.random(values.shape) < rate
    change[:, 0] = True
    change[np.arange(n), first] = True
    return np.take_along_axis(values, _forward_fill_index(change), axis=1)
