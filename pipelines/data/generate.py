"""``ecom generate``: simulate the e-commerce world and write it in the landing contract.

The world is drawn in two parts. Global signals (calendar, weather, social trends, products,
customers, warehouses) come from one random stream; SKUs are then simulated in fixed-size chunks,
each with its own stream derived from (seed, chunk), so memory stays flat as the tier grows and the
files are byte-identical for the same seed. Landed tables go to ``data/generated/``; the ground
truth (uncensored demand, elasticities, effect sizes) goes to ``data/truth/``, apart, for
evaluation only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.data import world as w
from pipelines.data.contract import CONTRACT_VERSION, TABLES

EPOCH = dt.date(1970, 1, 1)
CHUNK_SKUS = 2_000
CLICKSTREAM_SAMPLE = 0.1  # browsing_events keeps 1 in 10 sessions
VIEWS_PER_UNIT, CARTS_PER_UNIT = 6.0, 1.5  # full-traffic events per unit of expected demand
CASE_SIZE = 6  # suppliers ship in cases
SAFETY_FACTOR, COVER_DAYS, REVIEW_DAYS = 1.3, 12, 2
PLANNER_EVENT_FORESIGHT = 0.6  # share of an event's uplift the replenishment planner anticipates
RETURN_REASONS = ("size_fit", "damaged", "not_as_described", "changed_mind")
TICKET_REASONS = ("delivery_delay", "damaged", "wrong_item", "quality", "how_to")
PROMO_TYPES = ("discount", "flash_sale", "festival")

_ARROW = {
    pl.Int64(): pa.int64(),
    pl.Int32(): pa.int32(),
    pl.Float64(): pa.float64(),
    pl.String(): pa.string(),
    pl.Date(): pa.date32(),
    pl.Boolean(): pa.bool_(),
}

Labels = tuple[np.ndarray, tuple[str, ...]]  # (codes, labels) for a string column
ColumnData = np.ndarray | Labels | pa.Array


@dataclass(frozen=True)
class GenerateResult:
    out_dir: Path
    truth_dir: Path
    rows: dict[str, int]
    seconds: float
    signal_dimensions: int


@dataclass
class _Sink:
    """Streams row groups of one contract table into a Parquet file."""

    path: Path
    schema: pa.Schema
    rows: int = 0
    _writer: pq.ParquetWriter | None = field(default=None, repr=False)

    def write(self, columns: dict[str, ColumnData]) -> None:
        arrays = [_to_arrow(columns[f.name], f.type) for f in self.schema]
        n = len(arrays[0])
        if n == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd", compression_level=1)
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=1 << 20)
        self.rows += n

    def close(self) -> None:
        if self._writer is None:  # keep the file valid even when no row was produced
            pq.write_table(self.schema.empty_table(), self.path)
        else:
            self._writer.close()


def _to_arrow(data: ColumnData, typ: pa.DataType) -> pa.Array:
    if isinstance(data, pa.Array):
        return data.cast(typ)
    if isinstance(data, tuple):
        codes, labels = data
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels)).cast(pa.string())
    if typ == pa.date32():
        return pa.array(data.astype(np.int32), pa.int32()).view(pa.date32())
    return pa.array(data).cast(typ)


def _schema(columns: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in columns.items()])


def _contract_schema(table: str) -> pa.Schema:
    return _schema({c.name: _ARROW[c.dtype] for c in TABLES[table].columns})


TRUTH_DEMAND_SCHEMA = _schema(
    {
        "date": pa.date32(),
        "sku_id": pa.int64(),
        "channel": pa.string(),
        "expected_demand": pa.float64(),
        "demand": pa.int32(),
        "units_sold": pa.int32(),
    }
)


@dataclass(frozen=True)
class _Globals:
    """World-wide arrays shared by every SKU chunk."""

    start: dt.date
    n_days: int
    epoch0: int
    context: np.ndarray  # (leaf, day) seasonal x calendar x weather x social multiplier
    planner: np.ndarray  # (leaf, day) what the replenishment planner expects, relative
    calendar: np.ndarray  # (leaf, day) calendar multiplier alone
    event_day: np.ndarray  # (day,) bool: a peak shopping day (busy logistics)
    promo_start_rate: np.ndarray  # (day,) probability a SKU starts a promotion
    festival_len: np.ndarray  # (day,) length of festival promotions starting that day, else 0
    competitor_event: np.ndarray  # (day,) competitors' event discount multiplier
    leaf_return_rate: np.ndarray
    leaf_is_apparel: np.ndarray
    sku: dict[str, np.ndarray]  # per-SKU parameters (truth) and attributes
    customer_cum: np.ndarray  # (channel, promo, customer) cumulative choice probabilities
    customer_pool: np.ndarray  # customers active over the whole window, for redraws
    pool_cum: np.ndarray
    signup_t: np.ndarray
    churn_t: np.ndarray
    segment: np.ndarray
    n_customers: int


def generate_world(
    scale: str,
    seed: int,
    start: dt.date,
    out_dir: Path,
    truth_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Simulate the world for a tier and write the landing contract and the ground truth.

    Both folders are replaced atomically: written under a temporary name, then renamed.
    """
    if scale not in w.TIERS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(w.TIERS)}")
    tier = w.TIERS[scale]
    started = time.perf_counter()
    tmp_out, tmp_truth = _temp_sibling(out_dir), _temp_sibling(truth_dir)
    try:
        g, global_tables, effects = _simulate_globals(tier, seed, start)
        sinks = {name: _Sink(tmp_out / f"{name}.parquet", _contract_schema(name)) for name in TABLES}
        truth_sink = _Sink(tmp_truth / "demand.parquet", TRUTH_DEMAND_SCHEMA)
        for name, columns in global_tables.items():
            sinks[name].write(columns)
        ids = dict.fromkeys(("promo", "po", "event", "ticket", "return"), 0)
        for lo in range(0, tier.n_skus, CHUNK_SKUS):
            hi = min(lo + CHUNK_SKUS, tier.n_skus)
            rng = np.random.default_rng([seed, 1, lo // CHUNK_SKUS])
            tables, truth = _simulate_chunk(g, np.arange(lo, hi), rng, ids)
            for name, columns in tables.items():
                sinks[name].write(columns)
            truth_sink.write(truth)
            if progress:
                progress(hi, tier.n_skus)
        for sink in [*sinks.values(), truth_sink]:
            sink.close()
        _write_truth_tables(tmp_truth, g, effects, scale=scale, seed=seed)
        _replace_dir(tmp_out, out_dir)
        _replace_dir(tmp_truth, truth_dir)
    finally:
        shutil.rmtree(tmp_out, ignore_errors=True)
        shutil.rmtree(tmp_truth, ignore_errors=True)
    return GenerateResult(
        out_dir=out_dir,
        truth_dir=truth_dir,
        rows={name: s.rows for name, s in sinks.items()},
        seconds=time.perf_counter() - started,
        signal_dimensions=sum(signal_dimensions().values()),
    )


def signal_dimensions() -> dict[str, int]:
    """Modelling signals the landed contract offers for one SKU-day, by family (see docs/simulation.md)."""
    return {
        "weather (region x variable)": len(w.REGIONS) * 6,
        "social trends (leaf category x metric)": len(w.LEAVES) * 4,
        "competitor prices (per competitor, plus min and mean gap)": len(w.COMPETITORS) + 2,
        "calendar (day of week, month, 4 events x pre/peak/post, Spring Festival distance)": 7 + 12 + 12 + 1,
        "own price and promotion (shelf price, discount, 3 promotion types, days on promotion)": 6,
        "inventory (on hand, on order, open purchase orders, days of cover)": 4,
        "sales history per channel (units, revenue, stockout)": len(w.CHANNELS) * 3,
        "clickstream per channel (views, add-to-carts)": len(w.CHANNELS) * 2,
        "service (tickets, returns, return rate)": 3,
        "product attributes (department, leaf, brand, list price, cost, age)": 6,
    }


def _temp_sibling(path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    return tmp


def _replace_dir(src: Path, dst: Path) -> None:
    """Swap ``src`` into ``dst``; the old folder is removed only after the new one is in place."""
    trash = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    if dst.exists():
        os.rename(dst, trash)
    os.rename(src, dst)
    shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Global signals


def _leaf_params() -> dict[str, np.ndarray]:
    def per_leaf(attr: str) -> np.ndarray:
        return np.array([getattr(leaf.department, attr)[leaf.index] for leaf in w.LEAVES], dtype=float)

    def per_dept(attr: str) -> np.ndarray:
        return np.array([getattr(leaf.department, attr) for leaf in w.LEAVES], dtype=float)

    return {
        "price_median": per_leaf("price_median"),
        "yearly_amplitude": per_leaf("yearly_amplitude"),
        "yearly_peak_doy": per_leaf("yearly_peak_doy"),
        "temp_effect": per_leaf("temp_effect"),
        "elasticity": per_dept("elasticity"),
        "weekend_uplift": per_dept("weekend_uplift"),
        "rain_effect": per_dept("rain_effect"),
        "trend_beta": per_dept("trend_beta"),
        "return_rate": per_dept("return_rate"),
        "event_weight": np.array([leaf.department.event_weight for leaf in w.LEAVES], dtype=float),
    }


def _simulate_weather(rng: np.random.Generator, doy: np.ndarray) -> dict[str, np.ndarray]:
    n_regions, n_days = len(w.REGIONS), len(doy)
    mean = np.array([r[2] for r in w.REGIONS])[:, None]
    amp = np.array([r[3] for r in w.REGIONS])[:, None]
    rain = np.array([r[4] for r in w.REGIONS])[:, None]
    north = np.array([r[5] for r in w.REGIONS])[:, None]
    season = -np.cos(2 * np.pi * (doy[None, :] - 15) / 365.25)  # coldest mid-January
    anomaly = np.zeros((n_regions, n_days))
    shocks = rng.normal(0.0, 2.2, (n_regions, n_days)) + rng.normal(0.0, 1.2, (1, n_days))  # shared fronts
    for t in range(n_days):
        anomaly[:, t] = (0.75 * anomaly[:, t - 1] if t else 0.0) + shocks[:, t]
    temp = mean + amp * season + anomaly
    wet = rng.random((n_regions, n_days)) < 0.25 + 0.2 * (season + 1) / 2
    precip = np.where(wet, rng.gamma(0.8, rain * (1.2 + season) / 0.45 / 0.8 + 1e-3), 0.0)
    humidity = np.clip(
        55
        + 20 * (rain - 2.5) / 2.5
        + 10 * season
        + 1.5 * np.sqrt(precip)
        + rng.normal(0, 6, (n_regions, n_days)),
        8,
        100,
    )
    wind = rng.gamma(4.0, 3.0, (n_regions, n_days)) * (1 + 0.3 * north)
    aqi = np.clip(
        45
        + north * 60 * np.clip(-season, 0, None) * rng.lognormal(0, 0.5, (n_regions, n_days))
        + rng.normal(0, 10, (n_regions, n_days))
        - wind,
        5,
        500,
    )
    extreme = (np.abs(anomaly) > 6.0) | (precip > 40)
    return {
        "temp_c": temp,
        "anomaly": anomaly,
        "precip_mm": precip,
        "humidity_pct": humidity,
        "wind_kph": wind,
        "aqi": aqi,
        "is_extreme": extreme,
    }


def _simulate_globals(tier: w.Tier, seed: int, start: dt.date) -> tuple[_Globals, dict, dict]:
    rng = np.random.default_rng([seed, 0])
    n_days = tier.n_days
    days = w.dates_of(start, n_days)
    epoch0 = (start - EPOCH).days
    dow = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days])
    lp = _leaf_params()
    n_leaves = len(w.LEAVES)

    events = w.event_log_effects(start, n_days)
    calendar = w.calendar_multiplier(lp["event_weight"], events)
    seasonal = w.seasonal_multiplier(
        lp["weekend_uplift"], lp["yearly_amplitude"], lp["yearly_peak_doy"], dow, doy
    )

    weather = _simulate_weather(rng, doy)
    pop = np.array([r[1] for r in w.REGIONS])[:, None]
    national_anomaly = (pop * weather["anomaly"]).sum(0)
    national_rain = (pop * weather["precip_mm"]).sum(0)
    weather_mult = np.exp(
        lp["temp_effect"][:, None] * national_anomaly[None, :]
        + lp["rain_effect"][:, None] * (national_rain - national_rain.mean())[None, :]
    )

    # Latent social trend per leaf: a slow AR(1) with occasional viral bursts.
    z = np.zeros((n_leaves, n_days))
    bursts = (rng.random((n_leaves, n_days)) < 0.004) * rng.uniform(0.8, 1.6, (n_leaves, n_days))
    shocks = rng.normal(0, 0.08, (n_leaves, n_days)) + bursts
    for t in range(n_days):
        z[:, t] = (0.97 * z[:, t - 1] if t else 0.0) + shocks[:, t]
    z -= z.mean(1, keepdims=True)
    social_mult = np.exp(lp["trend_beta"][:, None] * z)
    hype = np.log(calendar)  # people talk about what they shop for
    social = {
        "search_index": 100 * np.exp(0.6 * z + 0.5 * hype + rng.normal(0, 0.08, z.shape)),
        "mentions": rng.poisson(300 * np.exp(0.9 * z + 0.6 * hype)),
        "sentiment": np.tanh(0.15 + 0.4 * z + rng.normal(0, 0.15, z.shape)),
        "video_views": rng.poisson(40_000 * np.exp(1.1 * z + 0.8 * hype)),
    }

    context = seasonal * calendar * weather_mult * social_mult
    planner = seasonal * (1 + PLANNER_EVENT_FORESIGHT * (calendar - 1))
    peak = np.log(calendar).max(0)
    event_day = peak > 0.5
    kickoff = np.array([(d.month, d.day) in {(6, 8), (11, 4), (12, 9)} for d in days])
    promo_start_rate = np.where(kickoff, 0.45, 0.012)
    # Festival promotions run from the kick-off to the peak day (618, 11.11, 12.12).
    festival_len = np.array([{(6, 8): 11, (11, 4): 8, (12, 9): 4}.get((d.month, d.day), 0) for d in days])
    competitor_event = np.where(peak > 0.5, 0.9, 1.0)

    sku, products = _draw_products(rng, tier, start, lp)
    customers, cust = _draw_customers(rng, tier, start)
    warehouses = {
        "warehouse_id": np.arange(1, tier.n_warehouses + 1),
        "name": (
            np.arange(tier.n_warehouses),
            tuple(f"DC-{w.REGIONS[i][0].upper()}-{i + 1}" for i in range(tier.n_warehouses)),
        ),
        "region": (np.arange(tier.n_warehouses) % len(w.REGIONS), tuple(r[0] for r in w.REGIONS)),
        "capacity_units": np.full(tier.n_warehouses, 250 * max(tier.n_skus, 1_000) // tier.n_warehouses),
    }
    leaf_names = tuple(leaf.name for leaf in w.LEAVES)
    region_names = tuple(r[0] for r in w.REGIONS)
    date_ids = epoch0 + np.arange(n_days)
    weather_table = {
        "date": np.tile(date_ids, len(w.REGIONS)),
        "region": (np.repeat(np.arange(len(w.REGIONS)), n_days), region_names),
        **{k: np.round(weather[k], 1).ravel() for k in ("temp_c", "precip_mm", "humidity_pct", "wind_kph")},
        "aqi": np.round(weather["aqi"]).ravel(),
        "is_extreme": weather["is_extreme"].ravel(),
    }
    social_table = {
        "date": np.tile(date_ids, n_leaves),
        "category_l2": (np.repeat(np.arange(n_leaves), n_days), leaf_names),
        "search_index": np.round(social["search_index"], 2).ravel(),
        "mentions": social["mentions"].ravel(),
        "sentiment": np.round(social["sentiment"], 3).ravel(),
        "video_views": social["video_views"].ravel(),
    }
    g = _Globals(
        start=start,
        n_days=n_days,
        epoch0=epoch0,
        context=context,
        planner=planner,
        calendar=calendar,
        event_day=event_day,
        promo_start_rate=promo_start_rate,
        festival_len=festival_len,
        competitor_event=competitor_event,
        leaf_return_rate=lp["return_rate"],
        leaf_is_apparel=np.array([leaf.department.name == "apparel" for leaf in w.LEAVES]),
        sku=sku,
        n_customers=tier.n_customers,
        **cust,
    )
    tables = {
        "products": products,
        "customers": customers,
        "warehouses": warehouses,
        "weather": weather_table,
        "social_trends": social_table,
    }
    effects = {
        "leaf_categories": {
            leaf.name: {
                "department": leaf.department.name,
                "mean_elasticity": leaf.department.elasticity,
                "weekend_uplift_log": leaf.department.weekend_uplift,
                "yearly_amplitude_log": leaf.department.yearly_amplitude[leaf.index],
                "yearly_peak_day_of_year": leaf.department.yearly_peak_doy[leaf.index],
                "temperature_effect_log_per_degc": leaf.department.temp_effect[leaf.index],
                "rain_effect_log_per_mm": leaf.department.rain_effect,
                "social_trend_beta": leaf.department.trend_beta,
                "return_rate": leaf.department.return_rate,
                "event_weights": dict(zip(w.EVENTS, leaf.department.event_weight, strict=True)),
            }
            for leaf in w.LEAVES
        },
        "event_log_effects": {
            e: {str(days[t]): float(events[i, t]) for t in np.flatnonzero(events[i])}
            for i, e in enumerate(w.EVENTS)
        },
        "calendar_daily": {"date": [str(d) for d in days], "leaf_calendar_multiplier": calendar.tolist()},
        "social_trend_latent": z.round(4).tolist(),
        "national_temperature_anomaly": national_anomaly.round(3).tolist(),
        "national_rain_mm": national_rain.round(3).tolist(),
    }
    return g, tables, effects


def _draw_products(
    rng: np.random.Generator, tier: w.Tier, start: dt.date, lp: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict]:
    n, n_leaves = tier.n_skus, len(w.LEAVES)
    leaf = rng.choice(n_leaves, n, p=rng.dirichlet(np.full(n_leaves, 8.0)))
    dept = np.array([w.DEPARTMENTS.index(x.department) for x in w.LEAVES])[leaf]
    brand_local = np.minimum(rng.zipf(1.6, n) - 1, 24)
    brand = dept * 25 + brand_local
    brand_labels = tuple(f"{d.name[:4].title()}Co {k + 1:02d}" for d in w.DEPARTMENTS for k in range(25))
    list_price = np.round(lp["price_median"][leaf] * rng.lognormal(0, 0.45, n), 1) - 0.1
    list_price = np.maximum(list_price, 1.9)
    unit_cost = np.round(list_price * rng.uniform(0.42, 0.72, n), 2)
    new = rng.random(n) < 0.15
    launch_t = np.where(new, rng.integers(14, max(tier.n_days - 45, 15), n), -rng.integers(30, 1500, n))
    launch_t[0] = -365  # at least one SKU has full history, even in the tiniest world
    n_wh = tier.n_warehouses
    warehouse = (dept % n_wh) + 1 if n_wh <= len(w.DEPARTMENTS) else rng.integers(1, n_wh + 1, n)
    elasticity = np.minimum(lp["elasticity"][leaf] + rng.normal(0, 0.35, n), -0.3)
    sku = {
        "leaf": leaf,
        "dept": dept,
        "launch_t": launch_t,
        "list_price": list_price,
        "unit_cost": unit_cost,
        "warehouse_id": warehouse.astype(np.int32),
        # Demand is heavy-tailed: a median SKU sells well under one unit a day.
        "base_demand": rng.lognormal(np.log(0.35), 1.25, n),
        "elasticity": elasticity,
        "cross_elasticity": rng.uniform(0.2, 0.6, n) * -elasticity,
        "promo_uplift": np.exp(rng.normal(0.25, 0.1, n)),
        "dispersion": rng.gamma(4.0, 1.0, n) + 0.5,  # negative-binomial shape: lower = burstier
        "app_share": rng.uniform(0.5, 0.8, n),
        "trend_per_year": rng.normal(0.0, 0.25, n),
        "ramp_days": rng.uniform(10, 60, n),
        "lead_time_days": rng.integers(3, 22, n),
        "supplier_id": rng.integers(1, max(n // 40, 5) + 1, n).astype(np.int32),
        "competitor_level": rng.normal(0.0, 0.06, (n, len(w.COMPETITORS))),
        "competitor_carries": rng.random((n, len(w.COMPETITORS))) < 0.75,
    }
    sku["competitor_carries"][np.arange(n), rng.integers(0, len(w.COMPETITORS), n)] = True
    launch_dates = (start - EPOCH).days + launch_t
    products = {
        "sku_id": np.arange(1, n + 1),
        "sku_name": pa.array(
            [
                f"{brand_labels[b]} {w.LEAVES[c].name.replace('_', ' ')} {i + 1}"
                for i, (b, c) in enumerate(zip(brand, leaf, strict=True))
            ]
        ),
        "category_l1": (dept, tuple(d.name for d in w.DEPARTMENTS)),
        "category_l2": (leaf, tuple(x.name for x in w.LEAVES)),
        "brand": (brand, brand_labels),
        "unit_cost": unit_cost,
        "list_price": list_price,
        "launch_date": launch_dates,
        "warehouse_id": sku["warehouse_id"],
    }
    return sku, products


def _draw_customers(rng: np.random.Generator, tier: w.Tier, start: dt.date) -> tuple[dict, dict]:
    n, n_days = tier.n_customers, tier.n_days
    region = rng.choice(len(w.REGIONS), n, p=[r[1] for r in w.REGIONS])
    segment = rng.choice(len(w.SEGMENTS), n, p=[0.3, 0.25, 0.3, 0.15])
    signup_t = np.where(rng.random(n) < 0.75, -rng.integers(1, 2000, n), rng.integers(0, n_days, n))
    churn_t = np.where(segment == w.SEGMENTS.index("churn_risk"), rng.integers(30, n_days + 120, n), 1 << 30)
    churn_t = np.maximum(churn_t, signup_t + 30)
    preferred = (rng.random(n) >= 0.68).astype(np.int64)  # channel index: 0 = app (68%), 1 = web
    activity = rng.lognormal(0, 1.0, n)
    cum = np.empty((len(w.CHANNELS), 2, n))
    for ch in range(len(w.CHANNELS)):
        for promo in (0, 1):
            weight = activity * np.where(preferred == ch, 3.0, 1.0)
            if promo:
                weight = weight * np.select(
                    [segment == 0, segment == 1], [3.0, 0.6], 1.0
                )  # price-sensitive buyers wait for deals
            cum[ch, promo] = np.cumsum(weight) / weight.sum()
    pool = np.flatnonzero((signup_t <= 0) & (churn_t > n_days))
    pool_cum = np.cumsum(activity[pool]) / activity[pool].sum()
    customers = {
        "customer_id": np.arange(1, n + 1),
        "region": (region, tuple(r[0] for r in w.REGIONS)),
        "city_tier": rng.choice(4, n, p=[0.2, 0.3, 0.3, 0.2]) + 1,
        "age_band": (rng.choice(len(w.AGE_BANDS), n, p=[0.18, 0.34, 0.26, 0.14, 0.08]), w.AGE_BANDS),
        "signup_date": (start - EPOCH).days + signup_t,
        "preferred_channel": (preferred, w.CHANNELS),
    }
    cust = {
        "customer_cum": cum,
        "customer_pool": pool,
        "pool_cum": pool_cum,
        "signup_t": signup_t,
        "churn_t": churn_t,
        "segment": segment,
    }
    return customers, cust


# --------------------------------------------------------------------------------------------------
# One chunk of SKUs over the whole window


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


def _choose_customers(
    g: _Globals, rng: np.random.Generator, t: np.ndarray, ch: np.ndarray, promo: np.ndarray
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


def _take_ids(ids: dict[str, int], name: str, n: int) -> np.ndarray:
    out = np.arange(ids[name] + 1, ids[name] + n + 1, dtype=np.int64)
    ids[name] += n
    return out


def _simulate_chunk(
    g: _Globals, idx: np.ndarray, rng: np.random.Generator, ids: dict[str, int]
) -> tuple[dict[str, dict[str, ColumnData]], dict[str, ColumnData]]:
    s = {k: v[idx] for k, v in g.sku.items()}
    n, n_days = len(idx), g.n_days
    days = np.arange(n_days)
    sku_id = idx.astype(np.int64) + 1
    launch, list_price = s["launch_t"], s["list_price"]
    first = np.clip(launch, 0, n_days - 1)
    active = days[None, :] >= launch[:, None]
    np.arange(n)

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

    tables = _chunk_tables(
        g,
        rng,
        ids,
        s,
        sku_id,
        active,
        price,
        shelf,
        price_change,
        promo_rows,
        comp_paths,
        comp_obs,
        units,
        on_hand,
        on_order,
        po,
        lam_ch,
        discount,
    )
    ii, tt = np.nonzero(active)
    truth = {
        "date": np.repeat(g.epoch0 + tt, 2),
        "sku_id": np.repeat(sku_id[ii], 2),
        "channel": (np.tile([0, 1], len(ii)), w.CHANNELS),
        "expected_demand": np.round(lam_ch[ii, tt].ravel(), 5),
        "demand": demand[ii, tt].ravel(),
        "units_sold": units[ii, tt].ravel(),
    }
    return tables, truth


def _simulate_promotions(
    g: _Globals, rng: np.random.Generator, active: np.ndarray
) -> tuple[np.ndarray, list[tuple]]:
    n, n_days = active.shape
    remaining = np.zeros(n, np.int64)
    current = np.zeros(n)
    discount = np.zeros((n, n_days))
    records: list[tuple] = []
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
    g: _Globals,
    rng: np.random.Generator,
    s: dict[str, np.ndarray],
    demand: np.ndarray,
    planned: np.ndarray,
    first: np.ndarray,
    active: np.ndarray,
) -> tuple:
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
    po: list[tuple] = []
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


def _cat(a: list[np.ndarray] | list, dtype=np.int64) -> np.ndarray:
    return np.concatenate(a) if a else np.zeros(0, dtype)


def _chunk_tables(
    g,
    rng,
    ids,
    s,
    sku_id,
    active,
    price,
    shelf,
    price_change,
    promo_rows,
    comp_paths,
    comp_obs,
    units,
    on_hand,
    on_order,
    po,
    lam_ch,
    discount,
) -> dict[str, dict[str, ColumnData]]:
    n_days = g.n_days
    ii, tt = np.nonzero(active)
    tables: dict[str, dict[str, ColumnData]] = {}
    n_cells = len(ii)
    units_cells = units[ii, tt]  # (cells, channel)
    price_cells = np.repeat(price[ii, tt], 2)
    u_flat = units_cells.ravel()
    tables["daily_sales"] = {
        "date": np.repeat(g.epoch0 + tt, 2),
        "sku_id": np.repeat(sku_id[ii], 2),
        "channel": (np.tile([0, 1], n_cells), w.CHANNELS),
        "units": u_flat,
        "revenue": np.round(u_flat * price_cells, 2),
        "price_paid": price_cells,
        "stockout": np.repeat(on_hand[ii, tt] == 0, 2),
    }
    tables["inventory_snapshots"] = {
        "date": g.epoch0 + tt,
        "sku_id": sku_id[ii],
        "warehouse_id": s["warehouse_id"][ii],
        "on_hand_units": on_hand[ii, tt],
        "on_order_units": on_order[ii, tt],
    }
    pi, pt = np.nonzero(price_change)
    tables["own_prices"] = {"sku_id": sku_id[pi], "effective_date": g.epoch0 + pt, "price": shelf[pi, pt]}

    p_sku, p_t, p_dur, p_kind, p_pct = (_cat([r[j] for r in promo_rows]) for j in range(5))
    order = np.lexsort((p_t, p_sku))
    p_sku, p_t, p_dur, p_kind, p_pct = p_sku[order], p_t[order], p_dur[order], p_kind[order], p_pct[order]
    tables["promotions"] = {
        "promo_id": _take_ids(ids, "promo", len(p_sku)),
        "sku_id": sku_id[p_sku],
        "start_date": g.epoch0 + p_t,
        "end_date": g.epoch0 + p_t + p_dur - 1,
        "promo_type": (p_kind, PROMO_TYPES),
        "discount_pct": p_pct.astype(float),
    }

    ci, ck, ct = [], [], []
    for k, obs in enumerate(comp_obs):
        a, b = np.nonzero(obs)
        ci.append(a), ct.append(b), ck.append(np.full(len(a), k))
    ci, ck, ct = _cat(ci), _cat(ck), _cat(ct)
    order = np.lexsort((ct, ck, ci))
    ci, ck, ct = ci[order], ck[order], ct[order]
    tables["competitor_prices"] = {
        "sku_id": sku_id[ci],
        "competitor": (ck, w.COMPETITORS),
        "effective_date": g.epoch0 + ct,
        "price": np.stack(comp_paths)[ck, ci, ct],
    }

    o_sku, o_t, o_lead, o_arrive, o_qty = (_cat([r[j] for r in po]) for j in range(5))
    order = np.lexsort((o_t, o_sku))
    o_sku, o_t, o_lead, o_arrive, o_qty = (
        o_sku[order],
        o_t[order],
        o_lead[order],
        o_arrive[order],
        o_qty[order],
    )
    received = g.epoch0 + o_arrive
    tables["purchase_orders"] = {
        "po_id": _take_ids(ids, "po", len(o_sku)),
        "sku_id": sku_id[o_sku],
        "warehouse_id": s["warehouse_id"][o_sku],
        "supplier_id": s["supplier_id"][o_sku],
        "order_date": g.epoch0 + o_t,
        "expected_date": g.epoch0 + o_t + o_lead,
        "received_date": pa.array(received.astype(np.int32), pa.int32(), mask=o_arrive >= n_days).view(
            pa.date32()
        )
        if len(received)
        else pa.array([], pa.date32()),
        "quantity": o_qty,
        "unit_cost": s["unit_cost"][o_sku],
    }

    tables.update(_order_tables(g, rng, ids, s, sku_id, units, price, discount))
    tables["browsing_events"] = _browsing_events(g, rng, ids, sku_id, active, lam_ch, discount)
    return tables


def _order_tables(g, rng, ids, s, sku_id, units, price, discount) -> dict[str, dict[str, ColumnData]]:
    """Order lines that add up to daily sales exactly, and the returns and tickets they lead to."""
    n_days = g.n_days
    ci, ct, cc = np.nonzero(units)
    u = units[ci, ct, cc]
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
    cust = _choose_customers(g, rng, lt, lc, (discount[li, lt] > 0).astype(np.int64))
    order_id = ((g.epoch0 + lt) * len(w.CHANNELS) + lc) * g.n_customers + cust + 1
    # A customer buying one SKU twice on a day and channel has one order line, not two.
    key = order_id * len(sku_id) + li
    _uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    qty = np.bincount(inverse, weights=qty).astype(np.int64)
    li, lt, lc, cust, order_id = li[first], lt[first], lc[first], cust[first], order_id[first]
    unit_price = price[li, lt]
    order_lines = {
        "order_id": order_id,
        "sku_id": sku_id[li],
        "order_date": g.epoch0 + lt,
        "customer_id": cust + 1,
        "channel": (lc, w.CHANNELS),
        "quantity": qty,
        "unit_price": unit_price,
    }

    leaf = s["leaf"][li]
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
        "return_id": _take_ids(ids, "return", int(keep.sum())),
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
        "ticket_id": _take_ids(ids, "ticket", m),
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


def _pick(rng: np.random.Generator, p: list[float], n: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(p), rng.random(n) * np.sum(p))


def _browsing_events(g, rng, ids, sku_id, active, lam_ch, discount) -> dict[str, ColumnData]:
    ii, tt = np.nonzero(active)
    lam = lam_ch[ii, tt]  # (cells, channel)
    views = rng.poisson(CLICKSTREAM_SAMPLE * VIEWS_PER_UNIT * lam)
    carts = rng.poisson(CLICKSTREAM_SAMPLE * CARTS_PER_UNIT * lam)
    counts = np.stack([views, carts], axis=2).ravel()  # (cell, channel, type)
    cell = np.repeat(np.arange(counts.size), counts)
    cells = cell // 4
    ch = (cell // 2) % 2
    kind = cell % 2
    e_i, e_t = ii[cells], tt[cells]
    cust = _choose_customers(g, rng, e_t, ch, (discount[e_i, e_t] > 0).astype(np.int64))
    return {
        "event_id": _take_ids(ids, "event", len(cell)),
        "event_date": g.epoch0 + e_t,
        "customer_id": cust + 1,
        "sku_id": sku_id[e_i],
        "channel": (ch, w.CHANNELS),
        "event_type": (kind, ("view", "add_to_cart")),
    }


# --------------------------------------------------------------------------------------------------
# Ground truth


def _write_truth_tables(truth_dir: Path, g: _Globals, effects: dict, *, scale: str, seed: int) -> None:
    s = g.sku
    pl.DataFrame(
        {
            "sku_id": np.arange(1, len(s["leaf"]) + 1),
            "category_l2": [w.LEAVES[i].name for i in s["leaf"]],
            **{
                k: s[k]
                for k in (
                    "base_demand",
                    "elasticity",
                    "cross_elasticity",
                    "promo_uplift",
                    "dispersion",
                    "app_share",
                    "trend_per_year",
                    "ramp_days",
                    "lead_time_days",
                )
            },
        }
    ).write_parquet(truth_dir / "sku_params.parquet")
    churn = np.where(g.churn_t < (1 << 29), g.epoch0 + g.churn_t, -1)
    pl.DataFrame(
        {
            "customer_id": np.arange(1, g.n_customers + 1),
            "segment": [w.SEGMENTS[i] for i in g.segment],
            "churn_date": pl.Series(churn).replace(-1, None).cast(pl.Int32).cast(pl.Date),
        }
    ).write_parquet(truth_dir / "customer_segments.parquet")
    meta = {
        "scale": scale,
        "seed": seed,
        "start_date": str(g.start),
        "n_days": g.n_days,
        "contract_version": CONTRACT_VERSION,
        "channels": list(w.CHANNELS),
        "competitors": list(w.COMPETITORS),
        "model": "expected_demand = base x context x (price/list_price)^elasticity x "
        "(min competitor price/price)^cross_elasticity x promo_uplift^promo x ramp x trend; "
        "context = weekly x yearly x calendar x weather x social; demand ~ NegBin(mean, dispersion); "
        "units_sold = min(demand, stock)",
        **effects,
    }
    (truth_dir / "effects.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
