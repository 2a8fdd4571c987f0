"""A simulated chunk of SKUs cut into contract rows, and its ground truth.

Sales, inventory, prices, promotions, competitor prices and purchase orders are read off the chunk's
arrays; order lines (adding up to the day's sales exactly), returns, tickets and the clickstream
draw their customers and details from the chunk's stream, after the simulation, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipelines.data import world as w
from pipelines.data.simulation.signals import WorldSignals
from pipelines.data.simulation.sink import Columns
from pipelines.data.simulation.skus import ACTIONS, Records, SkuChunk

__all__ = ["TRUTH_PRICES_SCHEMA", "RowIds", "chunk_price_truth", "chunk_tables", "chunk_truth"]

CLICKSTREAM_SAMPLE = 0.1  # browsing_events keeps 1 in 10 sessions
VIEWS_PER_UNIT, CARTS_PER_UNIT = 6.0, 1.5  # full-traffic events per unit of expected demand
RETURN_REASONS = ("size_fit", "damaged", "not_as_described", "changed_mind")
TICKET_REASONS = ("delivery_delay", "damaged", "wrong_item", "quality", "how_to")
PROMO_TYPES = ("discount", "flash_sale", "festival")

# data/truth/prices.parquet: one row per SKU-day on sale (see docs/simulation.md).
TRUTH_PRICES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("sku_id", pa.int64()),
        pa.field("shelf_price", pa.float64()),
        pa.field("discount_pct", pa.float64()),
        pa.field("price", pa.float64()),
        pa.field("competitor_min_price", pa.float64()),
        pa.field("expected_demand", pa.float64()),
        pa.field("on_hand_units", pa.int64()),
        pa.field("merchant_action", pa.string()),
    ]
)


@dataclass
class RowIds:
    """The last surrogate key handed out per table whose keys run on from chunk to chunk."""

    last: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("promo", "po", "event", "ticket", "return"), 0)
    )

    def take(self, name: str, n: int) -> np.ndarray:
        """The next ``n`` keys of ``name``."""
        out = np.arange(self.last[name] + 1, self.last[name] + n + 1, dtype=np.int64)
        self.last[name] += n
        return out


def chunk_tables(
    g: WorldSignals, chunk: SkuChunk, rng: np.random.Generator, ids: RowIds
) -> dict[str, Columns]:
    """The contract rows of a chunk's SKUs, table by table (the global tables come from the signals).

    Args:
        g: The world's signals.
        chunk: The simulated SKUs.
        rng: The chunk's stream, after :func:`~pipelines.data.simulation.skus.simulate_chunk` drew from it.
        ids: Surrogate keys, carried on to the next chunk.
    """
    tables = {
        **_sales_and_inventory(g, chunk),
        "own_prices": _own_prices(g, chunk),
        "promotions": _promotions(g, chunk, ids),
        "competitor_prices": _competitor_prices(g, chunk),
        "purchase_orders": _purchase_orders(g, chunk, ids),
    }
    tables.update(_order_tables(g, chunk, rng, ids))
    tables["browsing_events"] = _browsing_events(g, chunk, rng, ids)
    return tables


def chunk_truth(g: WorldSignals, chunk: SkuChunk) -> Columns:
    """Ground truth per SKU, day and channel while on sale: expected demand, demand and units sold."""
    ii, tt = np.nonzero(chunk.active)
    return {
        "date": np.repeat(g.epoch0 + tt, 2),
        "sku_id": np.repeat(chunk.sku_id[ii], 2),
        "channel": (np.tile([0, 1], len(ii)), w.CHANNELS),
        "expected_demand": np.round(chunk.expected[ii, tt].ravel(), 5),
        "demand": chunk.demand[ii, tt].ravel(),
        "units_sold": chunk.units[ii, tt].ravel(),
    }


def chunk_price_truth(g: WorldSignals, chunk: SkuChunk) -> Columns:
    """Ground truth per SKU-day on sale: the prices set, why, and the demand they met.

    ``expected_demand`` is the causal model's mean summed over channels at the price paid; the
    merchant's action is its pricing state that day (markdown on overstock, markup on scarce stock).
    """
    ii, tt = np.nonzero(chunk.active)
    rival = chunk.competitor_min[ii, tt]
    return {
        "date": g.epoch0 + tt,
        "sku_id": chunk.sku_id[ii],
        "shelf_price": chunk.shelf[ii, tt],
        "discount_pct": chunk.discount[ii, tt],
        "price": chunk.price[ii, tt],
        "competitor_min_price": pa.array(np.where(np.isfinite(rival), rival, 0.0), mask=~np.isfinite(rival)),
        "expected_demand": np.round(chunk.expected[ii, tt].sum(1), 5),
        "on_hand_units": chunk.on_hand[ii, tt],
        "merchant_action": (chunk.action[ii, tt], ACTIONS),
    }


def _sales_and_inventory(g: WorldSignals, c: SkuChunk) -> dict[str, Columns]:
    ii, tt = np.nonzero(c.active)
    units_cells = c.units[ii, tt]  # (cells, channel)
    price_cells = np.repeat(c.price[ii, tt], 2)
    u_flat = units_cells.ravel()
    daily_sales = {
        "date": np.repeat(g.epoch0 + tt, 2),
        "sku_id": np.repeat(c.sku_id[ii], 2),
        "channel": (np.tile([0, 1], len(ii)), w.CHANNELS),
        "units": u_flat,
        "revenue": np.round(u_flat * price_cells, 2),
        "price_paid": price_cells,
        "stockout": np.repeat(c.on_hand[ii, tt] == 0, 2),
    }
    inventory = {
        "date": g.epoch0 + tt,
        "sku_id": c.sku_id[ii],
        "warehouse_id": c.sku["warehouse_id"][ii],
        "on_hand_units": c.on_hand[ii, tt],
        "on_order_units": c.on_order[ii, tt],
    }
    return {"daily_sales": daily_sales, "inventory_snapshots": inventory}


def _own_prices(g: WorldSignals, c: SkuChunk) -> Columns:
    pi, pt = np.nonzero(c.price_change)
    return {"sku_id": c.sku_id[pi], "effective_date": g.epoch0 + pt, "price": c.shelf[pi, pt]}


def _promotions(g: WorldSignals, c: SkuChunk, ids: RowIds) -> Columns:
    p_sku, p_t, p_dur, p_kind, p_pct = _sorted_records(c.promotions)
    return {
        "promo_id": ids.take("promo", len(p_sku)),
        "sku_id": c.sku_id[p_sku],
        "start_date": g.epoch0 + p_t,
        "end_date": g.epoch0 + p_t + p_dur - 1,
        "promo_type": (p_kind, PROMO_TYPES),
        "discount_pct": p_pct.astype(float),
    }


def _competitor_prices(g: WorldSignals, c: SkuChunk) -> Columns:
    ci, ck, ct = [], [], []
    for k, obs in enumerate(c.competitor_changes):
        a, b = np.nonzero(obs)
        ci.append(a), ct.append(b), ck.append(np.full(len(a), k))
    ci, ck, ct = _cat(ci), _cat(ck), _cat(ct)
    order = np.lexsort((ct, ck, ci))
    ci, ck, ct = ci[order], ck[order], ct[order]
    return {
        "sku_id": c.sku_id[ci],
        "competitor": (ck, w.COMPETITORS),
        "effective_date": g.epoch0 + ct,
        "price": np.stack(c.competitor_paths)[ck, ci, ct],
    }


def _purchase_orders(g: WorldSignals, c: SkuChunk, ids: RowIds) -> Columns:
    o_sku, o_t, o_lead, o_arrive, o_qty = _sorted_records(c.purchase_orders)
    received = g.epoch0 + o_arrive
    return {
        "po_id": ids.take("po", len(o_sku)),
        "sku_id": c.sku_id[o_sku],
        "warehouse_id": c.sku["warehouse_id"][o_sku],
        "supplier_id": c.sku["supplier_id"][o_sku],
        "order_date": g.epoch0 + o_t,
        "expected_date": g.epoch0 + o_t + o_lead,
        "received_date": pa.array(received.astype(np.int32), pa.int32(), mask=o_arrive >= g.n_days).view(
            pa.date32()
        )
        if len(received)
        else pa.array([], pa.date32()),
        "quantity": o_qty,
        "unit_cost": c.sku["unit_cost"][o_sku],
    }


def _sorted_records(records: Records) -> list[np.ndarray]:
    """Day-by-day records (SKU first, then day, then the rest) as columns sorted by SKU, then day."""
    columns = [_cat([r[j] for r in records]) for j in range(5)]
    order = np.lexsort((columns[1], columns[0]))
    return [col[order] for col in columns]


def _order_tables(g: WorldSignals, c: SkuChunk, rng: np.random.Generator, ids: RowIds) -> dict[str, Columns]:
    """Order lines that add up to daily sales exactly, and the returns and tickets they lead to."""
    n_days, sku_id = g.n_days, c.sku_id
    ci, ct, cc = np.nonzero(c.units)
    u = c.units[ci, ct, cc]
    lines = 1 + rng.binomial(u - 1, 0.85)  # most units are separate orders; some buy several
    line_cell = np.repeat(np.arange(len(u)), lines)
    qty = np.ones(len(line_cell), np.int64)
    extra_cell = np.repeat(np.arange(len(u)), u - lines)
    offset = np.cumsum(lines) - lines
    qty += np.bincount(
        offset[extra_cell] + (rng.random(len(extra_cell)) * lines[extra_cell]).astype(np.int64),
        minlength=len(qty),
    )
    li, lt, lc = ci[line_cell], ct[line_cell], cc[line_cell]
    cust = _choose_customers(g, rng, lt, lc, (c.discount[li, lt] > 0).astype(np.int64))
    order_id = ((g.epoch0 + lt) * len(w.CHANNELS) + lc) * g.n_customers + cust + 1
    # A customer buying one SKU twice on a day and channel has one order line, not two.
    key = order_id * len(sku_id) + li
    _uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    qty = np.bincount(inverse, weights=qty).astype(np.int64)
    li, lt, lc, cust, order_id = li[first], lt[first], lc[first], cust[first], order_id[first]
    unit_price = c.price[li, lt]
    order_lines = {
        "order_id": order_id,
        "sku_id": sku_id[li],
        "order_date": g.epoch0 + lt,
        "customer_id": cust + 1,
        "channel": (lc, w.CHANNELS),
        "quantity": qty,
        "unit_price": unit_price,
    }

    leaf = c.sku["leaf"][li]
    returned = rng.random(len(li)) < g.leaf_return_rate[leaf]
    r_day = lt + 2 + rng.geometric(0.2, len(li))
    keep = returned & (r_day < n_days)
    r_qty = np.where(qty > 1, np.maximum(rng.binomial(qty, 0.6), 1), 1)[keep]
    apparel = g.leaf_is_apparel[leaf[keep]]
    r_reason = np.where(
        apparel,
        _pick(rng, [0.55, 0.1, 0.15, 0.2], keep.sum()),
        _pick(rng, [0.05, 0.35, 0.3, 0.3], keep.sum()),
    )
    returns = {
        "return_id": ids.take("return", int(keep.sum())),
        "order_id": order_id[keep],
        "sku_id": sku_id[li[keep]],
        "customer_id": cust[keep] + 1,
        "return_date": g.epoch0 + r_day[keep],
        "quantity": r_qty,
        "refund_amount": np.round(r_qty * unit_price[keep], 2),
        "reason": (r_reason, RETURN_REASONS),
    }

    busy = g.event_day[lt]
    opened = rng.random(len(li)) < 0.012 + 0.02 * busy + 0.25 * returned
    c_day = lt + rng.geometric(0.5, len(li))
    keep = opened & (c_day < n_days)
    m = int(keep.sum())
    reason = np.where(
        busy[keep], _pick(rng, [0.6, 0.1, 0.1, 0.1, 0.1], m), _pick(rng, [0.15, 0.2, 0.15, 0.3, 0.2], m)
    )
    resolved = c_day[keep] + rng.geometric(0.4, m) - 1
    tickets = {
        "ticket_id": ids.take("ticket", m),
        "created_date": g.epoch0 + c_day[keep],
        "customer_id": cust[keep] + 1,
        "order_id": order_id[keep],
        "sku_id": sku_id[li[keep]],
        "reason": (reason, TICKET_REASONS),
        "resolved_date": pa.array(
            (g.epoch0 + resolved).astype(np.int32), pa.int32(), mask=resolved >= n_days
        ).view(pa.date32()),
    }
    return {"order_lines": order_lines, "returns": returns, "service_tickets": tickets}


def _browsing_events(g: WorldSignals, c: SkuChunk, rng: np.random.Generator, ids: RowIds) -> Columns:
    ii, tt = np.nonzero(c.active)
    lam = c.expected[ii, tt]  # (cells, channel)
    views = rng.poisson(CLICKSTREAM_SAMPLE * VIEWS_PER_UNIT * lam)
    carts = rng.poisson(CLICKSTREAM_SAMPLE * CARTS_PER_UNIT * lam)
    counts = np.stack([views, carts], axis=2).ravel()  # (cell, channel, type)
    cell = np.repeat(np.arange(counts.size), counts)
    cells = cell // 4
    ch = (cell // 2) % 2
    kind = cell % 2
    e_i, e_t = ii[cells], tt[cells]
    cust = _choose_customers(g, rng, e_t, ch, (c.discount[e_i, e_t] > 0).astype(np.int64))
    return {
        "event_id": ids.take("event", len(cell)),
        "event_date": g.epoch0 + e_t,
        "customer_id": cust + 1,
        "sku_id": c.sku_id[e_i],
        "channel": (ch, w.CHANNELS),
        "event_type": (kind, ("view", "add_to_cart")),
    }


def _choose_customers(
    g: WorldSignals, rng: np.random.Generator, t: np.ndarray, ch: np.ndarray, promo: np.ndarray
) -> np.ndarray:
    """Customer index for each purchase or event; redraws anyone not yet signed up or already churned."""
    cust = np.empty(len(t), np.int64)
    for c in range(len(w.CHANNELS)):
        for p in (0, 1):
            m = (ch == c) & (promo == p)
            cust[m] = np.searchsorted(g.customer_cum[c, p], rng.random(int(m.sum())))
    np.minimum(cust, g.n_customers - 1, out=cust)
    bad = (t < g.signup_t[cust]) | (t > g.churn_t[cust])
    redraw = np.minimum(np.searchsorted(g.pool_cum, rng.random(int(bad.sum()))), len(g.customer_pool) - 1)
    cust[bad] = g.customer_pool[redraw]
    return cust


def _pick(rng: np.random.Generator, p: list[float], n: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(p), rng.random(n) * np.sum(p))


def _cat(a: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate(a) if a else np.zeros(0, dtype)
