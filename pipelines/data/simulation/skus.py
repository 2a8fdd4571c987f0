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

__all__ = ["Records", "SkuChunk", "simulate_chunk"]

CASE_SIZE = 6  # suppliers ship in cases
SAFETY_FACTOR, COVER_DAYS, REVIEW_DAYS = 1.3, 12, 2

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
        expected: (sku, day, channel) expected demand, the truth behind the draws.
        demand: (sku, day, channel) demand drawn, before stock-outs.
        units: (sku, day, channel) units sold: demand censored by stock.
        on_hand: Units in stock at the end of the day.
        on_order: Units ordered and not yet received.
        purchase_orders: Per day with an order: (sku, order day, lead time, arrival day, quantity).
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
    expected: np.ndarray
    demand: np.ndarray
    units: np.ndarray
    on_hand: np.ndarray
    on_order: np.ndarray
    purchase_orders: Records


def simulate_chunk(g: WorldSignals, idx: np.ndarray, rng: np.random.Generator) -> SkuChunk:
    """Simulate the SKUs ``idx`` (indices into ``g.sku``) over the whole window with ``rng``."""
    s = {k: v[idx] for k, v in g.sku.items()}
    n, n_days = len(idx), g.n_days
    days = np.arange(n_days)
    sku_id = idx.astype(np.int64) + 1
    launch, list_price = s["launch_t"], s["list_price"]
    first = np.clip(launch, 0, n_days - 1)
    active = days[None, :] >= launch[:, None]

    # Shelf price: list price adjusted now and then (every ~45 days).
    levels = np.round(list_price[:, None] * rng.uniform(0.88, 1.04, (n, n_days)), 1)
    shelf = _piecewise(rng, levels, 1 / 45, first)
    price_change = active & _changed(shelf, first)

    # Promotions: at most one at a time; everyone joins the festival kick-offs more often.
    discount, promo_rows = _simulate_promotions(g, rng, active)
    price = np.round(shelf * (1 - discount / 100), 2)

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

    # Expected demand from the causal model, then negative-binomial draws per channel.
    age = days[None, :] - launch[:, None]
    growth = np.exp(s["trend_per_year"][:, None] * days[None, :] / 365.25)
    context = g.context[s["leaf"]] * w.ramp_up(age, s["ramp_days"][:, None]) * growth
    lam = (
        w.expected_demand(
            s["base_demand"][:, None],
            price=price,
            reference_price=list_price[:, None],
            elasticity=s["elasticity"][:, None],
            competitor_price=competitor_min,
            cross_elasticity=s["cross_elasticity"][:, None],
            promo_active=discount > 0,
            promo_uplift=s["promo_uplift"][:, None],
            context=context,
        )
        * active
    )
    share = np.stack([s["app_share"], 1 - s["app_share"]], axis=1)[:, None, :]
    lam_ch = lam[:, :, None] * share
    k = s["dispersion"][:, None, None]
    demand = rng.poisson(lam_ch * rng.gamma(k, 1 / k, lam_ch.shape))

    planned = (
        s["base_demand"][:, None] * g.planner[s["leaf"]] * w.ramp_up(age, s["ramp_days"][:, None]) * growth
    )
    sold, on_hand, on_order, po = _simulate_inventory(g, rng, s, demand.sum(2), planned, first, active)
    units = _split_channels(rng, demand, sold)
    return SkuChunk(
        sku=s,
        sku_id=sku_id,
        active=active,
        shelf=shelf,
        price_change=price_change,
        discount=discount,
        price=price,
        promotions=promo_rows,
        competitor_paths=comp_paths,
        competitor_changes=comp_obs,
        expected=lam_ch,
        demand=demand,
        units=units,
        on_hand=on_hand,
        on_order=on_order,
        purchase_orders=po,
    )


def _simulate_promotions(
    g: WorldSignals, rng: np.random.Generator, active: np.ndarray
) -> tuple[np.ndarray, Records]:
    n, n_days = active.shape
    remaining = np.zeros(n, np.int64)
    current = np.zeros(n)
    discount = np.zeros((n, n_days))
    records: Records = []
    u = rng.random((n, n_days))
    for t in range(n_days):
        starts = np.flatnonzero((remaining == 0) & active[:, t] & (u[:, t] < g.promo_start_rate[t]))
        if len(starts):
            m = len(starts)
            if g.festival_len[t]:
                kind = np.full(m, 2)
                dur = np.full(m, g.festival_len[t])
                pct = rng.integers(10, 41, m).astype(float)
            else:
                flash = rng.random(m) < 0.25
                kind = flash.astype(np.int64)
                dur = np.where(flash, rng.integers(1, 3, m), rng.integers(3, 11, m))
                pct = np.where(flash, rng.integers(20, 51, m), rng.integers(5, 31, m)).astype(float)
            dur = np.minimum(dur, n_days - t)
            remaining[starts], current[starts] = dur, pct
            records.append((starts, np.full(m, t), dur, kind, pct))
        on = remaining > 0
        discount[:, t] = np.where(on, current, 0.0)
        remaining[on] -= 1
    return discount, records


def _simulate_inventory(
    g: WorldSignals,
    rng: np.random.Generator,
    s: dict[str, np.ndarray],
    demand: np.ndarray,
    planned: np.ndarray,
    first: np.ndarray,
    active: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Records]:
    """Daily (s, S) replenishment against a planner's forecast; sales are censored by stock."""
    n, n_days = demand.shape
    lead = s["lead_time_days"]
    horizon = int(lead.max()) + REVIEW_DAYS + 1
    padded = np.concatenate([planned, np.repeat(planned[:, -1:], horizon, axis=1)], axis=1)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(padded, axis=1)], axis=1)
    days = np.arange(n_days)[None, :]
    window = (lead + REVIEW_DAYS)[:, None]
    reorder_point = SAFETY_FACTOR * (
        np.take_along_axis(cum, days + 1 + window, 1) - np.take_along_axis(cum, days + 1, 1)
    )
    order_up_to = reorder_point + COVER_DAYS * planned
    arrivals = np.zeros((n, n_days + horizon + 20), np.int64)
    stock = np.zeros(n, np.int64)
    open_units = np.zeros(n, np.int64)
    sold = np.zeros((n, n_days), np.int64)
    on_hand = np.zeros((n, n_days), np.int64)
    on_order = np.zeros((n, n_days), np.int64)
    po: Records = []
    for t in range(n_days):
        opening = first == t
        stock[opening] = CASE_SIZE * np.ceil(order_up_to[opening, t] / CASE_SIZE).astype(np.int64) + CASE_SIZE
        available = stock + arrivals[:, t]
        open_units -= arrivals[:, t]
        sold[:, t] = np.minimum(demand[:, t], available)
        stock = available - sold[:, t]
        position = stock + open_units
        k = np.flatnonzero(active[:, t] & (position <= reorder_point[:, t]))
        if len(k):
            qty = CASE_SIZE * np.maximum(np.ceil((order_up_to[k, t] - position[k]) / CASE_SIZE), 1).astype(
                np.int64
            )
            # Suppliers are late by a day or so, and now and then by a week or two.
            delay = rng.poisson(1.0, len(k)) + (rng.random(len(k)) < 0.05) * rng.integers(5, 15, len(k))
            arrive = t + lead[k] + delay
            arrivals[k, np.minimum(arrive, arrivals.shape[1] - 1)] += qty
            open_units[k] += qty
            po.append((k, np.full(len(k), t), lead[k], arrive, qty))
        on_hand[:, t] = stock
        on_order[:, t] = open_units
    return sold, on_hand, on_order, po


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
